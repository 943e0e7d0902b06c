"""Progress reporter: one line per task state change off a terminal, a redrawn summary on one."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from gitflowd.dag import Dag, Task
from gitflowd.progress import Progress
from gitflowd.runs import plan_run
from gitflowd.state import apply
from gitflowd.statedir import StateDir


def _feed(progress: Progress, run, *records: dict) -> None:
    for seq, record in enumerate(records, start=1):
        full = {"seq": seq, "ts": "2026-01-01T00:00:00Z", **record}
        apply(run, full)
        progress.on_record(full, run)


def _run(tmp_path: Path):
    dag = Dag("d", {"a": Task("a", cmd="true"), "b": Task("b", cmd="true", deps=("a",))})
    return plan_run(StateDir(tmp_path), dag, kind="manual", logical_date=datetime(2026, 1, 1, tzinfo=UTC), commit="c" * 40)


RECORDS = (
    {"event": "run_started", "pid": 1, "host": "h"},
    {"event": "task_started", "task": "a", "attempt": 1},
    {"event": "task_finished", "task": "a", "attempt": 1, "state": "failed", "exit_code": 2, "duration": 0.25,
     "retry_at": "2026-01-01T00:00:05Z"},
    {"event": "task_started", "task": "a", "attempt": 2},
    {"event": "task_finished", "task": "a", "attempt": 2, "state": "failed", "exit_code": 2, "duration": 0.25},
    {"event": "task_skipped", "task": "b", "state": "upstream_failed", "reason": "a failed"},
    {"event": "run_finished", "state": "failed"},
)


def test_lines_when_not_a_terminal(tmp_path: Path) -> None:
    out = io.StringIO()
    run = _run(tmp_path)
    _feed(Progress(run, out, tty=False), run, *RECORDS)
    assert out.getvalue().splitlines() == [
        "a: running (attempt 1)  [0/2 done, 1 running, 0 failed]",
        "a: failed (attempt 1, 0.2s, exit code 2); retry at 2026-01-01T00:00:05Z  [0/2 done, 0 running, 0 failed]",
        "a: running (attempt 2)  [0/2 done, 1 running, 0 failed]",
        "a: failed (attempt 2, 0.2s, exit code 2)  [1/2 done, 0 running, 1 failed]",
        "b: upstream_failed (a failed)  [2/2 done, 0 running, 2 failed]",
        f"run {run.run_id}: failed",
    ]


def test_a_task_that_could_not_start_is_never_said_to_run(tmp_path: Path) -> None:
    out = io.StringIO()
    run = _run(tmp_path)
    _feed(Progress(run, out, tty=False), run,
          {"event": "task_started", "task": "a", "attempt": 1, "pid": None, "pgid": None, "host": "h"},
          {"event": "task_finished", "task": "a", "attempt": 1, "state": "failed", "exit_code": None, "duration": 0.0,
           "error": "[Errno 2] No such file or directory: 'no-such-prog'"})
    assert out.getvalue().splitlines() == [
        "a: failed (attempt 1, 0.0s, [Errno 2] No such file or directory: 'no-such-prog')  [1/2 done, 0 running, 1 failed]"]


def test_one_redrawn_line_on_a_terminal(tmp_path: Path) -> None:
    out = io.StringIO()
    run = _run(tmp_path)
    _feed(Progress(run, out, tty=True, interval=0.0), run, *RECORDS)
    text = out.getvalue()
    # The one line said only how many failed: the end names the run's state, what did not
    # succeed and where its log is.
    counts, *end = text.split("\n")
    assert "\n" not in counts and counts.endswith("\r\x1b[K2/2 done, 0 running, 2 failed")
    assert "\r\x1b[K0/2 done, 1 running, 0 failed" in counts
    assert end == [f"run {run.run_id}: failed", f"  a: failed, exit code 2: gitflowd logs d {run.run_id} a",
                   "  b: upstream_failed (a failed)",
                   f"fix and commit, then run again what failed: gitflowd resume d {run.run_id} --rev HEAD", ""]


def test_counts_kept_in_step_match_a_recount(tmp_path: Path) -> None:
    # The counts are updated per record (O(1)), never recounted: after every record of a run,
    # a resume and a clear they must equal a count from scratch.
    run = _run(tmp_path)
    progress = Progress(run, io.StringIO(), tty=False)
    more = ({"event": "run_resumed", "commit": "d" * 40, "tasks": ["a", "b"], "dag": run.dag.to_dict()},
            {"event": "task_started", "task": "a", "attempt": 3},
            {"event": "task_finished", "task": "a", "attempt": 3, "state": "success", "exit_code": 0, "duration": 0.1},
            {"event": "tasks_cleared", "tasks": ["a"]})
    for seq, record in enumerate((*RECORDS, *more), start=1):
        full = {"seq": seq, "ts": "2026-01-01T00:00:00Z", **record}
        apply(run, full)
        progress.on_record(full, run)
        fresh = Progress(run, io.StringIO(), tty=False)
        assert progress.summary() == fresh.summary(), record


class _HungUpTerminal(io.StringIO):
    """A terminal whose other end closed: every write fails with EIO."""

    def write(self, text: str) -> int:
        raise OSError(5, "Input/output error")


def test_a_terminal_that_hung_up_silences_progress_and_the_run_goes_on(tmp_path: Path) -> None:
    # BrokenPipeError was handled, EIO (a closed terminal, a dropped ssh session) was not: it
    # escaped the listener on every record.
    run = _run(tmp_path)
    for tty in (True, False):
        progress = Progress(run, _HungUpTerminal(), tty=tty)
        _feed(progress, run, *RECORDS)  # raises nothing
        assert progress._gone
