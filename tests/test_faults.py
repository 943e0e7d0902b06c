"""Failed fsyncs and writes in a whole `gitflowd run` (DESIGN.md section 7, "test like SQLite").

A wrapper process makes the Nth `os.fsync` (or `os.write` to a state file) fail with EIO or
ENOSPC, once or for good, then runs the real CLI; N goes 1, 2, 3... until a run completes
without reaching it. The disk cannot be made to fail here, so this one call is injected;
everything else is real (Git, processes, files). Each time:
- the run stops with one line naming what failed, exit 1, no traceback;
- what the journal holds stays readable (`status` works) and no task process is left;
- a later `resume` (or a new run, if none was recorded) completes, and a task whose success
  was durable before the fault is not run again.
The same for a `resume` and a `clear` of a run whose task failed: the fault hits those instead.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitflowd import journal
from tests.conftest import GIT_ENV

DAG = """[dag]
max_active_tasks = 2

[tasks.a]
cmd = "echo $GITFLOWD_TASK >> $OUT"
[tasks.b]
cmd = "test ! -e $OUT.broken && echo $GITFLOWD_TASK >> $OUT"
deps = ["a"]
[tasks.c]
cmd = "echo $GITFLOWD_TASK >> $OUT"
deps = ["a"]
[tasks.d]
cmd = "echo $GITFLOWD_TASK >> $OUT"
deps = ["b", "c"]
"""

# Patches one call, counts, and runs the CLI in this process (a real process of its own).
WRAPPER = """
import errno, os, sys
call, nth, mode, code = sys.argv[1], int(sys.argv[2]), sys.argv[3], getattr(errno, sys.argv[4])
state = os.path.realpath(sys.argv[5])
real = getattr(os, call)
seen = [0]
def failing(fd, *args):
    if call == "write" and not os.path.realpath(f"/proc/self/fd/{fd}").startswith(state):
        return real(fd, *args)  # only writes to the state directory (not stdout, pipes, logs of tasks)
    seen[0] += 1
    if seen[0] == nth or (mode == "forever" and seen[0] > nth):
        raise OSError(code, os.strerror(code))
    return real(fd, *args)
