"""The progress reporter: an engine listener that tells a person how a run is going.

Flow: the engine calls `on_record(record, run)` after every durable batch -> the reporter
keeps each task's state and the counts in step (O(1) per record) -> on a terminal it
redraws one line `done/running/failed of total` (at most ten times a second, and at the
end); elsewhere (a pipe, a log file, CI) it prints one line per task state change. If the
reader goes away (`gitflowd run | head -1`), the reporter falls silent and the run goes on.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from typing import Any, TextIO

from gitflowd import journal
from gitflowd.journal import signal_name
from gitflowd.state import RunState, TaskStatus, task_state_of

_DONE = frozenset(TaskStatus) - {TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.UP_FOR_RETRY}
_FAILED = frozenset({TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.UPSTREAM_FAILED, TaskStatus.INTERRUPTED})


class Progress:
    def __init__(self, run: RunState, stream: TextIO | None = None, tty: bool | None = None, interval: float = 0.1,
                 autoflush: bool = True):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.autoflush = autoflush  # False: lines are flushed by batch_done(), which the engine calls
        self._drawn = 0.0
        self._gone = False  # the reader closed its end of the pipe
        self._reset(run)

    def _reset(self, run: RunState) -> None:
        self._states = {task_id: task.state for task_id, task in run.tasks.items()}
        self._counts = Counter(self._states.values())
        self._done = sum(self._counts[s] for s in _DONE)
        self._failed = sum(self._counts[s] for s in _FAILED)

    def on_record(self, record: dict[str, Any], run: RunState) -> None:
        event = record["event"]
        if "task" in record and record["task"] in run.tasks:
            # As of this record: it is delivered after the run has moved on (a start with its end).
            self._set(record["task"], task_state_of(record) or run.tasks[record["task"]].state)
        if event == journal.TASKS_CLEARED or (event == journal.RUN_RESUMED and record.get("dag")):
            self._reset(run)
        if self.tty:
            self._draw(final=event == journal.RUN_FINISHED)
            if event == journal.RUN_FINISHED:
                self._write("".join(f"{line}\n" for line in outcome(record, run)), flush=True)
        else:
            self._line(record, run)

    def _set(self, task_id: str, state: TaskStatus) -> None:
        old = self._states.get(task_id)
        if old is not None:
            self._tally(old, -1)
        self._states[task_id] = state
        self._tally(state, 1)

    def _tally(self, state: TaskStatus, change: int) -> None:
        self._counts[state] += change
        self._done += change if state in _DONE else 0
        self._failed += change if state in _FAILED else 0

    def summary(self) -> str:
        return f"{self._done}/{len(self._states)} done, {self._counts[TaskStatus.RUNNING]} running, {self._failed} failed"

    def _draw(self, final: bool) -> None:
        now = time.monotonic()
        if not final and now - self._drawn < self.interval:
            return
        self._drawn = now
        self._write(f"\r\x1b[K{self.summary()}" + ("\n" if final else ""), flush=True)

    def _line(self, record: dict[str, Any], run: RunState) -> None:
        text = describe(record, run)
        if text:
            self._write(f"{text}  [{self.summary()}]\n" if "task" in record else f"{text}\n", flush=self.autoflush)

    def batch_done(self) -> None:
        """The engine delivered a batch of records: show their lines now (one flush per batch)."""
        self._write("", flush=True)

    def _write(self, text: str, flush: bool) -> None:
        if self._gone:
            return
        try:
            self.stream.write(text)
            if flush:
                self.stream.flush()
        except OSError:
            # Progress is for a person; a closed pipe (EPIPE) or a terminal that hung up (EIO)
            # is no reason to stop the run (nor, at exit, for Python to report the flush of
            # what is still buffered).
            self._gone = True
            _point_at_devnull(self.stream)


def _point_at_devnull(stream: TextIO) -> None:
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # not a real file (a StringIO, a closed stream)
        pass


SHOWN_AT_THE_END = 10  # failed tasks named under a terminal's last line


def outcome(record: dict[str, Any], run: RunState) -> list[str]:
    """What a terminal shows once the run ended: its one redrawn line said only how many
    tasks failed, so the run's state, each task that did not succeed, and where its log is."""
    lines = [describe(record, run)]
    bad = [task for task in run.tasks.values() if task.state in _FAILED]
    for task in bad[:SHOWN_AT_THE_END]:
        attempt = task.current
        detail = f", {_ended(attempt.exit_code, attempt.error)}" if attempt and (attempt.exit_code or attempt.error) else ""
        where = f": gitflowd logs {run.dag_id} {run.run_id} {task.task_id}" if attempt else f" ({task.reason})" if task.reason else ""
        lines.append(f"  {task.task_id}: {task.state.value}{detail}{where}")
    if len(bad) > SHOWN_AT_THE_END:
        lines.append(f"  ... and {len(bad) - SHOWN_AT_THE_END} more: gitflowd status {run.dag_id} {run.run_id}")
    if record.get("state") in NEXT_STEP:
        lines.append(NEXT_STEP[record["state"]].format(dag=run.dag_id, run=run.run_id))
    return lines


NEXT_STEP = {"failed": "fix and commit, then run again what failed: gitflowd resume {dag} {run} --rev HEAD",
             "interrupted": "continue it with: gitflowd resume {dag} {run}"}


def _ended(code: int | None, error: str | None) -> str:
    """'exit code 3', 'killed by SIGKILL' or why the process could not start."""
    if error:
        return error
    return f"killed by {signal_name(code)}" if code is not None and code < 0 else f"exit code {code}"


def describe(record: dict[str, Any], run: RunState) -> str:
    """One human line for a record ('' for records not worth a line)."""
    event, task = record["event"], record.get("task", "")
    if event == journal.TASK_STARTED:
        # No pid: the executor could not start it; its task_finished right after says why.
        return "" if "pid" in record and record["pid"] is None else f"{task}: running (attempt {record['attempt']})"
    if event == journal.TASK_FINISHED:
        detail = f"attempt {record['attempt']}, {record.get('duration', 0):.1f}s"
        code = record.get("exit_code")
        if code not in (None, 0) or record.get("error"):  # a signal: "killed by SIGKILL", not "exit code -9"
            detail += f", {_ended(code, record.get('error'))}"
        retry = f"; retry at {record['retry_at']}" if record.get("retry_at") else ""
        return f"{task}: {record['state']} ({detail}){retry}"
    if event == journal.TASK_SKIPPED:
        return f"{task}: {record['state']} ({record.get('reason', '')})"
    if event == journal.RUN_RESUMED:
        tasks = record.get("tasks", [])
        named = ", ".join(tasks[:5]) + (", ..." if len(tasks) > 5 else "")
        return f"resumed at {record['commit'][:8]}: re-running {len(tasks)} task(s)" + (f": {named}" if tasks else "")
    if event == journal.RUN_FINISHED:
        return f"run {run.run_id}: {record['state']}"
    return ""
