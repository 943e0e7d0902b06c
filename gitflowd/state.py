"""Run and task states, replayed from run journals; the only reader of the state directory.

Flow: `StateDir(path)` knows the layout (DESIGN.md section 4) -> `journal.read()` yields the
records of one run -> `replay(records)` folds them into a `RunState` -> engine, site and CLI
ask questions of `RunState` values and never open journals themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from gitflowd.dag import Dag


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


class RunStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


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

    @property
    def started(self) -> datetime | None:
        return self.attempts[0].started if self.attempts else None

    @property
    def ended(self) -> datetime | None:
        return self.attempts[-1].ended if self.attempts and self.state.settled else None

    @property
    def exit_code(self) -> int | None:
        return self.attempts[-1].exit_code if self.attempts else None


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
    started: datetime | None = None
    ended: datetime | None = None
    tasks: dict[str, TaskState] = field(default_factory=dict)
    resumes: list[dict[str, Any]] = field(default_factory=list)  # ts, commit, tasks re-run
    journal_path: str = ""
    last_seq: int = -1
