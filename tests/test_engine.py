"""Engine: real processes in parallel, limits, retries, timeouts, trigger rules, templates, secrets, stop, resume."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitflowd import journal
from gitflowd.dag import Dag, Task, TriggerRule
from gitflowd.engine import Engine
from gitflowd.errors import RunError, StateError
from gitflowd.executors.local import LocalExecutor
from gitflowd.runs import create_run, open_resume, open_run, plan_resume, plan_run
from gitflowd.secrets import Masker
from gitflowd.state import RunState, RunStatus, TaskStatus, replay
from gitflowd.statedir import StateDir
from gitflowd.triggers import trigger_decision

LOGICAL = datetime(2026, 11, 25, 8, 15, tzinfo=UTC)
S, F, K, U = TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.UPSTREAM_FAILED


class FixedClock:
    """Wall time frozen (retry_at becomes exact), monotonic time real."""

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class Recorder:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def on_record(self, record: dict, run: RunState) -> None:
        self.records.append(record)


def _summary(run: RunState) -> dict:
    return {t: (s.state, [(a.number, a.state, a.exit_code) for a in s.attempts]) for t, s in run.tasks.items()}


def run_dag(tmp_path: Path, dag: Dag, *, parallelism: int | None = 4, secrets: dict | None = None,
            listeners=(), engine_hook=None, clock=None, params=None) -> RunState:
    """Create and execute a run; check the live state equals the journal's replay."""
    state = StateDir(tmp_path / "state")
    run = plan_run(state, dag, kind="manual", logical_date=LOGICAL, commit="c0ffee" + "0" * 34, params=params)
    writer = create_run(state, run)
    return _execute(tmp_path, state, run, writer, parallelism=parallelism, secrets=secrets, listeners=listeners,
                    engine_hook=engine_hook, clock=clock)


def _execute(tmp_path, state, run, writer, *, parallelism=4, secrets=None, listeners=(), engine_hook=None, clock=None):
    executor = LocalExecutor(kill_grace=0.5)
    engine = Engine(run, writer, executor, state, tmp_path, parallelism=parallelism, secrets=secrets,
                    listeners=listeners, clock=clock)
    if engine_hook:
        engine_hook(engine)
    try:
        engine.execute()
    finally:
        executor.shutdown()
        writer.close()
    replayed = state.load_run(run.dag_id, run.run_id)
    assert _summary(replayed) == _summary(run) and replayed.state is run.state
    return replayed


def _dag(*tasks: Task, **settings) -> Dag:
    return Dag("d", {t.id: t for t in tasks}, **settings)


def _wait_for_other(mine: str, other: str) -> str:
    return (f"touch {mine}; i=0; while [ ! -e {other} ]; do i=$((i+1)); [ $i -gt 1200 ] && exit 1; sleep 0.05; done")


def test_independent_tasks_really_run_at_the_same_time(tmp_path: Path) -> None:
    dag = _dag(Task("a", cmd=_wait_for_other("a.mark", "b.mark")), Task("b", cmd=_wait_for_other("b.mark", "a.mark")),
               Task("c", cmd="true", deps=("a", "b")))
    run = run_dag(tmp_path, dag, parallelism=2)
    assert run.state is RunStatus.SUCCESS and {t.state for t in run.tasks.values()} == {S}


