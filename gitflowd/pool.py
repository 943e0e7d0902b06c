"""Several runs at once: one thread per run, `max_active_runs` per DAG, a stop with grace.

Flow: the daemon (or a foreground backfill) `add`s a `Job` (drive run X of DAG D to its
end) -> `pump()` starts queued jobs, oldest first, while their DAG has fewer than its
`max_active_runs` jobs running -> each job runs `execute(job, control)` in its own thread
(the engine: its task processes do the work, the thread only waits on them) -> when it
returns, the thread calls `on_done()` (the daemon's wake-up) -> `collect()` hands the
finished jobs back to the owner, which renders the site and pumps again.

`stop()` asks every running job to start no new tasks; `interrupt()` asks them to end
their running tasks (the engine records them `interrupted`); queued jobs are dropped (their
runs stay queued in the journal and are resumed at the next start). `cancel()` interrupts
or drops one run.

Why threads and not child processes: the work happens in task processes anyway; a thread
per run costs little, shares the blob cache and the executor wake-ups, and dies with the
daemon, so a SIGKILLed daemon never leaves a second writer behind for a run's journal
(DESIGN.md section 7: one writer per journal). See docs/daemon.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """Drive one run to its end: `start` a created run, or `resume` an unfinished one."""

    dag_id: str
    run_id: str
    action: str = "start"  # start | resume
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Control:
    """What the pool tells a running job; the engine checks it between decisions."""

    stopping: threading.Event = field(default_factory=threading.Event)  # no new tasks
    interrupting: threading.Event = field(default_factory=threading.Event)  # end running tasks now
    wakeups: list[Callable[[], None]] = field(default_factory=list)  # called after each change
    cancelled: bool = False  # `gitflowd stop` ended this run, not the daemon's own stop

    def notify(self) -> None:
        for wake in list(self.wakeups):
            wake()


@dataclass
class Finished:
    job: Job
    status: str  # the run's final status, or "error"
    error: str = ""
    cancelled: bool = False  # stopped by `cancel()`: its owner must not resume it by itself


class RunPool:
    """Queued and running jobs; every method is called from the owner's thread."""

    def __init__(self, execute: Callable[[Job, Control], str], limit_of: Callable[[str], int], on_done: Callable[[], None]):
        self.execute = execute
        self.limit_of = limit_of  # dag id -> max_active_runs
        self.on_done = on_done
        self.queued: list[Job] = []
        self.running: dict[tuple[str, str], tuple[threading.Thread, Control]] = {}
        self._finished: list[Finished] = []
        self._lock = threading.Lock()
        self.stopped = False

    # -- questions --------------------------------------------------------------------

    def active(self, dag_id: str) -> int:
        """Runs of `dag_id` queued or running here."""
        return sum(1 for key in self.running if key[0] == dag_id) + sum(1 for job in self.queued if job.dag_id == dag_id)

    def has(self, dag_id: str, run_id: str) -> bool:
        return (dag_id, run_id) in self.running or any((j.dag_id, j.run_id) == (dag_id, run_id) for j in self.queued)

    @property
    def idle(self) -> bool:
        return not self.running and not self.queued

    # -- changes ----------------------------------------------------------------------

    def add(self, job: Job) -> bool:
        """Queue a job unless that run is already queued or running here."""
        if self.stopped or self.has(job.dag_id, job.run_id):
            return False
        self.queued.append(job)
        return True

    def pump(self) -> list[Job]:
        """Start queued jobs that their DAG's max_active_runs allows; returns them."""
        started = []
        for job in list(self.queued):
            running_here = sum(1 for key in self.running if key[0] == job.dag_id)
            if self.stopped or running_here >= max(self.limit_of(job.dag_id), 1):
                continue
            self.queued.remove(job)
            self._start(job)
            started.append(job)
        return started

    def _start(self, job: Job) -> None:
        control = Control()
        thread = threading.Thread(target=self._body, args=(job, control), name=f"run {job.dag_id}/{job.run_id}", daemon=True)
        self.running[(job.dag_id, job.run_id)] = (thread, control)
        thread.start()

    def _body(self, job: Job, control: Control) -> None:
        try:
            result = Finished(job, str(self.execute(job, control)), cancelled=control.cancelled)
        except Exception as exc:  # a bug or an environment failure: report it, keep the daemon alive
            log.exception("run %s of DAG %s failed to execute", job.run_id, job.dag_id)
            result = Finished(job, "error", f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._finished.append(result)
        self.on_done()

    def collect(self) -> list[Finished]:
        """Jobs that ended since the last call (their threads joined)."""
        with self._lock:
            done, self._finished = self._finished, []
        for item in done:
            thread, _ = self.running.pop((item.job.dag_id, item.job.run_id))
            thread.join()
        return done

    def stop(self) -> list[Job]:
        """Start nothing more; running jobs start no new tasks. Returns the dropped queue."""
        self.stopped = True
        dropped, self.queued = self.queued, []
        for _, control in self.running.values():
            control.stopping.set()
            control.notify()
        return dropped

    def interrupt(self) -> None:
        """Running jobs end their running tasks now (recorded as interrupted)."""
        for _, control in self.running.values():
            _interrupt(control)

    def cancel(self, dag_id: str, run_id: str) -> str:
        """Stop one run (`gitflowd stop`): a running job ends its running tasks (the engine
        records them and the run `interrupted`), a queued one is dropped. Returns "running",
        "queued", or "" when the run is not here."""
        key = (dag_id, run_id)
        if key in self.running:
            control = self.running[key][1]
            control.cancelled = True
            _interrupt(control)
            return "running"
        for job in self.queued:
            if (job.dag_id, job.run_id) == key:
                self.queued.remove(job)
                return "queued"
        return ""


def _interrupt(control: Control) -> None:
    control.stopping.set()
    control.interrupting.set()
    control.notify()


class Limiter:
    """Global task parallelism shared by the engines of every run (engine.Slots)."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self.used = 0
        self._lock = threading.Lock()
        self._waiting: list[Callable[[], None]] = []

    def try_acquire(self, wake: Callable[[], None]) -> bool:
        with self._lock:
            if self.used < self.limit:
                self.used += 1
                return True
            if wake not in self._waiting:
                self._waiting.append(wake)
            return False

    def release(self) -> None:
        with self._lock:
            self.used = max(0, self.used - 1)
            waiting, self._waiting = self._waiting, []
        for wake in waiting:  # every waiter retries; the losers register again
            wake()
