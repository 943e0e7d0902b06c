"""Run and task states, replayed from run journals (statedir.py finds the journals).

Flow: `journal.read()` yields the records of one run -> `replay(records)` folds them into
a `RunState` -> engine, site and CLI ask questions of `RunState` values and never open
journals themselves.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from gitflowd import journal
from gitflowd.dag import Dag
from gitflowd.errors import EmptyJournal, JournalCorrupt, StateError


class TaskStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    UP_FOR_RETRY = "up_for_retry"
    INTERRUPTED = "interrupted"
    TIMEOUT = "timeout"

    @property
    def settled(self) -> bool:
        """Final for this execution of the run (a resume may still re-run it)."""
        return self in SETTLED_TASK

    @property
    def needs_rerun(self) -> bool:
        """What resume runs again (with everything downstream)."""
        return self not in (TaskStatus.SUCCESS, TaskStatus.SKIPPED)


SETTLED_TASK = frozenset(
    {
        TaskStatus.SUCCESS,
        TaskStatus.FAILED,
        TaskStatus.UPSTREAM_FAILED,
        TaskStatus.SKIPPED,
        TaskStatus.INTERRUPTED,
        TaskStatus.TIMEOUT,
    }
)

# States a task gets without an attempt of its own: its attempts (if any) are from before.
NOT_FROM_AN_ATTEMPT = frozenset({TaskStatus.PENDING, TaskStatus.SKIPPED, TaskStatus.UPSTREAM_FAILED})


class RunStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def ended(self) -> bool:
        """The run has a run_finished record for its last execution (resume opens it again)."""
        return self in (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.INTERRUPTED)


@dataclass
class AttemptState:
    """One execution of a task; `number` starts at 1 and continues across resumes."""

    number: int
    state: TaskStatus
    started: datetime | None = None
    ended: datetime | None = None
    exit_code: int | None = None
    pid: int | None = None
    host: str | None = None
    pgid: int | None = None
    log: str | None = None  # path of the attempt's log file
    command: str | None = None  # what it ran, templates rendered (None in journals from before it was recorded)
    retry_at: datetime | None = None  # set when this attempt failed and another one follows
    error: str | None = None  # why its process could not be started (no exit code then)

    @property
    def duration(self) -> float | None:
        if self.started and self.ended:
            return (self.ended - self.started).total_seconds()
        return None


@dataclass
class TaskState:
    task_id: str
    state: TaskStatus = TaskStatus.PENDING
    attempts: list[AttemptState] = field(default_factory=list)
    reason: str = ""  # why it was skipped / upstream_failed

    @property
    def current(self) -> AttemptState | None:
        """The attempt its state came from: none while it is pending (cleared, or set to run
        again by a resume) or skipped / upstream_failed by its trigger rule, as the attempts
        it has then belong to an earlier execution of the run and say nothing of it now."""
        if not self.attempts or self.state in NOT_FROM_AN_ATTEMPT:
            return None
        return self.attempts[-1]

    @property
    def started(self) -> datetime | None:
        return self.attempts[0].started if self.current else None

    @property
    def ended(self) -> datetime | None:
        current = self.current
        return current.ended if current and self.state.settled else None

    @property
    def exit_code(self) -> int | None:
        current = self.current
        return current.exit_code if current else None


@dataclass
class RunState:
    """Everything known about one run, rebuilt from its journal alone."""

    dag_id: str
    run_id: str
    kind: str  # manual | scheduled | backfill
    dag: Dag  # the snapshot taken at run creation (the run's pinned version)
    commit: str
    logical_date: datetime
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    params: dict[str, Any] = field(default_factory=dict)
    commit_info: dict[str, Any] = field(default_factory=dict)  # subject, author, time
    state: RunStatus = RunStatus.QUEUED
    created: datetime | None = None
    started: datetime | None = None  # the first execution's start
    ended: datetime | None = None
    last_started: datetime | None = None  # the latest execution's, set with `started`: what its duration counts
    tasks: dict[str, TaskState] = field(default_factory=dict)
    resumes: list[dict[str, Any]] = field(default_factory=list)  # ts, commit, tasks re-run
    journal_path: str = ""
    last_seq: int = -1
    runner_pid: int | None = None  # the process that executes (or last executed) the run
    runner_host: str | None = None
    cleared: bool = False  # tasks were cleared and no resume has run since: waiting for `gitflowd resume`


# -- replay: journal records -> RunState ---------------------------------------------------


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def new_run_state(record: dict[str, Any], path: str = "", dag: Dag | None = None) -> RunState:
    """The RunState that a `run_created` record describes; `dag`, when given, is the Dag the
    record's snapshot was taken of (it rebuilds to an equal Dag: no need to build it again)."""
    dag = dag if dag is not None else Dag.from_dict(record["dag"])
    return RunState(
        dag_id=record["dag_id"],
        run_id=record["run_id"],
        kind=record["kind"],
        dag=dag,
        commit=record["commit"],
        logical_date=datetime.fromisoformat(record["logical_date"]),
        data_interval_start=_time(record.get("data_interval_start")),
        data_interval_end=_time(record.get("data_interval_end")),
        params=dict(record.get("params") or {}),
        commit_info=dict(record.get("commit_info") or {}),
        created=_time(record.get("ts")),
        tasks={task_id: TaskState(task_id) for task_id in dag.tasks},
        journal_path=path,
        last_seq=record.get("seq", 0),
    )


