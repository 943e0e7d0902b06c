"""Backfill: plans, the foreground command (oldest first, max_active_runs), reprocessing, bad input."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gitflowd.backfill import check_range, describe, plan_backfill
from gitflowd.errors import UsageError
from gitflowd.state import RunStatus, TaskStatus
from gitflowd.statedir import StateDir
from tests.conftest import GIT_ENV, GitRepo, hang_up_terminal
from tests.runfactory import make_dag, write_run

UTC = timezone.utc


def daily(cmd: str, extra: str = "") -> str:
    return f'[dag]\nschedule = "@daily"\n{extra}\n[tasks.work]\ncmd = {json.dumps(cmd)}\n'


def state_of(repo: GitRepo) -> StateDir:
    return StateDir(repo.path / ".gitflowd" / "state")


def one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gitflowd: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# -- plans ---------------------------------------------------------------------------------


def test_plan_decides_per_tick(tmp_path: Path) -> None:
    dag = make_dag("d", {"t": []})
    for day, finish in ((1, "success"), (2, "failed"), (3, "interrupted"), (4, None)):
        write_run(tmp_path, dag, f"scheduled__2026010{day}", datetime(2026, 1, day, tzinfo=UTC), {"t": ["success"]}, finish=finish)
    runs = StateDir(tmp_path).runs("d")
    plans = {mode: plan_backfill(dag, runs, date(2026, 1, 1), date(2026, 1, 5), mode) for mode in ("none", "failed", "all")}
    actions = {mode: [step.action.value for step in steps] for mode, steps in plans.items()}
    assert actions["none"] == ["skip", "skip", "skip", "skip", "create"]
    assert actions["failed"] == ["skip", "resume", "resume", "skip", "create"]
    assert actions["all"] == ["rerun", "rerun", "rerun", "skip", "create"]  # a running run is never touched
    assert plans["failed"][1].run_id == "scheduled__20260102"
    assert describe(plans["all"]) == "1 to create, 3 to re-run, 1 left alone"
    assert [s.tick for s in plans["none"]] == [datetime(2026, 1, d, tzinfo=UTC) for d in range(1, 6)]


def test_an_unfinished_run_nobody_runs_is_resumed_in_any_mode(tmp_path: Path) -> None:
    dag = make_dag("d", {"t": []})
    write_run(tmp_path, dag, "backfill__20260101", datetime(2026, 1, 1, tzinfo=UTC), {"t": ["success"]}, finish=None)
    runs = StateDir(tmp_path).runs("d")
    for mode in ("none", "failed", "all"):
        [step] = plan_backfill(dag, runs, date(2026, 1, 1), date(2026, 1, 1), mode, in_progress=lambda _run: False)
        assert (step.action.value, step.run_id, step.reason) == ("resume", "backfill__20260101", "running (left unfinished)")


def test_ticks_after_now_are_left_to_the_schedule(tmp_path: Path) -> None:
    # A backfill run of a tick to come would run before its data interval ends, and the
    # scheduler skips a tick that has a run: it would never get its scheduled run.
    dag = make_dag("d", {"t": []})
    now = datetime(2026, 1, 3, 12, tzinfo=UTC)
    steps = plan_backfill(dag, [], date(2026, 1, 1), date(2026, 1, 9), now=now)
    assert [s.tick for s in steps] == [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    with pytest.raises(UsageError, match="--start 2026-01-04 is in the future"):
        check_range(dag, datetime(2026, 1, 4, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC), "2026-01-04", "2026-01-05", now)


def test_plan_rejects_an_unknown_reprocess_mode() -> None:
    with pytest.raises(ValueError, match="--reprocess must be one of none, failed, all"):
        plan_backfill(make_dag("d", {"t": []}), [], date(2026, 1, 1), date(2026, 1, 2), "some")


# -- the command ---------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_records_nothing(make_repo: Callable[..., GitRepo], cli) -> None:
    repo = make_repo({"dags/seoul.toml": daily("true", 'timezone = "Asia/Seoul"\nstart_date = 2026-01-02')})
    done = cli("backfill", "seoul", "--start", "2026-01-01", "--end", "2026-01-03", "--dry-run", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].split() == ["TICK", "ACTION", "RUN", "REASON"]
    assert out[1].startswith("2026-01-02 00:00 KST  create") and out[2].startswith("2026-01-03 00:00 KST  create")
    assert out[-1] == "backfill seoul: 2 to create (dry run: nothing recorded)"
    assert "no runs before its start_date" in done.stderr
    assert state_of(repo).runs() == []


def test_backfill_runs_every_tick_oldest_first_one_at_a_time(make_repo: Callable[..., GitRepo], cli, tmp_path: Path) -> None:
    order = tmp_path / "order"
    repo = make_repo({"dags/d.toml": daily(f"echo {{{{ ds }}}} >> {order}; sleep 0.2", "max_active_runs = 1")})
    done = cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-04", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "backfill d: 4 to create"
    assert order.read_text().split() == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    runs = sorted(state_of(repo).runs("d"), key=lambda r: r.logical_date)
    assert [r.run_id for r in runs] == [f"backfill__2026010{d}T000000Z" for d in range(1, 5)]
    assert all(r.state is RunStatus.SUCCESS and r.kind == "backfill" for r in runs)
    for earlier, later in zip(runs, runs[1:]):
        assert earlier.ended <= later.started  # max_active_runs = 1: never two at once
    assert (repo.path / ".gitflowd" / "site" / "dags").is_dir()


def test_a_foreground_backfill_shows_the_dags_source_and_version_on_the_site(make_repo: Callable[..., GitRepo], cli) -> None:
    repo = make_repo({"dags/d.toml": daily("true")})  # never run by `run` or a daemon: backfill is its first contact
    assert cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-01", cwd=repo.path).returncode == 0
    page = (repo.path / ".gitflowd" / "site" / "dags" / "d" / "index.html").read_text()
    assert "No versions recorded" not in page and f"at <code>{repo.head()[:8]}</code>" in page


def test_max_active_runs_two_overlaps_but_never_three(make_repo: Callable[..., GitRepo], cli, tmp_path: Path) -> None:
    live, peak = tmp_path / "live", tmp_path / "peak"
    live.mkdir()
    cmd = f"touch {live}/$GITFLOWD_RUN_ID; ls {live} | wc -l >> {peak}; sleep 0.3; rm {live}/$GITFLOWD_RUN_ID"
    repo = make_repo({"dags/d.toml": daily(cmd, "max_active_runs = 2")})
    done = cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-06", "--parallelism", "4", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    assert max(int(n) for n in peak.read_text().split()) <= 2
    assert len(state_of(repo).runs("d")) == 6


def test_reprocess_failed_resumes_only_the_failures(make_repo: Callable[..., GitRepo], cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("2026-01-02\n")
    repo = make_repo({"dags/d.toml": daily(f"! grep -qx {{{{ ds }}}} {broken}")})
    first = cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-03", cwd=repo.path)
    assert first.returncode == 1
    assert "backfill__20260102T000000Z: failed" in first.stdout
    broken.write_text("")
    plain = cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-03", cwd=repo.path)
    assert plain.returncode == 0 and plain.stdout.splitlines()[0] == "backfill d: 3 left alone"
    again = cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-03", "--reprocess", "failed", cwd=repo.path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[0] == "backfill d: 1 to resume, 2 left alone"
    attempts = {r.run_id: [a.number for a in r.tasks["work"].attempts] for r in state_of(repo).runs("d")}
    assert attempts == {"backfill__20260101T000000Z": [1], "backfill__20260102T000000Z": [1, 2], "backfill__20260103T000000Z": [1]}


def test_reprocess_all_runs_every_task_again(make_repo: Callable[..., GitRepo], cli, tmp_path: Path) -> None:
    repo = make_repo({"dags/d.toml": daily("true")})
    assert cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-02", cwd=repo.path).returncode == 0
    again = cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-02", "--reprocess", "all", cwd=repo.path)
    assert again.returncode == 0 and again.stdout.splitlines()[0] == "backfill d: 2 to re-run"
    for run in state_of(repo).runs("d"):
        assert run.state is RunStatus.SUCCESS and [a.number for a in run.tasks["work"].attempts] == [1, 2]


def test_a_stopped_backfill_continues_when_run_again(make_repo: Callable[..., GitRepo], cli, tmp_path: Path) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    repo = make_repo({"dags/d.toml": daily(f"touch {started}; while [ ! -e {gate} ]; do sleep 0.05; done", "max_active_runs = 1")})
    proc = subprocess.Popen([sys.executable, "-m", "gitflowd", "backfill", "d", "--start", "2026-01-01", "--end", "2026-01-03", "--no-render"],
                            cwd=repo.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **GIT_ENV})
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the first run never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # the running run may finish; the two queued ones stay queued
    gate.touch()
    assert proc.wait(60) == 1
    assert sorted(r.state.value for r in state_of(repo).runs("d")) == ["queued", "queued", "success"]
    again = cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-03", "--no-render", cwd=repo.path)
    assert again.returncode == 0 and again.stdout.splitlines()[0] == "backfill d: 2 to resume, 1 left alone", again.stdout + again.stderr
    assert [r.state for r in state_of(repo).runs("d")] == [RunStatus.SUCCESS] * 3


def test_a_terminal_that_hangs_up_stops_the_backfill_cleanly(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    """SIGHUP (a closed terminal, a dropped ssh session) ended a foreground backfill at once:
    its running run stayed 'running' with its task orphaned. It is a stop like SIGTERM now, and
    the writes to the dead terminal (EIO) do not end it either."""
    gate, started = tmp_path / "gate", tmp_path / "started"
    repo = make_repo({"dags/d.toml": daily(f"touch {started}; while [ ! -e {gate} ]; do sleep 0.05; done", "max_active_runs = 1")})
    # the running run may finish; the two queued ones stay queued
    code = hang_up_terminal(["backfill", "d", "--start", "2026-01-01", "--end", "2026-01-03", "--no-render"],
                            repo.path, started.exists, then=gate.touch)
    assert code == 1
    assert sorted(r.state.value for r in state_of(repo).runs("d")) == ["queued", "queued", "success"]


def test_a_progress_line_on_a_terminal(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    repo = make_repo({"dags/d.toml": daily("true")})
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gitflowd", "backfill", "d", "--start", "2026-01-01", "--end", "2026-01-03"],
                            cwd=repo.path, stdout=child, stderr=subprocess.PIPE, env={**os.environ, **GIT_ENV})
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        output += chunk
    assert proc.wait(120) == 0
    os.close(main)
    text = output.decode()
    assert "\r\x1b[K3/3 runs done, 0 running, 0 queued" in text
    assert "backfill__20260103T000000Z: success" in text


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["nope", "--start", "2026-01-01", "--end", "2026-01-02"], ["unknown DAG 'nope' (DAGs: d, manual)"]),
        (["d", "--start", "yesterday", "--end", "2026-01-02"], ["bad --start 'yesterday'"]),
        (["d", "--start", "2026-01-05", "--end", "2026-01-02"], ["--end 2026-01-02 is before --start 2026-01-05"]),
        (["manual", "--start", "2026-01-01", "--end", "2026-01-02"], ["DAG 'manual' has no schedule"]),
        (["d", "--start", "2999-01-01", "--end", "2999-01-02"], ["--start 2999-01-01 is in the future"]),
    ],
)
def test_bad_input_is_one_line_and_records_nothing(make_repo: Callable[..., GitRepo], cli, args: list[str], fragments: list[str]) -> None:
    repo = make_repo({"dags/d.toml": daily("true"), "dags/manual.toml": "[tasks.t]\ncmd = 'true'\n"})
    for extra in ([], ["--dry-run"]):
        one_line_error(cli("backfill", *args, *extra, cwd=repo.path), *fragments)
    assert state_of(repo).runs() == []


def test_a_range_reaching_past_now_plans_only_the_ticks_that_have_come(make_repo: Callable[..., GitRepo], cli) -> None:
    repo = make_repo({"dags/d.toml": daily("true")})
    today = datetime.now(UTC).date()
    done = cli("backfill", "d", "--start", str(today - timedelta(days=2)), "--end", str(today + timedelta(days=3)), "--dry-run", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "backfill d: 3 to create (dry run: nothing recorded)", done.stdout  # today's midnight has come
    assert done.stderr.startswith("gitflowd: note: ticks of DAG 'd' after now are not planned; the schedule runs them when they come"), done.stderr


def test_a_bad_reprocess_mode_is_a_usage_error(make_repo: Callable[..., GitRepo], cli) -> None:
    repo = make_repo({"dags/d.toml": daily("true")})
    done = cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-02", "--reprocess", "some", cwd=repo.path)
    assert done.returncode == 2 and "invalid choice: 'some'" in done.stderr


def test_a_failing_template_stops_before_anything_is_recorded(make_repo: Callable[..., GitRepo], cli) -> None:
    repo = make_repo({"dags/d.toml": daily("echo {{ params.conf.missing }}", extra="params = { conf = {} }")})
    done = cli("backfill", "d", "--start", "2026-01-01", "--end", "2026-01-02", cwd=repo.path)
    assert done.returncode != 0 and "work" in done.stderr
    assert state_of(repo).runs() == []


def test_runs_of_a_backfill_have_data_intervals(make_repo: Callable[..., GitRepo], cli) -> None:
    repo = make_repo({"dags/d.toml": daily("true")})
    assert cli("backfill", "d", "--start", "2026-01-02", "--end", "2026-01-02", cwd=repo.path).returncode == 0
    (run,) = state_of(repo).runs("d")
    assert (run.data_interval_start, run.data_interval_end) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    assert run.tasks["work"].state is TaskStatus.SUCCESS