setattr(os, call, failing)
from gitflowd.cli import main
code_ = main(sys.argv[6:])
sys.stderr.write(f"\\nreached={int(seen[0] >= nth)}\\n")
sys.exit(code_)
"""


def _env(out: Path) -> dict[str, str]:
    env = {**os.environ, **GIT_ENV, "OUT": str(out)}
    for key in ("GITFLOWD_REPO", "GITFLOWD_STATE", "GITFLOWD_SITE"):
        env.pop(key, None)
    return env


def _faulty(repo: Path, state: Path, out: Path, fault: tuple[str, int, str, str], command: str) -> subprocess.CompletedProcess[str]:
    """`command` ("run"; "resume" or "clear" of a run whose task b failed) with the fault injected."""
    call, nth, mode, code = fault
    if command == "run":
        args = ["run", "d", "--no-render"]
    else:
        Path(f"{out}.broken").touch()
        assert _cli(state, out, repo, "run", "d", "--no-render").returncode == 1  # b fails, d upstream_failed
        Path(f"{out}.broken").unlink()
        run_id = next((state / "runs" / "d").glob("*.jsonl")).stem
        args = ["resume", "d", run_id] if command == "resume" else ["clear", "d", run_id, "--task", "a", "--no-render"]
    return subprocess.run([sys.executable, "-c", WRAPPER, call, str(nth), mode, code, str(state),
                           "--repo", str(repo), "--state", str(state), "--site", str(state / "site"), *args],
                          env=_env(out), capture_output=True, text=True, timeout=120)


def _cli(state: Path, out: Path, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitflowd", "--repo", str(repo), "--state", str(state),
                           "--site", str(state / "site"), *args], env=_env(out), capture_output=True, text=True, timeout=120)


def _durable_successes(state: Path) -> set[str]:
    """Tasks a journal records as succeeded (a torn tail, never acknowledged, is dropped by the reader)."""
    return {record["task"] for path in (state / "runs" / "d").glob("*.jsonl") for record in journal.read(path)
            if record["event"] == "task_finished" and record.get("state") == "success"}


@pytest.mark.parametrize("command", ["run", "resume", "clear"])
@pytest.mark.parametrize("call,code", [("fsync", "EIO"), ("write", "ENOSPC")])
@pytest.mark.parametrize("mode", ["once", "forever"])
def test_a_failed_fsync_or_write_stops_the_run_cleanly_and_resume_finishes_it(make_repo, tmp_path, command, call, mode, code):
    repo = make_repo({"dags/d.toml": DAG})
    for nth in range(1, 80):
        state, out = tmp_path / f"{call}-{mode}-{nth}", tmp_path / f"out-{call}-{mode}-{nth}"
        done = _faulty(repo.path, state, out, (call, nth, mode, code), command)
        reached = done.stderr.rstrip().endswith("reached=1")
        if not reached:  # the run needed fewer calls than N: the sweep is complete
            assert done.returncode == 0, done.stderr
            assert nth > 1, "the sweep ended before it injected any fault"
            return
        lines = [line for line in done.stderr.splitlines() if line and not line.startswith("reached=")]
        assert done.returncode in (0, 1) and "Traceback" not in done.stderr, (nth, done.stderr)
        said = [line for line in lines if os.strerror(getattr(errno, code)) in line]
        if done.returncode == 0:  # outside the run's journal (the DAG registry): a warning, the run goes on
            assert said and all(" WARNING " in line for line in said), (nth, done.stderr)
            assert set(out.read_text().split()) == {"a", "b", "c", "d"}, nth
            continue
        errors = [line for line in lines if line.startswith("gitflowd: error: ")]
        assert len(errors) == 1 and errors[0] in said, (nth, done.stderr)
        _finish_after_fault(repo.path, state, out, nth, may_rerun={"a", "b", "c", "d"} if command == "clear" else set())
    pytest.fail("the run never completed without reaching the fault")


def _finish_after_fault(repo: Path, state: Path, out: Path, nth: int, may_rerun: set[str]) -> None:
    """Nothing is left running, the state reads, and the work completes without re-running a
    durable success (but what a clear whose record was written before its fsync failed reset)."""
    assert not _task_processes(state), nth
    durable = _durable_successes(state)
    ran_before = out.read_text().split() if out.exists() else []
    status = _cli(state, out, repo, "status", "d") if state.exists() else None
    assert status is None or "Traceback" not in status.stderr, (nth, status.stderr)
    runs = sorted((state / "runs" / "d").glob("*.jsonl")) if (state / "runs" / "d").is_dir() else []
    again = _cli(state, out, repo, "resume", "d", runs[0].stem) if runs else _cli(state, out, repo, "run", "d", "--no-render")
    if again.returncode != 0 and "nothing to resume" in again.stderr:
        return  # the fault hit after run_finished was durable
    assert again.returncode == 0, (nth, again.stdout, again.stderr)
    ran_after = out.read_text().split()[len(ran_before):]
    assert not (durable - may_rerun) & set(ran_after), (nth, durable, ran_after)  # a durable success never runs again
    assert set(ran_before) | set(ran_after) >= {"a", "b", "c", "d"}, nth


def _task_processes(state: Path) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if str(state).encode() in Path(entry.path, "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_an_empty_journal_is_no_run_and_does_not_take_its_id(make_repo, tmp_path):
    """A runner killed between creating a journal and writing its run_created (or a disk
    failing there) leaves an empty file: it holds no run. It made `status` and `render` exit 1
    for good, and a scheduled tick whose creation was cut could never be created again."""
    from datetime import UTC, datetime

    from gitflowd.dag import Dag, Task
    from gitflowd.runs import create_run, plan_run
    from gitflowd.statedir import StateDir

    repo = make_repo({"dags/d.toml": DAG})
    state, out = tmp_path / "state", tmp_path / "out"
    assert _cli(state, out, repo.path, "run", "d", "--no-render").returncode == 0
    empty = state / "runs" / "d" / "scheduled__20260101T000000Z.jsonl"
    empty.touch()
    listed = _cli(state, out, repo.path, "status", "d")
    assert listed.returncode == 0 and listed.stderr == "" and "scheduled__" not in listed.stdout
    named = _cli(state, out, repo.path, "status", "d", "scheduled__20260101T000000Z")
    assert named.returncode == 1 and named.stderr.strip() == (
        "gitflowd: error: unknown run 'scheduled__20260101T000000Z' of DAG 'd' (its journal holds no record: the run's creation never completed)")
    rendered = _cli(state, out, repo.path, "render")
    assert rendered.returncode == 0, rendered.stderr
    dag = Dag("d", {"a": Task("a", cmd="true")})
    run = plan_run(StateDir(state), dag, kind="scheduled", logical_date=datetime(2026, 1, 1, tzinfo=UTC), commit="c" * 40)
    assert run.run_id == "scheduled__20260101T000000Z"
    create_run(StateDir(state), run).close()  # the tick gets its run after all
    assert empty.stat().st_size > 0
    torn = state / "runs" / "d" / "scheduled__20260102T000000Z.jsonl"
    torn.write_bytes(b'{"dag_id":"d","event":"run_cre')  # its first record cut short
    quiet = _cli(state, out, repo.path, "status", "d")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr  # no warning on every command
    run = plan_run(StateDir(state), dag, kind="scheduled", logical_date=datetime(2026, 1, 2, tzinfo=UTC), commit="c" * 40)
    assert run.run_id == torn.stem
    create_run(StateDir(state), run).close()
    assert [r["event"] for r in journal.read(torn)] == ["run_created"]
