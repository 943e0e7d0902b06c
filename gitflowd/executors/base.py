"""The executor contract: how the engine hands tasks to something that runs them.

Flow: the engine `submit`s a `TaskSpec` and gets a `Started` back at once (pid and
process group, for the journal) -> it calls `wait(timeout)` whenever it has nothing to
decide, which returns the `Completion`s that happened (or `[]` after `timeout`) ->
`cancel(key)` stops one task, `wakeup()` (safe from a signal handler or another thread)
makes a blocked `wait` return early -> `shutdown()` stops everything and reaps.

An executor enforces each spec's timeout itself (it knows when a process can be killed);
the engine only decides what runs next. The local executor runs OS processes; a
distributed one would implement the same five methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


class Outcome(str, Enum):
    EXITED = "exited"  # the process ended by itself (exit_code says how)
    TIMEOUT = "timeout"  # killed because it ran past its timeout
    CANCELLED = "cancelled"  # killed by cancel() or shutdown()
    ERROR = "error"  # could not be started at all (the log says why)


@dataclass(frozen=True)
class TaskSpec:
    """Everything needed to start one attempt of one task. Exactly one of cmd/argv/call."""

    key: str  # unique among the executor's live tasks, e.g. "task_id.attempt"
    cwd: str
    log_path: str
    env: Mapping[str, str] = field(default_factory=dict)  # added to the executor's base environment
    cmd: str | None = None  # run by /bin/sh -c
    argv: tuple[str, ...] | None = None  # run without a shell
    call: str | None = None  # "module:function", run in a fresh Python process
    sys_path: tuple[str, ...] = ()  # prepended to sys.path for `call` (the checkout)
    timeout: float | None = None  # seconds

    @property
    def kind(self) -> str:
        return "cmd" if self.cmd is not None else "argv" if self.argv is not None else "call"


@dataclass(frozen=True)
class Started:
    key: str
    pid: int | None
    pgid: int | None
    host: str


@dataclass(frozen=True)
class Completion:
    key: str
    outcome: Outcome
    exit_code: int | None  # negative: killed by that signal; None: never started
    duration: float  # seconds from start to reaping
    error: str = ""  # why it could not start (Outcome.ERROR)

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.EXITED and self.exit_code == 0


class Executor(ABC):
    """Runs TaskSpecs; single-threaded use except for `wakeup()`."""

    @abstractmethod
    def submit(self, spec: TaskSpec) -> Started:
        """Start a task now. Failure to start is reported as a Completion, not raised."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[Completion]:
        """Completions so far, blocking up to `timeout` seconds (None = until one) if there are none.

        Returns `[]` at once when nothing is live and `timeout` is None.
        """

    @abstractmethod
    def cancel(self, key: str) -> None:
        """Stop a running task (its Completion has Outcome.CANCELLED)."""

    @abstractmethod
    def wakeup(self) -> None:
        """Make a blocked wait() return; async-signal-safe."""

    @abstractmethod
    def shutdown(self) -> list[Completion]:
        """Cancel every running task, wait for all of them and release resources."""

    @property
    @abstractmethod
    def running(self) -> int:
        """How many tasks are live (submitted, not yet returned by wait)."""
