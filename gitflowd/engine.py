"""The engine: runs one DAG run to its end, deciding what starts when.

Flow of `Engine.run()`:

    run_started -> _seed(): every task to execute waits for its upstream tasks to settle
    loop:
        _launch_ready()          start ready tasks while slots are free, each only once the
                                 records that made it ready are durable: fsync first if they
                                 are not (one fsync covers them all); then _emit() writes the
                                 round's records (the last completions' task_finished, then
                                 task_started) as one batch, no fsync yet; listeners hear of
                                 records once they are durable
        executor.wait(t)         block until a process ends, a retry is due, listeners have
                                 waited LISTENER_LAG for records (t), or a signal
        _complete(c)             per completion: task_finished, then a retry (up_for_retry,
                                 retry_at) or _settle(): each downstream task whose upstream
                                 are all settled is judged by its trigger rule -> ready,
                                 or task_skipped (skipped / upstream_failed), which settles
                                 it in turn (written with the next launches, so that a freed
                                 slot is refilled without waiting for a write)
    run_finished (success | failed | interrupted), fsynced before execute() returns

The engine knows nothing of Git or of where time comes from: it is handed the run (a
RunState replayed or just created), its journal writer, an executor, the checkout to run
in and a clock. Records are durable before the engine acts on them: a task is launched
only once every record written before it became ready is on disk (`durable_seq`), so a
downstream task never runs on an upstream success that a crash could still take back.
The fsync is lazy (group commit): it happens when a launch needs it, or when listeners
have waited LISTENER_LAG, so tasks that do not depend on the newest records start without
one, and one fsync covers every record written since the last. `task_started` records
are written at once and made durable with the next batch (nobody acts on them: a task
whose start was lost is simply run again, its orphans are found by environment).
Signal handlers only call `request_stop()`, which sets a flag and wakes the executor.
"""

from __future__ import annotations

import heapq
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from gitflowd import journal
from gitflowd.dag import Dag
from gitflowd.errors import StateError
from gitflowd.executors.base import Completion, Executor, Outcome, TaskSpec
from gitflowd.journal import JournalWriter, JournalWriteError
from gitflowd.secrets import Masker
from gitflowd.state import RunState, RunStatus, TaskStatus, apply
from gitflowd.statedir import StateDir, log_name
from gitflowd.templating import Rendered, render_commands
from gitflowd.triggers import FAILED_STATES, trigger_decision

log = logging.getLogger(__name__)

# Longest a written record waits for its fsync (and listeners for their news).
LISTENER_LAG = 0.05


class Clock(Protocol):
    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class Slots(Protocol):
    """A task limit shared by several engines (the daemon's global parallelism)."""

    def try_acquire(self, wake: Callable[[], None]) -> bool:
        """Take a slot; if none is free, call `wake` once one is released."""

    def release(self) -> None: ...


class RunListener(Protocol):
    """Told about every record after it is written (and folded into `run`); a listener with
    a `batch_done()` method has it called after each batch of records."""

    def on_record(self, record: dict[str, Any], run: RunState) -> None: ...


def run_environment(run: RunState, workspace: Path) -> dict[str, str]:
    """The GITFLOWD_* variables shared by every attempt of a run (built once per run)."""
    return {
        "GITFLOWD_DAG": run.dag_id,
        "GITFLOWD_RUN_ID": run.run_id,
        "GITFLOWD_LOGICAL_DATE": journal.utc_timestamp(run.logical_date),
        "GITFLOWD_COMMIT": run.commit,
        "GITFLOWD_WORKSPACE": str(workspace),
    }


@dataclass
class _Attempt:
    task_id: str
    number: int
    try_number: int  # attempts of this task in this execution (for retries)


