"""State: replay of every event, the state directory layout, run ordering, caching and broken journals."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitflowd import journal
from gitflowd.dag import Dag, Task
from gitflowd.errors import DagNotFound, EmptyJournal, JournalCorrupt, RunNotFound, StateError
from gitflowd.runs import clear_tasks, create_run, open_run, plan_resume, plan_run, tasks_to_clear, unique_run_id
from gitflowd.state import RunStatus, TaskStatus, read_run, replay
from gitflowd.statedir import StateDir

DAG = Dag("d", {"a": Task("a", cmd="true"), "b": Task("b", cmd="true", deps=("a",)), "c": Task("c", cmd="true", deps=("b",))})
WHEN = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def _new(state: StateDir, when: datetime = WHEN, kind: str = "manual"):
    run = plan_run(state, DAG, kind=kind, logical_date=when, commit="a" * 40, params={"x": 1},
                   commit_info={"subject": "s", "author": "me", "time": "2026-03-01T00:00:00+00:00"})
    return run, create_run(state, run)


def test_layout(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    assert state.journal_path("d", "r") == tmp_path / "runs" / "d" / "r.jsonl"
    assert state.log_path("d", "r", "t", 3) == tmp_path / "logs" / "d" / "r" / "t.3.log"
    assert state.workspace("d", "r") == tmp_path / "workspaces" / "d" / "r"
    assert (state.checkouts, state.inbox, state.lock_path) == (tmp_path / "checkouts", tmp_path / "inbox", tmp_path / "daemon.lock")


def test_replay_folds_every_event(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    run, writer = _new(state)
    with writer:
        writer.append({"event": "run_started", "pid": 10, "host": "h"})
        writer.append({"event": "task_started", "task": "a", "attempt": 1, "pid": 11, "pgid": 11, "host": "h", "log": "a.1"})
        writer.append({"event": "task_finished", "task": "a", "attempt": 1, "state": "failed", "exit_code": 2,
                       "duration": 0.5, "retry_at": "2026-03-01T06:00:10.000000Z"})
        loaded = state.load_run("d", run.run_id)
        assert loaded.tasks["a"].state is TaskStatus.UP_FOR_RETRY and loaded.state is RunStatus.RUNNING
        writer.append({"event": "task_started", "task": "a", "attempt": 2, "pid": 12, "pgid": 12, "host": "h", "log": "a.2"})
        writer.append({"event": "task_finished", "task": "a", "attempt": 2, "state": "success", "exit_code": 0, "duration": 0.1})
        writer.append({"event": "task_started", "task": "b", "attempt": 1, "pid": 13, "pgid": 13, "host": "h", "log": "b.1"})
        writer.append({"event": "task_finished", "task": "b", "attempt": 1, "state": "timeout", "exit_code": -15, "duration": 9})
        writer.append({"event": "task_skipped", "task": "c", "state": "upstream_failed", "reason": "b timed out"})
        writer.append({"event": "run_finished", "state": "failed"})
    loaded = state.load_run("d", run.run_id)
    assert loaded.run_id == run.run_id and loaded.kind == "manual" and loaded.params == {"x": 1}
    assert loaded.commit_info["subject"] == "s" and loaded.logical_date == WHEN
    assert loaded.runner_pid == 10 and loaded.state is RunStatus.FAILED and loaded.ended is not None
    a = loaded.tasks["a"]
    assert a.state is TaskStatus.SUCCESS and [(x.number, x.state, x.exit_code, x.pid) for x in a.attempts] == [
        (1, TaskStatus.FAILED, 2, 11), (2, TaskStatus.SUCCESS, 0, 12)]
    assert a.attempts[0].retry_at == datetime(2026, 3, 1, 6, 0, 10, tzinfo=UTC) and a.attempts[1].log == "a.2"
    assert loaded.tasks["b"].state is TaskStatus.TIMEOUT and loaded.tasks["b"].exit_code == -15
    assert loaded.tasks["c"].state is TaskStatus.UPSTREAM_FAILED and loaded.tasks["c"].reason == "b timed out"
    assert loaded.last_seq == 9 and loaded.journal_path == str(state.journal_path("d", run.run_id))


def test_resume_and_clear_records(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    run, writer = _new(state)
    with writer:
        writer.append({"event": "run_started", "pid": 10, "host": "h"},
                      {"event": "task_started", "task": "a", "attempt": 1, "pid": 11, "pgid": 11, "host": "h", "log": "l"},
                      {"event": "task_finished", "task": "a", "attempt": 1, "state": "success", "exit_code": 0, "duration": 1},
                      {"event": "task_started", "task": "b", "attempt": 1, "pid": 12, "pgid": 12, "host": "h", "log": "l"})
    crashed, writer = open_run(state, "d", run.run_id)  # the runner died with b running
    assert crashed.tasks["b"].state is TaskStatus.RUNNING and crashed.state is RunStatus.RUNNING
    record = plan_resume(crashed)
    assert record["tasks"] == ["b", "c"] and record["interrupted"] == [{"task": "b", "attempt": 1}]
    with writer:
        writer.append(record)
    resumed = state.load_run("d", run.run_id)
    assert resumed.tasks["b"].state is TaskStatus.PENDING
    assert resumed.tasks["b"].attempts[0].state is TaskStatus.INTERRUPTED and resumed.tasks["b"].attempts[0].ended
    assert resumed.resumes[0]["tasks"] == ["b", "c"]
    moved = Dag("d", {**DAG.tasks, "new": Task("new", cmd="true", deps=("a",))})
    assert plan_resume(resumed, moved, "b" * 40)["dag"]["tasks"][-1]["id"] == "new"
    run2, writer = open_run(state, "d", run.run_id)
    with writer:
        clear_tasks(writer, run2, tasks_to_clear(run2, ["a"], downstream=True))
    cleared = state.load_run("d", run.run_id)
    assert {t: s.state for t, s in cleared.tasks.items()} == dict.fromkeys("abc", TaskStatus.PENDING)
    assert cleared.state is RunStatus.QUEUED


def test_a_resumed_run_is_queued_until_its_runner_starts_it(tmp_path: Path) -> None:
    """A daemon records `run_resumed` when it takes the request; the run may then wait for
    max_active_runs: status said `running` for it, tasks all pending, beside the run it waits for."""
    state = StateDir(tmp_path)
    run, writer = _new(state)
    with writer:
        writer.append({"event": "run_started", "pid": 10, "host": "h"},
                      {"event": "task_started", "task": "a", "attempt": 1, "pid": 11, "pgid": 11, "host": "h", "log": "l"},
                      {"event": "task_finished", "task": "a", "attempt": 1, "state": "failed", "exit_code": 1, "duration": 1},
                      {"event": "run_finished", "state": "failed"})
    failed, writer = open_run(state, "d", run.run_id)
    with writer:
        writer.append(plan_resume(failed))
        waiting = state.load_run("d", run.run_id)
        assert waiting.state is RunStatus.QUEUED and waiting.ended is None
        assert plan_resume(waiting)["tasks"] == ["a", "b", "c"]  # a restart picks it up again
        writer.append({"event": "run_started", "pid": 20, "host": "h"})
    assert state.load_run("d", run.run_id).state is RunStatus.RUNNING


def test_an_unfinished_run_whose_tasks_all_succeeded_can_still_be_resumed(tmp_path: Path) -> None:
    """The runner died after the last success, before run_finished, then again after the resume
    record: the next resume finishes the run instead of saying there is nothing to do."""
    state = StateDir(tmp_path)
    run, writer = _new(state)
    with writer:
        writer.append({"event": "run_started", "pid": 10, "host": "h"})
        for task in "abc":
            writer.append({"event": "task_started", "task": task, "attempt": 1, "pid": 11, "pgid": 11, "host": "h", "log": "l"},
                          {"event": "task_finished", "task": task, "attempt": 1, "state": "success", "exit_code": 0, "duration": 1})
    unfinished, writer = open_run(state, "d", run.run_id)
    with writer:
        writer.append(plan_resume(unfinished))
    assert plan_resume(state.load_run("d", run.run_id))["tasks"] == []


def test_run_ids_are_unique_and_sorted_newest_first(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    made = []
    for when in (WHEN, WHEN, datetime(2026, 3, 2, tzinfo=UTC), WHEN.replace(year=2025)):
        run, writer = _new(state, when)
        writer.close()
        made.append(run.run_id)
    assert made[:2] == ["manual__20260301T060000Z", "manual__20260301T060000Z-2"]
    assert state.run_ids("d") == ["manual__20260302T000000Z", "manual__20260301T060000Z-2",
                                  "manual__20260301T060000Z", "manual__20250301T060000Z"]
    assert [r.run_id for r in state.runs()] == state.run_ids("d")
    assert state.dag_ids() == ["d"] and state.runs("other") == []
    assert unique_run_id(state, "d", "scheduled", WHEN) == "scheduled__20260301T060000Z"


def test_runs_are_read_afresh_and_kept_by_nobody(tmp_path: Path) -> None:
    # A daemon's StateDir kept every RunState it ever listed: ~27 kB a run, for its whole life.
    state = StateDir(tmp_path)
    run, writer = _new(state)
    first = state.runs()[0]
    writer.append({"event": "run_started", "pid": 1, "host": "h"})
    writer.close()
    again = state.runs()[0]
    assert again is not first and again.state is RunStatus.RUNNING
    assert not any(isinstance(v, dict) and v for k, v in vars(state).items() if k != "_heads")


def test_run_heads_come_from_first_records_and_are_read_once(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    _, writer = _new(state, kind="scheduled")
    writer.close()
    _, writer = _new(state, when=datetime(2026, 3, 2, tzinfo=UTC))
    writer.append({"event": "run_started", "pid": 1, "host": "h"})
    heads = state.run_heads("d")
    assert [(h.run_id, h.kind, h.logical_date) for h in heads] == [
        ("manual__20260302T000000Z", "manual", datetime(2026, 3, 2, tzinfo=UTC)),
        ("scheduled__20260301T060000Z", "scheduled", WHEN)]
    writer.append({"event": "run_finished", "state": "success"})
    writer.close()
    assert state.run_heads("d")[0] is heads[0]  # later records do not change a head: not read again
    assert state.run_heads("other") == [] and state.broken == []


def test_run_heads_pass_over_a_creation_cut_short_and_name_a_damaged_first_record(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    _, writer = _new(state)
    writer.close()
    good = state.journal_path("d", "manual__20260301T060000Z")
    cut = state.journal_path("d", "manual__20260101T000000Z")
    cut.write_bytes(good.read_bytes()[:50])  # no whole record: no run, nothing damaged
    assert [h.run_id for h in state.run_heads("d")] == ["manual__20260301T060000Z"] and state.broken == []
    _, writer = _new(state, when=datetime(2025, 1, 1, tzinfo=UTC))
    writer.append({"event": "run_started", "pid": 1, "host": "h"})  # a whole record after the first
    writer.close()
    damaged = state.journal_path("d", "manual__20250101T000000Z")
    damaged.write_bytes(damaged.read_bytes().replace(b'"manual"', b'"manuel"', 1))
    assert [h.run_id for h in state.run_heads("d")] == ["manual__20260301T060000Z"]
    [(path, error)] = state.broken
    assert path == str(damaged) and "checksum mismatch" in error, error


def test_missing_runs_and_bad_journals(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    with pytest.raises(DagNotFound, match="unknown DAG 'd': no runs of it in "):
        state.load_run("d", "r")
    path = state.journal_path("d", "manual__20260101T000000Z")
    with journal.JournalWriter(path) as writer:
        writer.append({"event": "task_started", "task": "a", "attempt": 1})
    with pytest.raises(RunNotFound, match="unknown run 'r' of DAG 'd'"):
        state.load_run("d", "r")
    with pytest.raises(StateError, match="does not start with a run_created record"):
        read_run(path)
    assert state.runs() == [] and len(state.broken) == 1
    path.write_bytes(b"")  # a creation cut before its first write: no run, and nothing damaged
    with pytest.raises(EmptyJournal):
        read_run(path)
    assert state.runs() == [] and state.broken == []
    with pytest.raises(RunNotFound, match="its journal holds no record"):
        state.load_run("d", "manual__20260101T000000Z")


def test_ids_that_are_paths_reach_no_journal(tmp_path: Path) -> None:
    """`gitflowd clear other ../d/RUN --task a` cleared the run of DAG d: the ids name files."""
    state = StateDir(tmp_path)
    run, writer = _new(state)
    writer.close()
    state.journal_path("other", "x").parent.mkdir(parents=True)
    with pytest.raises(RunNotFound, match=f"unknown run '../d/{run.run_id}' of DAG 'other'"):
        state.load_run("other", f"../d/{run.run_id}")
    with pytest.raises(DagNotFound, match="unknown DAG 'other/../d'"):
        state.load_run("other/../d", run.run_id)
    with pytest.raises(RunNotFound):
        open_run(state, "other", f"../d/{run.run_id}")  # what clear and resume open for writing


def test_an_unknown_task_in_a_record_is_reported_as_corruption(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    run, writer = _new(state)
    with writer:
        writer.append({"event": "task_started", "task": "ghost", "attempt": 1})
    with pytest.raises(JournalCorrupt, match=r":2: corrupt journal record: unexpected 'task_started'"):
        state.load_run("d", run.run_id)


def test_unknown_events_are_ignored_for_forward_compatibility() -> None:
    created = {"event": "run_created", "seq": 0, "ts": "2026-01-01T00:00:00Z", "dag_id": "d", "run_id": "r",
               "kind": "manual", "logical_date": "2026-01-01T00:00:00+00:00", "commit": "c", "dag": DAG.to_dict()}
    run = replay([created, {"event": "future_thing", "seq": 1, "ts": "2026-01-01T00:00:01Z"}])
    assert run.last_seq == 1 and run.state is RunStatus.QUEUED


def test_a_task_waiting_for_its_retry_when_the_run_is_interrupted_is_interrupted(tmp_path) -> None:
    """Nothing retries it until a resume (which does): `up_for_retry` would say otherwise."""
    from gitflowd import journal
    from gitflowd.state import TaskStatus
    from gitflowd.statedir import StateDir
    from runfactory import T0, make_dag, write_run

    path = write_run(tmp_path, make_dag("r", {"a": []}), "manual__x", T0, {}, finish=None)
    with journal.JournalWriter(path) as writer:
        writer.append({"event": journal.TASK_STARTED, "task": "a", "attempt": 1, "pid": 7, "host": "h"},
                      {"event": journal.TASK_FINISHED, "task": "a", "attempt": 1, "state": "failed", "exit_code": 1,
                       "retry_at": "2026-01-01T00:00:30+00:00"})
        before = StateDir(tmp_path).load_run("r", "manual__x")
        writer.append({"event": journal.RUN_FINISHED, "state": "interrupted"})
    assert before.tasks["a"].state is TaskStatus.UP_FOR_RETRY
    run = StateDir(tmp_path).load_run("r", "manual__x")
    assert run.tasks["a"].state is TaskStatus.INTERRUPTED and run.tasks["a"].attempts[-1].state is TaskStatus.FAILED
    assert run.tasks["a"].state.needs_rerun


def test_a_task_cleared_or_skipped_after_an_attempt_has_no_exit_code_or_times_of_it(tmp_path) -> None:
    """A cleared task read 'pending, exit 1' (and a task a resume skipped kept its old attempt's
    exit code and end): only the attempt its state came from has a say."""
    from runfactory import T0, make_dag, write_run

    path = write_run(tmp_path, make_dag("r", {"a": [], "b": []}), "manual__x", T0, {"a": ["failed"], "b": ["failed"]})
    state = StateDir(tmp_path)
    failed = state.load_run("r", "manual__x").tasks["a"]
    assert (failed.exit_code, failed.current.number) == (1, 1) and failed.started and failed.ended
    with journal.JournalWriter(path) as writer:
        writer.append({"event": journal.TASKS_CLEARED, "tasks": ["a", "b"]},
                      {"event": journal.RUN_STARTED, "pid": 1, "host": "h"},
                      {"event": journal.TASK_SKIPPED, "task": "b", "state": "skipped", "reason": "trigger rule"})
    run = state.load_run("r", "manual__x")
    for task, status in ((run.tasks["a"], TaskStatus.PENDING), (run.tasks["b"], TaskStatus.SKIPPED)):
        assert task.state is status and len(task.attempts) == 1  # the history stays
        assert (task.current, task.exit_code, task.started, task.ended) == (None, None, None, None)