def _attempt(task: TaskState, number: int) -> AttemptState:
    for attempt in reversed(task.attempts):
        if attempt.number == number:
            return attempt
    attempt = AttemptState(number=number, state=TaskStatus.RUNNING)  # an end without a start
    task.attempts.append(attempt)
    return attempt


def _on_run_started(run: RunState, rec: dict[str, Any]) -> None:
    run.state, run.cleared = RunStatus.RUNNING, False
    run.started = run.started or _time(rec["ts"])
    run.last_started = _time(rec["ts"])
    run.ended = None
    run.runner_pid, run.runner_host = rec.get("pid"), rec.get("host")


def task_state_of(rec: dict[str, Any]) -> TaskStatus | None:
    """The state a task record leaves its task in (None for other records): replay and the
    progress reporter, which hears of a record after the run has moved on, both use it."""
    event = rec["event"]
    if event == journal.TASK_STARTED:
        return TaskStatus.RUNNING
    if event == journal.TASK_FINISHED:
        return TaskStatus.UP_FOR_RETRY if rec.get("retry_at") else TaskStatus(rec["state"])
    if event == journal.TASK_SKIPPED:
        return TaskStatus(rec["state"])
    return None


def _on_task_started(run: RunState, rec: dict[str, Any]) -> None:
    task = run.tasks[rec["task"]]
    task.state = TaskStatus.RUNNING
    task.attempts.append(AttemptState(
        number=rec["attempt"], state=TaskStatus.RUNNING, started=_time(rec["ts"]),
        pid=rec.get("pid"), pgid=rec.get("pgid"), host=rec.get("host"), log=rec.get("log"), command=_command(rec),
    ))
    if run.state is not RunStatus.RUNNING:
        run.state = RunStatus.RUNNING
        run.started = run.started or _time(rec["ts"])


def _command(rec: dict[str, Any]) -> str | None:
    """A `cmd` as it ran, or an `argv` quoted as a shell would need it."""
    if isinstance(rec.get("cmd"), str):
        return rec["cmd"]
    argv = rec.get("argv")
    return shlex.join(str(a) for a in argv) if isinstance(argv, list) else None


def _on_task_finished(run: RunState, rec: dict[str, Any]) -> None:
    task = run.tasks[rec["task"]]
    attempt = _attempt(task, rec["attempt"])
    attempt.state = TaskStatus(rec["state"])
    attempt.ended = _time(rec["ts"])
    attempt.exit_code = rec.get("exit_code")
    attempt.retry_at = _time(rec.get("retry_at"))
    attempt.error = rec.get("error")
    task.state = task_state_of(rec) or task.state


def _on_task_skipped(run: RunState, rec: dict[str, Any]) -> None:
    task = run.tasks[rec["task"]]
    task.state = task_state_of(rec) or task.state
    task.reason = rec.get("reason", "")