class Engine:
    """Executes the pending tasks of one run; single-threaded (signals only set flags)."""

    def __init__(self, run: RunState, writer: JournalWriter, executor: Executor, state_dir: StateDir, cwd: Path, *,
                 parallelism: int | None = None, secrets: Mapping[str, str] | None = None,
                 listeners: Iterable[RunListener] = (), clock: Clock | None = None,
                 commands: Mapping[str, Rendered] | None = None,
                 shared_slots: Slots | None = None):
        self.run = run
        self.dag: Dag = run.dag
        self.writer, self.executor, self.state_dir = writer, executor, state_dir
        self.cwd = Path(cwd)
        self.slots = max(1, min(parallelism or os.cpu_count() or 1, self.dag.max_active_tasks))
        self.listeners = list(listeners)
        self.clock = clock or SystemClock()
        self.commands = dict(commands) if commands is not None else render_commands(run, self.dag)
        self.secrets = dict(secrets or {})
        self.masker = Masker(self.secrets.values())
        self.workspace = state_dir.workspace(run.dag_id, run.run_id)
        # Per run, not per task: the environment every attempt shares, and where logs go.
        self._run_env = {**run_environment(run, self.workspace), **self.dag.env, **self.secrets}
        self._log_dir = state_dir.log_dir(run.dag_id, run.run_id)
        self._cwd = str(self.cwd)
        self._downstream = self.dag.downstream_map()
        self._order = {task_id: i for i, task_id in enumerate(self.dag.topological_order())}
        self._final: dict[str, TaskStatus] = {}
        self._waiting: dict[str, int] = {}
        self._ready: deque[tuple[str, int]] = deque()  # (task, seq that must be durable first)
        self._undelivered: deque[dict[str, Any]] = deque()  # written, listeners not told yet
        self._undelivered_since = 0.0  # monotonic time the oldest undelivered record was written
        self._running: dict[str, _Attempt] = {}
        self._retries: list[tuple[float, int, str]] = []  # (due monotonic, order, task)
        self._tries: dict[str, int] = {}
        self._batch: list[dict[str, Any]] = []
        self._stop_signal: int | None = None
        self._stop_why = ""
        self._stopping = False
        self._killing = False
        self._draining = False
        self.shared_slots = shared_slots

    # -- public -----------------------------------------------------------------------

    def request_stop(self, signum: int = 15, why: str = "") -> None:
        """Stop launching and terminate running tasks (twice: kill them). Signal-safe.
        `why` replaces "signal N" in the log line (the daemon's stops are not signals)."""
        if self._stop_signal is not None:
            self._killing = True
        self._stop_signal, self._stop_why = signum, why or f"signal {signum}"
        self.executor.wakeup()

    def request_drain(self) -> None:
        """Start no new task or retry; running tasks may finish (the daemon's grace period).

        A run drained before its end finishes `interrupted`, so the next start resumes it.
        Thread-safe.
        """
        self._draining = True
        self.executor.wakeup()

    @property
    def stop_signal(self) -> int | None:
        return self._stop_signal

    def execute(self) -> RunStatus:
        """Run every pending task to a final state; returns the run's final state."""
        try:
            self.workspace.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create workspace {self.workspace}: {exc.strerror or exc}") from None
        try:
            self._record(journal.RUN_STARTED, pid=os.getpid(), host=os.uname().nodename)
            self._seed()
            self._emit(sync=True)
            self._loop()
            self._record(journal.RUN_FINISHED, state=self._final_state().value)
            self._emit(sync=True)
        except JournalWriteError as exc:  # fatal, never retried: stop everything, record nothing more
            self._abort()
            raise StateError(f"run {self.run.run_id} stopped: {exc}") from exc
        return self.run.state

    # -- the loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._launch_ready()
            if not self._running and (self._draining or (not self._retries and not self._ready)):
                return
            self._sync_ahead()
            completions = self.executor.wait(self._wait_time())
            if self._stop_signal is not None:
                self._stop()
            for completion in completions:
                self._complete(completion)
            self._promote_due_retries()
            if self._undelivered and time.monotonic() - self._undelivered_since >= LISTENER_LAG:
                self._emit(sync=True)

    def _wait_time(self) -> float | None:
        """Until the next retry is due or undelivered records have waited long enough."""
        times = []
        if self._retries and not self._stopping and not self._draining:
            times.append(self._retries[0][0] - self.clock.monotonic())
        if self._undelivered:
            times.append(self._undelivered_since + LISTENER_LAG - time.monotonic())
        return max(min(times), 0.0) if times else None

    def _promote_due_retries(self) -> None:
        now = self.clock.monotonic()
        while self._retries and self._retries[0][0] <= now and not self._stopping:
            self._make_ready(heapq.heappop(self._retries)[2])

    def _stop(self) -> None:
        if not self._stopping:
            log.warning("run %s: stopping (%s), terminating %d task(s)%s", self.run.run_id, self._stop_why,
                        len(self._running), " with SIGTERM (stop again to SIGKILL them now)" if self._running else "")
            self._stopping = True
            self._ready.clear()
            self._retries.clear()
            for key in list(self._running):
                self.executor.cancel(key)
        if self._killing and hasattr(self.executor, "kill"):
            for key in list(self._running):
                self.executor.kill(key)  # type: ignore[attr-defined]

    def _abort(self) -> None:
        """The journal failed: stop every task, record nothing more."""
        self._stopping = True
        self.executor.shutdown()
        for _ in range(len(self._running) if self.shared_slots is not None else 0):
            self.shared_slots.release()  # type: ignore[union-attr]

    # -- deciding ---------------------------------------------------------------------

    def _seed(self) -> None:
        """Which tasks run in this execution, and the ones that are ready now."""
        todo = [t for t in self._order if self.run.tasks[t].state in (TaskStatus.PENDING, TaskStatus.UP_FOR_RETRY)]
        kept = set(self._order) - set(todo)
        for task_id in kept:
            self._final[task_id] = self.run.tasks[task_id].state
        todo_set = set(todo)
        for task_id in todo:
            self._waiting[task_id] = sum(dep in todo_set for dep in self.dag.upstream(task_id))
        for task_id in todo:
            if self._waiting[task_id] == 0:
                self._judge(task_id)

    def _judge(self, task_id: str) -> None:
        """All upstream of `task_id` are settled: run it, or skip it by its trigger rule."""
        upstream = [self._final[dep] for dep in self.dag.upstream(task_id)]
        verdict = trigger_decision(self.dag.tasks[task_id].trigger_rule, upstream)
        if verdict is None:
            self._make_ready(task_id)
            return
        reason = f"trigger rule {self.dag.tasks[task_id].trigger_rule.value}: upstream " + upstream_summary(
            {dep: self._final[dep] for dep in self.dag.upstream(task_id)})
        self._record(journal.TASK_SKIPPED, task=task_id, state=verdict.value, reason=reason)
        self._settle(task_id, verdict)

    def _settle(self, task_id: str, state: TaskStatus) -> None:
        """`task_id` reached a final state: downstream tasks may now be judged."""
        self._final[task_id] = state
        if self._stopping:
            return  # an interrupted run judges nothing more: resume will
        for child in self._downstream[task_id]:
            if child in self._waiting and child not in self._final:
                self._waiting[child] -= 1
                if self._waiting[child] == 0:
                    self._judge(child)

    def _final_state(self) -> RunStatus:
        if self._stopping or (self._draining and len(self._final) < len(self._order)):
            return RunStatus.INTERRUPTED
        states = self._final.values()
        return RunStatus.FAILED if any(s in FAILED_STATES for s in states) else RunStatus.SUCCESS

    # -- doing ------------------------------------------------------------------------

    def _make_ready(self, task_id: str) -> None:
        """Queue a task; it may start once every record up to the newest one pending is durable."""
        self._ready.append((task_id, self.writer.next_seq + len(self._batch) - 1))

    def _launch_ready(self) -> None:
        while self._ready and len(self._running) < self.slots and not self._stopping and not self._draining:
            self._make_durable(self._ready[0][1])
            if self.shared_slots is not None and not self.shared_slots.try_acquire(self.executor.wakeup):
                break
            self._launch(self._ready.popleft()[0])
        # Written at once, so that only a kill right between a spawn and this write leaves
        # an unrecorded orphan (found by environment); durable with the next batch.
        self._emit()

    def _sync_ahead(self) -> None:
        """Every slot is busy: make the next ready task's records durable while tasks run,
        rather than after a slot frees, when its launch would wait for the fsync."""
        if self._ready and len(self._running) >= self.slots and self._ready[0][1] > self.writer.durable_seq:
            self._emit(sync=True)

    def _make_durable(self, seq: int) -> None:
        """Record `seq` must be on disk before we act on it: fsync now if it is not yet."""
        if seq > self.writer.durable_seq:
            self._emit(sync=True)

    def _launch(self, task_id: str) -> None:
        attempts = self.run.tasks[task_id].attempts  # up to date: every launch round is emitted
        number = (attempts[-1].number if attempts else 0) + 1
        self._tries[task_id] = self._tries.get(task_id, 0) + 1
        spec = self._spec(task_id, number)
        started = self.executor.submit(spec)
        self._running[spec.key] = _Attempt(task_id, number, self._tries[task_id])
        ran = {"cmd": spec.cmd} if spec.cmd is not None else {"argv": list(spec.argv)} if spec.argv is not None else {}
        self._record(journal.TASK_STARTED, task=task_id, attempt=number, pid=started.pid, pgid=started.pgid,
                     host=started.host, log=spec.log_path, **ran)

    def _spec(self, task_id: str, attempt: int) -> TaskSpec:
        task = self.dag.tasks[task_id]
        cmd, argv, rendered_env = self.commands[task_id]
        env = {"GITFLOWD_TASK": task_id, "GITFLOWD_ATTEMPT": str(attempt), **self._run_env, **task.env}
        if rendered_env:
            env.update(rendered_env)
        return TaskSpec(
            key=f"{task_id}.{attempt}", cwd=self._cwd, log_path=os.path.join(self._log_dir, log_name(task_id, attempt)),
            env=env, cmd=cmd, argv=argv, call=task.call, sys_path=(self._cwd,), timeout=task.timeout,
        )

    def _complete(self, completion: Completion) -> None:
        attempt = self._running.pop(completion.key)
        if self.shared_slots is not None:
            self.shared_slots.release()
        task = self.dag.tasks[attempt.task_id]
        if self.masker:
            self.masker.mask_file(self.state_dir.log_path(self.run.dag_id, self.run.run_id, task.id, attempt.number))
        state = _state_of(completion)
        fields: dict[str, Any] = {"task": task.id, "attempt": attempt.number, "state": state.value,
                                  "exit_code": completion.exit_code, "duration": round(completion.duration, 6)}
        if completion.error:
            fields["error"] = completion.error
        retry = state in (TaskStatus.FAILED, TaskStatus.TIMEOUT) and attempt.try_number <= task.retries
        if retry and not self._stopping:
            delay = task.retry_delay_for(attempt.try_number)
            fields["retry_at"] = journal.utc_timestamp(self.clock.now() + timedelta(seconds=delay))
            heapq.heappush(self._retries, (self.clock.monotonic() + delay, self._order[task.id], task.id))
        self._record(journal.TASK_FINISHED, **fields)
        if "retry_at" not in fields:
            self._settle(task.id, state)

    # -- telling ----------------------------------------------------------------------

    def _record(self, event: str, **fields: Any) -> None:
        self._batch.append({"event": event, **fields})

    def _emit(self, sync: bool = False) -> None:
        """Write the pending records as one batch and fold them into the run; with `sync`,
        make everything durable now and tell the listeners."""
        self.writer.check()  # an earlier failed write or fsync is fatal
        if self._batch:
            batch, self._batch = self._batch, []
            if not self._undelivered:
                self._undelivered_since = time.monotonic()
            for record in self.writer.append(*batch, sync=sync):
                apply(self.run, record)
                self._undelivered.append(record)
        elif sync:
            self.writer.sync()
        if sync:
            self._deliver()

    def _deliver(self) -> None:
        """Tell listeners about every record that is durable by now, in order."""
        durable = self.writer.durable_seq
        if not self._undelivered or self._undelivered[0]["seq"] > durable:
            return
        while self._undelivered and self._undelivered[0]["seq"] <= durable:
            record = self._undelivered.popleft()
            for listener in self.listeners:
                _notify(listener, record, self.run)
        for listener in self.listeners:
            _batch_done(listener)


