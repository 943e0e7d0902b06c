"""What a running daemon does with a CLI request from the inbox (see inbox.py).

Flow: `Requests.handle_all(now)` reads every pending request file, oldest first ->
`handle(request)` dispatches on its kind (`run`, `resume`, `clear`, `backfill`, `stop`), prepares
the runs through the Launcher in the daemon's thread (so bad input is answered at once,
before anything is recorded) and queues their jobs in the pool -> the reply names the
runs (the CLI follows their journals) or carries the one-line error.

A run of a DAG uses the version the daemon has loaded (its last valid one), unless the
request names a revision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from gitflowd import inbox
from gitflowd.backfill import Action, check_range, describe, future_ticks, plan_backfill
from gitflowd.dag import Dag
from gitflowd.errors import DagFileError, DagNotFound, GitflowdError, RunError
from gitflowd.launch import Launcher
from gitflowd.loader import suggest
from gitflowd.pool import Job, RunPool
from gitflowd.registry import DagEntry, read_registry
from gitflowd.runs import clear_tasks, open_run, parse_params, stop_unfinished, tasks_to_clear
from gitflowd.schedule import parse_logical_date, parse_when

log = logging.getLogger(__name__)


class Requests:
    """Handles inbox requests against the daemon's DAGs, launcher and pool."""

    def __init__(self, state_root: Path, launcher: Launcher, pool: RunPool, dags: Callable[[], dict[str, DagEntry]],
                 progress: Callable[[], None] = lambda: None, changed: Callable[[str, str], None] = lambda _d, _r: None):
        self.state_root = state_root
        self.launcher = launcher
        self.pool = pool
        self.dags = dags
        self.progress = progress  # called per run prepared: a long backfill is busy, not hung (the watchdog)
        self.changed = changed  # a run changed here, not by an engine (clear, stop of a run nobody runs): render it

    def handle_all(self, now: datetime, kinds: tuple[str, ...] | None = None) -> int:
        """Answer every pending request, or only those of `kinds` (the others stay pending);
        returns how many were handled."""
        handled = 0
        for pending in inbox.pending(self.state_root):
            if kinds is not None and _kind(pending) not in kinds:
                continue
            path = inbox.claim(pending)
            if path is None:  # its command gave up waiting and withdrew it
                continue
            try:
                request = inbox.read(path)
            except ValueError as exc:
                inbox.set_aside(self.state_root, path, str(exc))
                continue
            reply = self.handle(request, now)
            log.info("request %s %s from pid %d: %s", request.kind, _brief(request.args), request.pid,
                     "ok " + _ids(reply.runs) if reply.ok else reply.error)
            inbox.answer(self.state_root, path, request.id, reply)
            handled += 1
        return handled

    def handle(self, request: inbox.Request, now: datetime) -> inbox.Reply:
        try:
            handler = getattr(self, f"_{request.kind}")
            return handler(request.args, now)
        except GitflowdError as exc:
            return _refused(str(exc) or type(exc).__name__, exc.exit_code)
        except (ValueError, OSError) as exc:
            return _refused(str(exc) or type(exc).__name__, 1)
        except KeyError as exc:
            return _refused(f"request {request.id} is missing {exc}", 1)
        except Exception as exc:  # a bug: answer the CLI, keep the daemon running
            log.exception("request %s %s failed", request.kind, request.id)
            return _refused(f"internal error in the daemon: {type(exc).__name__}: {exc} (see its log)", 1)

    # -- kinds -------------------------------------------------------------------------

    def _run(self, args: dict[str, Any], now: datetime) -> inbox.Reply:
        dag, commit = self._dag_at(args["dag"], args.get("rev"))
        params = parse_params(args.get("params", []), dag)
        logical = parse_logical_date(args.get("date"), dag, now)
        job = self.launcher.prepare_new(dag, commit, "manual", logical, params)
        return self._queued([job])

    def _resume(self, args: dict[str, Any], now: datetime) -> inbox.Reply:
        dag_id, run_id = args["dag"], args["run_id"]
        self._not_running(dag_id, run_id)
        dag, commit = self._dag_at(dag_id, args["rev"]) if args.get("rev") else (None, None)
        return self._queued([self.launcher.prepare_resume(dag_id, run_id, dag, commit)])

    def _clear(self, args: dict[str, Any], now: datetime) -> inbox.Reply:
        dag_id, run_id = args["dag"], args["run_id"]
        self._not_running(dag_id, run_id)
        current, writer = open_run(self.launcher.state, dag_id, run_id)
        with writer:
            tasks = tasks_to_clear(current, args["tasks"], bool(args.get("downstream")))
            clear_tasks(writer, current, tasks)
        self.changed(dag_id, run_id)
        return inbox.Reply(ok=True, message=f"cleared {len(tasks)} task(s) of run {run_id}: {', '.join(tasks)}")

    def _stop(self, args: dict[str, Any], now: datetime) -> inbox.Reply:
        """A running run ends its running tasks and is recorded `interrupted` by its engine;
        a queued one, or one nobody runs, is ended here. The CLI waits for the end."""
        dag_id, run_id = args["dag"], args["run_id"]
        if self.pool.cancel(dag_id, run_id) == "running":
            return inbox.Reply(ok=True, message=f"stopping run {run_id} of DAG {dag_id!r}: its running tasks get SIGTERM, "
                                                f"then SIGKILL after {self.launcher.kill_grace:g}s")
        current, writer = open_run(self.launcher.state, dag_id, run_id)
        with writer:
            stop_unfinished(self.launcher.state, writer, current, self.launcher.masking_secrets(current.dag), self.launcher.kill_grace)
        self.changed(dag_id, run_id)
        return inbox.Reply(ok=True, message=f"stopped run {run_id} of DAG {dag_id!r}")

    def _backfill(self, args: dict[str, Any], now: datetime) -> inbox.Reply:
        dag, commit = self._dag_at(args["dag"], None)
        start = parse_when(args["start"], dag, now, "--start")
        end = parse_when(args["end"], dag, now, "--end")
        check_range(dag, start, end, args["start"], args["end"], now)
        state = self.launcher.state
        runs = state.runs(dag.id)
        for _path, error in state.broken:  # a tick whose journal cannot be read looks unrun: say so
            log.error("backfill of %s: %s", dag.id, error)
        steps = plan_backfill(dag, runs, start, end, args.get("reprocess", "none"), lambda run: self.pool.has(run.dag_id, run.run_id), now)
        jobs = [self._backfill_job(dag, commit, step.action, step.tick, step.run_id) for step in steps if step.action is not Action.SKIP]
        reply = self._queued(jobs)
        later = "; ticks after now are left to the schedule" if future_ticks(dag, end, now) else ""
        return inbox.Reply(ok=True, runs=reply.runs, message=f"backfill {dag.id}: {describe(steps)}{later}")  # as the foreground

    def _backfill_job(self, dag: Dag, commit: str, action: Action, tick: datetime, run_id: str | None) -> Job:
        self.progress()
        if action is Action.CREATE:
            return self.launcher.prepare_new(dag, commit, "backfill", tick)
        self._not_running(dag.id, run_id or "")
        if action is Action.RERUN:
            return self.launcher.prepare_rerun(dag.id, run_id or "")
        return self.launcher.prepare_resume(dag.id, run_id or "")

    # -- helpers -----------------------------------------------------------------------

    def _dag_at(self, dag_id: str, rev: str | None) -> tuple[Dag, str]:
        """The daemon's loaded version of a DAG (and its commit), or its version at `rev`."""
        if rev:
            repo = self.launcher.require_repo()
            sha = repo.resolve(rev)
            snapshot = repo.load(sha)
            if dag_id in snapshot.dags:
                return snapshot.dags[dag_id].dag, sha
            problems = snapshot.problems_of(dag_id)
            if problems:
                raise DagFileError(problems)
            raise DagNotFound(dag_id, f" at {rev}{snapshot.defined_in(dag_id) or suggest(dag_id, list(snapshot.dags))}")
        entry = self.dags().get(dag_id)
        if entry is None:
            raise DagNotFound(dag_id, suggest(dag_id, list(self.dags())) or self._why_not_loaded(dag_id))
        return entry.load(), entry.commit.sha

    def _why_not_loaded(self, dag_id: str) -> str:
        known = read_registry(self.state_root).dags.get(dag_id)
        if known is not None and known.retired:
            return f" (retired: {known.path} is gone from the branch; its runs stay visible)"
        return " (the daemon has not loaded it)"

    def _not_running(self, dag_id: str, run_id: str) -> None:
        if self.pool.has(dag_id, run_id):
            raise RunError(f"run {run_id!r} of DAG {dag_id!r} is queued or running in the daemon; wait for it to end")

    def _queued(self, jobs: list[Job]) -> inbox.Reply:
        for job in jobs:
            self.pool.add(job)
        return inbox.Reply(ok=True, runs=[(job.dag_id, job.run_id) for job in jobs])


def _kind(path: Path) -> str:
    """A pending request's kind, read before claiming it ("" when it cannot be read now)."""
    try:
        return inbox.read(path).kind
    except ValueError:
        return ""


def _refused(message: str, exit_code: int) -> inbox.Reply:
    """A reply carrying only the first line of an error (the CLI prints one line)."""
    return inbox.Reply(ok=False, error=message.splitlines()[0], exit_code=exit_code or 1)


def _ids(runs: list[tuple[str, str]], most: int = 5) -> str:
    """The run ids of a reply for the log; a long backfill's as a count and its ends (a line
    naming a year of hourly ticks was 240 kB, far past journald's 48 kB line limit)."""
    if len(runs) <= most:
        return " ".join(run_id for _, run_id in runs)
    return f"{len(runs)} runs, {runs[0][1]} ... {runs[-1][1]}"


def _brief(args: dict[str, Any]) -> str:
    return " ".join(str(args[k]) for k in ("dag", "run_id", "start", "end") if args.get(k))