def _on_tasks_cleared(run: RunState, rec: dict[str, Any]) -> None:
    for task_id in rec["tasks"]:
        if task_id in run.tasks:
            run.tasks[task_id].state = TaskStatus.PENDING
            run.tasks[task_id].reason = ""
    run.state, run.ended, run.cleared = RunStatus.QUEUED, None, True


def _on_run_resumed(run: RunState, rec: dict[str, Any]) -> None:
    if rec.get("dag"):
        run.dag = Dag.from_dict(rec["dag"])
        run.tasks = {t: run.tasks.get(t) or TaskState(t) for t in run.dag.tasks}
    if rec.get("commit", run.commit) != run.commit:  # fix forward: the old subject no longer applies
        run.commit, run.commit_info = rec["commit"], dict(rec.get("commit_info") or {})
    ended = _time(rec["ts"])
    for item in rec.get("interrupted", ()):
        if item["task"] in run.tasks:
            attempt = _attempt(run.tasks[item["task"]], item["attempt"])
            attempt.state, attempt.ended = TaskStatus.INTERRUPTED, attempt.ended or ended
    for task_id in rec.get("tasks", ()):
        if task_id in run.tasks:
            run.tasks[task_id].state, run.tasks[task_id].reason = TaskStatus.PENDING, ""
    # queued until its runner starts it (run_started): a daemon may hold it for max_active_runs
    run.state, run.ended, run.cleared = RunStatus.QUEUED, None, False
    run.resumes.append({"ts": ended, "commit": run.commit, "tasks": list(rec.get("tasks", ()))})


def _on_run_finished(run: RunState, rec: dict[str, Any]) -> None:
    run.state = RunStatus(rec["state"])
    run.ended = _time(rec["ts"])
    for task in run.tasks.values():  # an interrupted run leaves no task "running", nor one waiting for a retry
        if task.state is TaskStatus.RUNNING:
            task.state = TaskStatus.INTERRUPTED
            task.attempts[-1].state = TaskStatus.INTERRUPTED
        elif task.state is TaskStatus.UP_FOR_RETRY:  # its failed attempt stays failed; resume retries it
            task.state = TaskStatus.INTERRUPTED


_HANDLERS: dict[str, Callable[[RunState, dict[str, Any]], None]] = {
    journal.RUN_STARTED: _on_run_started,
    journal.TASK_STARTED: _on_task_started,
    journal.TASK_FINISHED: _on_task_finished,
    journal.TASK_SKIPPED: _on_task_skipped,
    journal.TASKS_CLEARED: _on_tasks_cleared,
    journal.RUN_RESUMED: _on_run_resumed,
    journal.RUN_FINISHED: _on_run_finished,
}


def apply(run: RunState, record: dict[str, Any]) -> None:
    """Fold one record (not `run_created`) into `run`; unknown events are ignored."""
    handler = _HANDLERS.get(record["event"])
    if handler is not None:
        handler(run, record)
    run.last_seq = record.get("seq", run.last_seq)


def replay(records: Iterable[dict[str, Any]], path: str = "") -> RunState:
    """The RunState of a journal's records; StateError if they do not start a run."""
    iterator = iter(records)
    first = next(iterator, None)
    if first is None:
        raise EmptyJournal(path or "journal")
    if first.get("event") != journal.RUN_CREATED:
        raise StateError(f"{path or 'journal'}: does not start with a run_created record")
    run = new_run_state(first, path)
    try:
        for record in iterator:
            apply(run, record)
    except (KeyError, ValueError, TypeError) as exc:
        raise JournalCorrupt(path, record.get("seq", 0) + 1, f"unexpected {record.get('event')!r} record: {exc!r}") from None
    return run


def read_run(path: str | os.PathLike[str]) -> RunState:
    """Read and replay one journal; damage in the middle is a JournalCorrupt error."""
    try:
        records = journal.read(path)
    except journal.CorruptRecord as exc:
        raise JournalCorrupt(exc.path, exc.line, exc.reason) from None
    return replay(records, str(path))