def upstream_summary(states: Mapping[str, TaskStatus], named: int = 5) -> str:
    """`a=failed, b=success` for a few upstream tasks; for many (the join of a fan), a count
    per state with its first few tasks, so that a skip reason stays one readable line."""
    if len(states) <= named:
        return ", ".join(f"{task}={state.value}" for task, state in states.items())
    by_state: dict[TaskStatus, list[str]] = {}
    for task, state in states.items():
        by_state.setdefault(state, []).append(task)
    return ", ".join(f"{len(tasks)} {state.value} ({', '.join(tasks[:3])}{', ...' if len(tasks) > 3 else ''})"
                     for state, tasks in by_state.items())


def _state_of(completion: Completion) -> TaskStatus:
    if completion.outcome is Outcome.TIMEOUT:
        return TaskStatus.TIMEOUT
    if completion.outcome is Outcome.CANCELLED:
        return TaskStatus.INTERRUPTED
    return TaskStatus.SUCCESS if completion.succeeded else TaskStatus.FAILED


def _batch_done(listener: RunListener) -> None:
    try:
        getattr(listener, "batch_done", lambda: None)()
    except Exception:  # noqa: BLE001 - a broken listener must not break the run
        log.exception("listener %r failed at the end of a batch", listener)


def _notify(listener: RunListener, record: dict[str, Any], run: RunState) -> None:
    try:
        listener.on_record(record, run)
    except Exception:  # noqa: BLE001 - a broken listener must not break the run
        log.exception("listener %r failed on %s", listener, record.get("event"))