@pytest.mark.parametrize(("parallelism", "max_active", "limit"), [(3, 16, 3), (10, 2, 2), (1, 16, 1)])
def test_never_more_tasks_at_once_than_the_limit(tmp_path: Path, parallelism: int, max_active: int, limit: int) -> None:
    (tmp_path / "running").mkdir()
    cmd = ("mkdir running/$GITFLOWD_TASK; ls running | wc -l >> counts; sleep 0.1; "
           "ls running | wc -l >> counts; rmdir running/$GITFLOWD_TASK")
    dag = _dag(*[Task(f"t{i}", cmd=cmd) for i in range(8)], max_active_tasks=max_active)
    run = run_dag(tmp_path, dag, parallelism=parallelism)
    assert run.state is RunStatus.SUCCESS
    counts = [int(n) for n in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 16 and max(counts) <= limit


def test_retries_wait_retry_delay_times_backoff(tmp_path: Path) -> None:
    flaky = Task("flaky", cmd="n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; [ $n -ge 2 ]",
                 retries=3, retry_delay=0.2, retry_backoff=2.0)
    hopeless = Task("hopeless", cmd="exit 7", retries=1, retry_delay=0.1)
    run = run_dag(tmp_path, _dag(flaky, hopeless), clock=FixedClock())
    assert run.tasks["flaky"].state is S and [a.state for a in run.tasks["flaky"].attempts] == [F, F, S]
    assert run.tasks["hopeless"].state is F and [a.exit_code for a in run.tasks["hopeless"].attempts] == [7, 7]
    records = journal.read(run.journal_path)
    retry_at = [r["retry_at"] for r in records if r.get("task") == "flaky" and "retry_at" in r]
    assert retry_at == ["2026-01-01T00:00:00.200000Z", "2026-01-01T00:00:00.400000Z"]
    starts = [r for r in records if r["event"] == "task_started" and r["task"] == "flaky"]
    assert [r["attempt"] for r in starts] == [1, 2, 3]
    assert run.state is RunStatus.FAILED


def test_timeout_kills_the_task_and_fails_downstream(tmp_path: Path) -> None:
    dag = _dag(Task("slow", cmd="sleep 1000 & echo $! > bgpid; sleep 1000", timeout=0.3),
               Task("after", cmd="true", deps=("slow",)))
    run = run_dag(tmp_path, dag)
    assert run.tasks["slow"].state is TaskStatus.TIMEOUT and run.tasks["after"].state is U
    assert run.tasks["slow"].exit_code in (-15, -9)
    assert _gone(int((tmp_path / "bgpid").read_text()))


def _gone(pid: int) -> bool:
    """The process has exited (absent or a zombie awaiting its new parent) within a generous wait."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat[stat.rindex(")") + 2] == "Z":
            return True
        time.sleep(0.02)
    return False


def test_upstream_failed_propagates_down_a_chain(tmp_path: Path) -> None:
    dag = _dag(Task("a", cmd="exit 1"), Task("b", cmd="true", deps=("a",)), Task("c", cmd="true", deps=("b",)),
               Task("d", cmd="true", deps=("c",), trigger_rule=TriggerRule.ALL_DONE), Task("x", cmd="true"))
    run = run_dag(tmp_path, dag)
    assert {t: s.state for t, s in run.tasks.items()} == {"a": F, "b": U, "c": U, "d": S, "x": S}
    assert "upstream a=failed" in run.tasks["b"].reason
    assert run.state is RunStatus.FAILED


def test_the_skip_reason_of_a_join_after_a_wide_fan_stays_one_short_line(tmp_path: Path) -> None:
    # A fan of 40 whose first task fails: the join's reason counts upstream states instead of
    # naming all 40 (a 10,000-task fan made it a 150 KB line in the journal and the output).
    fan = [Task(f"t{i}", cmd="exit 1" if i == 0 else "true") for i in range(40)]
    dag = _dag(*fan, Task("join", cmd="true", deps=tuple(t.id for t in fan)))
    reason = run_dag(tmp_path, dag).tasks["join"].reason
    assert reason == "trigger rule all_success: upstream 1 failed (t0), 39 success (t1, t2, t3, ...)"


RULE_CASES = [
    ("all_success", ["s"], S), ("all_success", ["s", "f"], U), ("all_success", ["s", "k"], K),
    ("all_failed", ["f"], S), ("all_failed", ["s", "f"], K),
    ("all_done", ["s", "f", "k"], S),
    ("one_success", ["s", "f"], S), ("one_success", ["f"], U), ("one_success", ["k"], K),
    ("one_failed", ["s", "f"], S), ("one_failed", ["s"], K),
    ("none_failed", ["s", "k"], S), ("none_failed", ["s", "f"], U),
    ("always", ["f"], S), ("always", ["k"], S),
]


def test_every_trigger_rule_on_real_upstream_states(tmp_path: Path) -> None:
    tasks = [Task("s", cmd="true"), Task("f", cmd="false"),
             Task("k", cmd="true", deps=("s",), trigger_rule=TriggerRule.ONE_FAILED)]  # skipped
    for i, (rule, deps, _) in enumerate(RULE_CASES):
        tasks.append(Task(f"r{i}_{rule}", cmd="true", deps=tuple(deps), trigger_rule=TriggerRule(rule)))
    run = run_dag(tmp_path, _dag(*tasks))
    assert run.tasks["k"].state is K
    got = {t: run.tasks[t].state for t in run.tasks if t.startswith("r")}
    assert got == {f"r{i}_{rule}": expected for i, (rule, _, expected) in enumerate(RULE_CASES)}


def test_trigger_decision_table() -> None:
    state = {"s": S, "f": F, "k": K, "t": TaskStatus.TIMEOUT, "u": U}
    for rule, deps, expected in RULE_CASES:
        verdict = trigger_decision(TriggerRule(rule), [state[d] for d in deps])
        assert (verdict or S) is expected, (rule, deps)
    assert trigger_decision(TriggerRule.ALL_FAILED, [TaskStatus.TIMEOUT, U]) is None
    assert trigger_decision(TriggerRule.ALL_SUCCESS, []) is None


def test_templates_and_environment(tmp_path: Path) -> None:
    cmd = ("echo '{{ ds }} {{ ts }} {{ run_id }} {{ dag_id }} {{ task_id }} {{ commit[:6] }} {{ params.region }} "
           "{{ data_interval_end.isoformat() }}' > out; env | grep -E '^GITFLOWD_(ATTEMPT|COMMIT|DAG|LOGICAL_DATE|RUN_ID|TASK|WORKSPACE)=' | sort >> out; pwd >> out; echo $EXTRA $OWN >> out")
    dag = Dag("d", {"t": Task("t", cmd=cmd, env={"OWN": "task"})}, params={"region": "seoul"}, env={"EXTRA": "dag"},
              timezone="Asia/Seoul")
    run = run_dag(tmp_path, dag, params={"region": "busan"})
    lines = (tmp_path / "out").read_text().splitlines()
    assert lines[0] == (f"2026-11-25 2026-11-25T17:15:00+09:00 {run.run_id} d t c0ffee busan 2026-11-25T17:15:00+09:00")
    env = dict(line.split("=", 1) for line in lines[1:8])
    workspace = tmp_path / "state" / "workspaces" / "d" / run.run_id
    assert env == {"GITFLOWD_ATTEMPT": "1", "GITFLOWD_COMMIT": run.commit, "GITFLOWD_DAG": "d",
                   "GITFLOWD_LOGICAL_DATE": "2026-11-25T08:15:00.000000Z", "GITFLOWD_RUN_ID": run.run_id,
                   "GITFLOWD_TASK": "t", "GITFLOWD_WORKSPACE": str(workspace)}
    assert workspace.is_dir() and lines[8] == str(tmp_path) and lines[9] == "dag task"


def test_env_values_are_templates_rendered_per_task(tmp_path: Path) -> None:
    # As Airflow renders a BashOperator's env: `env = { DAY = "{{ ds }}" }` reached the task as
    # the text "{{ ds }}".
    dag = Dag("d", {"a": Task("a", cmd="echo $DAY $WHO $PLAIN $OWN >> out", env={"DAY": "{{ ds }}", "WHO": "{{ task_id }}",
                                                                            "PLAIN": "100%", "OWN": "{{ params.r }}"}),
                    "b": Task("b", cmd="echo $WHO >> out", env={"WHO": "{{ task_id }}-{{ ds | ds_add(1) }}"}, deps=("a",))},
              params={"r": "seoul"})
    run_dag(tmp_path, dag, params={"r": "busan"})
    assert (tmp_path / "out").read_text() == "2026-11-25 a 100% busan\nb-2026-11-26\n"


def test_an_env_value_can_pass_a_literal_dollar_to_the_task(tmp_path: Path) -> None:
    dag = Dag("d", {"a": Task("a", cmd="printenv GIT_SSH_COMMAND > out", env={"GIT_SSH_COMMAND": "ssh -i {{ '$' }}HOME/k"})})
    run_dag(tmp_path, dag)
    assert (tmp_path / "out").read_text() == "ssh -i $HOME/k\n"


def test_an_env_template_error_names_the_task_and_variable(tmp_path: Path) -> None:
    dag = Dag("d", {"t": Task("t", cmd="true", env={"OK": "x", "BAD": "{{ params.missing }}"}, line=3)}, path="dags/d.toml")
    run = plan_run(StateDir(tmp_path / "state"), dag, kind="manual", logical_date=LOGICAL, commit="c" * 40)
    with pytest.raises(RunError) as info:
        Engine(run, None, None, StateDir(tmp_path / "state"), tmp_path)  # type: ignore[arg-type]
    assert str(info.value).startswith("dags/d.toml:3: task 't' env.BAD: undefined template variable:")


def test_raw_keeps_braces_as_written(tmp_path: Path) -> None:
    dag = Dag("d", {"t": Task("t", cmd="echo '{% raw %}{{.State}}{% endraw %} {{ ds }}' > out")})
    run_dag(tmp_path, dag)
    assert (tmp_path / "out").read_text() == "{{.State}} 2026-11-25\n"


def test_ds_add_moves_a_date_by_days(tmp_path: Path) -> None:
    dag = Dag("d", {"t": Task("t", cmd="echo {{ ds | ds_add(-1) }} {{ ds | ds_add(7) }} {{ ts | ds_add(0) }} > out")})
    run_dag(tmp_path, dag)
    assert (tmp_path / "out").read_text() == "2026-11-24 2026-12-02 2026-11-25\n"


@pytest.mark.parametrize(("template", "message"), [
    ("echo {{ nope }}", "dags/d.toml:7: task 'bad': undefined template variable: 'nope' is undefined"),
    ("echo {{ ds ", "dags/d.toml:7: task 'bad': template syntax error:"),
    ("echo {{ params.missing }}", "undefined template variable: 'dict object' has no attribute 'missing'"),
    ("{{ ''.__class__.__mro__ }}", "task 'bad': "),
])
def test_template_errors_name_the_task_before_anything_runs(tmp_path: Path, template: str, message: str) -> None:
    dag = Dag("d", {"good": Task("good", cmd="touch ran"), "bad": Task("bad", argv=("sh", "-c", template), line=7)},
              path="dags/d.toml")
    state = StateDir(tmp_path / "state")
    run = plan_run(state, dag, kind="manual", logical_date=LOGICAL, commit="c" * 40)
    with pytest.raises(RunError) as info:
        Engine(run, None, None, state, tmp_path)  # type: ignore[arg-type]
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "ran").exists()


def test_secrets_reach_the_task_and_are_masked_in_its_log(tmp_path: Path) -> None:
    secret = "s3cr3t-Value-42"
    dag = Dag("d", {"t": Task("t", cmd="echo key=$API_KEY; echo again $API_KEY >&2; python3 -c \"print('x'*3000000 + '$API_KEY')\"")},
              secrets=("API_KEY",))
    run = run_dag(tmp_path, dag, secrets={"API_KEY": secret})
    text = Path(run.tasks["t"].attempts[0].log).read_text()
    assert secret not in text and text.startswith("key=***\nagain ***\n") and text.endswith("x***\n")


def test_masking_streams_across_chunk_boundaries() -> None:
    secrets = ["abcdefgh", "abc-long-secret-value", "zz9"]
    masker = Masker(secrets + ["", "x"])  # empty and too-short values are not masked
    chunk = 1 << 20
    data = bytearray(b"." * (3 * chunk))
    for offset in (chunk - 3, chunk - 1, 2 * chunk - 10, 2 * chunk, 3 * chunk - 8, 5):
        data[offset:offset + 8] = b"abcdefgh"
    data[chunk - 12: chunk + 9] = b"abc-long-secret-value"
    data += b"zz9"
    expected = bytes(data)
    for value in sorted(secrets, key=len, reverse=True):
        expected = expected.replace(value.encode(), b"***")
    out = io.BytesIO()
    masker.mask_stream(io.BytesIO(bytes(data)), out)
    assert out.getvalue() == expected and out.getvalue().count(b"***") == 6


def test_stop_request_interrupts_running_tasks(tmp_path: Path) -> None:
    dag = _dag(Task("long", cmd="touch started; sleep 1000"), Task("next", cmd="true", deps=("long",)))

    def stop_when_started(engine: Engine) -> None:
        def watch() -> None:
            deadline = time.monotonic() + 60
            while not (tmp_path / "started").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            engine.request_stop(15)
        threading.Thread(target=watch, daemon=True).start()

    run = run_dag(tmp_path, dag, engine_hook=stop_when_started)
    assert run.state is RunStatus.INTERRUPTED
    assert run.tasks["long"].state is TaskStatus.INTERRUPTED and run.tasks["next"].state is TaskStatus.PENDING


def test_resume_reruns_failed_and_downstream_only_with_continuing_attempts(tmp_path: Path) -> None:
    dag = _dag(Task("ok", cmd="echo ok >> ran"), Task("bad", cmd="echo bad >> ran; [ -e fixed ]", deps=("ok",)),
               Task("after", cmd="echo after >> ran", deps=("bad",)), Task("side", cmd="echo side >> ran"))
    first = run_dag(tmp_path, dag)
    assert first.state is RunStatus.FAILED
    (tmp_path / "fixed").touch()
    state = StateDir(tmp_path / "state")
    run, writer = open_run(state, "d", first.run_id)
    record = plan_resume(run)
    assert record["tasks"] == ["bad", "after"] and record["interrupted"] == []
    open_resume(state, writer, run, record, {})
    second = _execute(tmp_path, state, run, writer)
    assert second.state is RunStatus.SUCCESS
    assert sorted((tmp_path / "ran").read_text().split()) == sorted(["ok", "side", "bad", "bad", "after"])
    assert [a.number for a in second.tasks["bad"].attempts] == [1, 2]
    with pytest.raises(RunError, match="nothing to resume"):
        plan_resume(second)


def test_listeners_see_every_record_in_order_and_a_broken_one_does_not_stop_the_run(tmp_path: Path) -> None:
    class Broken:
        def on_record(self, record: dict, run: RunState) -> None:
            raise RuntimeError("listener bug")

    recorder = Recorder()
    run = run_dag(tmp_path, _dag(Task("a", cmd="true"), Task("b", cmd="true", deps=("a",))), listeners=[Broken(), recorder])
    assert run.state is RunStatus.SUCCESS
    assert [r["seq"] for r in recorder.records] == list(range(1, len(recorder.records) + 1))
    assert [r["event"] for r in recorder.records] == ["run_started", "task_started", "task_finished", "task_started",
                                                        "task_finished", "run_finished"]


def test_call_tasks_run_from_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text("import os\ndef go():\n    open('called', 'w').write(os.environ['GITFLOWD_TASK'])\n")
    run = run_dag(tmp_path, _dag(Task("c", call="jobs:go"), Task("missing", call="jobs:nope")))
    assert run.tasks["c"].state is S and (tmp_path / "called").read_text() == "c"
    assert run.tasks["missing"].state is F
    assert "'jobs' (jobs.py) has no attribute 'nope'" in Path(run.tasks["missing"].attempts[0].log).read_text()


def test_many_tasks_replay_quickly(tmp_path: Path) -> None:
    """100,000 events replay well under a second (measured generously: a loaded CI box)."""
    dag = Dag("big", {f"t{i}": Task(f"t{i}", cmd="true") for i in range(1000)})
    state = StateDir(tmp_path)
    run = plan_run(state, dag, kind="manual", logical_date=LOGICAL, commit="c" * 40)
    with create_run(state, run) as writer:
        batch = []
        for n in range(50):
            for i in range(1000):
                batch.append({"event": "task_started", "task": f"t{i}", "attempt": n + 1, "pid": 1, "pgid": 1, "host": "h", "log": "l"})
                batch.append({"event": "task_finished", "task": f"t{i}", "attempt": n + 1, "state": "failed", "exit_code": 1, "duration": 0.1})
            writer.append(*batch, sync=False)
            batch = []
    records = journal.read(run.journal_path)
    assert len(records) == 100_001
    start = time.process_time()
    replayed = replay(records)
    elapsed = time.process_time() - start
    assert len(replayed.tasks["t5"].attempts) == 50
    assert elapsed < 5  # typically well under a second; the bound only catches accidental O(n^2)


def test_drain_lets_running_tasks_finish_and_leaves_the_rest_for_resume(tmp_path: Path) -> None:
    """The daemon's grace period: no new task starts, the running one ends by itself."""
    gate = tmp_path / "gate"
    dag = _dag(Task("slow", cmd=f"touch started; while [ ! -e {gate} ]; do sleep 0.02; done"), Task("after", cmd="true", deps=("slow",)))

    def drain_once_started(engine: Engine) -> None:
        def watch() -> None:
            while not (tmp_path / "started").exists():
                time.sleep(0.02)
            engine.request_drain()
            gate.touch()
        threading.Thread(target=watch, daemon=True).start()

    run = run_dag(tmp_path, dag, engine_hook=drain_once_started)
    assert run.state is RunStatus.INTERRUPTED
    assert run.tasks["slow"].state is S and run.tasks["after"].state is TaskStatus.PENDING
    assert plan_resume(run)["tasks"] == ["after"]


def test_shared_slots_limit_tasks_across_engines(tmp_path: Path) -> None:
    from gitflowd.pool import Limiter

    limiter = Limiter(2)
    peak = tmp_path / "peak"
    task = f"mkdir -p {tmp_path}/now; touch {tmp_path}/now/$GITFLOWD_RUN_ID.$GITFLOWD_TASK; ls {tmp_path}/now | wc -l >> {peak}; sleep 0.2; rm {tmp_path}/now/$GITFLOWD_RUN_ID.$GITFLOWD_TASK"
    dag = _dag(*(Task(f"t{i}", cmd=task) for i in range(3)))
    state = StateDir(tmp_path / "state")
    threads = []
    for n in range(2):
        run = plan_run(state, dag, kind="manual", logical_date=LOGICAL, commit="c0ffee" + "0" * 34, run_id=f"r{n}")
        writer = create_run(state, run)
        executor = LocalExecutor(kill_grace=0.5)
        engine = Engine(run, writer, executor, state, tmp_path, parallelism=3, shared_slots=limiter)
        threads.append((threading.Thread(target=engine.execute), executor, writer))
    for thread, _, _ in threads:
        thread.start()
    for thread, executor, writer in threads:
        thread.join(120)
        executor.shutdown()
        writer.close()
    assert all(state.load_run("d", f"r{n}").state is RunStatus.SUCCESS for n in range(2))
    assert max(int(line) for line in peak.read_text().split()) <= 2
    assert limiter.used == 0


def test_a_task_starts_only_after_its_upstream_records_are_durable(tmp_path: Path) -> None:
    """Lazy group commit: no fsync per record, yet nothing is launched on a record that a
    crash could still take back (the journal's durable_seq is checked at every task_started)."""
    deps = {f"t{i}": ((f"t{i - 4}",) if i >= 4 else ()) for i in range(24)}  # 4 chains
    dag = _dag(*(Task(name, cmd="true", deps=d) for name, d in deps.items()))
    violations: list[str] = []
    fsyncs: list[int] = []

    def check(engine: Engine) -> None:
        writer = engine.writer
        finished_seq: dict[str, int] = {}
        original_append, original_sync = writer.append, writer.sync

        def append(*records, sync=True):
            stamped = original_append(*records, sync=sync)
            for record in stamped:
                if record["event"] == journal.TASK_FINISHED:
                    finished_seq[record["task"]] = record["seq"]
                elif record["event"] == journal.TASK_STARTED:
                    for dep in deps[record["task"]]:
                        if finished_seq[dep] > writer.durable_seq:
                            violations.append(f"{record['task']} started before {dep}'s success was durable")
            return stamped

        def sync():
            fsyncs.append(writer.next_seq)
            original_sync()

        writer.append, writer.sync = append, sync

    run = run_dag(tmp_path, dag, parallelism=2, engine_hook=check)
    assert run.state is RunStatus.SUCCESS
    assert violations == []
    assert 0 < len(fsyncs) < 2 * len(deps)  # grouped: fewer fsyncs than records


def test_resume_masks_a_dead_runners_logs_before_it_records_that_they_ended(tmp_path: Path) -> None:
    """The site shows an ended attempt's log as masked on disk: if the resume died right after
    writing run_resumed, an unmasked log would have been published as if masked."""
    dag = _dag(Task("leak", cmd="true"), secrets=("TOKEN",))
    state = StateDir(tmp_path / "state")
    run = plan_run(state, dag, kind="manual", logical_date=datetime(2026, 1, 1, tzinfo=UTC), commit="c" * 40)
    writer = create_run(state, run)
    writer.append({"event": journal.TASK_STARTED, "task": "leak", "attempt": 1, "pid": None, "pgid": None, "host": "h"})
    writer.close()  # the runner died with the task running
    log = state.log_path("d", run.run_id, "leak", 1)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("token=s3cr3tvalue\n")
    run, writer = open_run(state, "d", run.run_id)
    record = plan_resume(run)
    assert record["interrupted"] == [{"task": "leak", "attempt": 1}]
    writer.close()  # so that writing run_resumed fails, as a resume that dies there
    with pytest.raises(StateError, match="journal write failed"):
        open_resume(state, writer, run, record, {"TOKEN": "s3cr3tvalue"}, kill_grace=0.1)
    assert log.read_text().splitlines()[0] == "token=***"  # then a line on why it stops there
