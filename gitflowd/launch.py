"""Runs started off the foreground: prepared in the owner's thread, executed in pool threads.

Flow: `prepare_new(...)` / `prepare_resume(...)` / `prepare_rerun(...)` check everything
that can be wrong (templates, secrets, the commit's checkout) before writing the run's
first record (`run_created`, or `tasks_cleared` and `run_resumed`) through runs.py, and
return a pool `Job` -> later `execute(job, control)` runs in a pool thread: it reopens the
journal (the only writer from then on), builds an Engine with a LocalExecutor, the site
listener and the shared task slots, and maps the pool's control to the engine (stopping
-> `request_drain`, interrupting -> `request_stop`).

Everything that touches Git happens in `prepare_*` (the owner's thread): the Repo (and its
`git cat-file` process) is not shared with pool threads, which only read the checkout on disk.
A run at a commit whose subject is known (`remember`) and whose checkout exists needs no Git
at all, so the last good DAGs keep running while the repository cannot be read.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from gitflowd import schedule
from gitflowd.dag import Dag
from gitflowd.engine import Engine, RunListener
from gitflowd.errors import GitflowdError, RunError
from gitflowd.executors.local import LocalExecutor
from gitflowd.pool import Control, Job, Limiter
from gitflowd.repo import CommitInfo, Repo
from gitflowd.runs import clear_tasks, create_run, open_resume, open_run, plan_resume, plan_run
from gitflowd.secrets import secrets_for
from gitflowd.state import RunState
from gitflowd.statedir import StateDir
from gitflowd.templating import render_commands

log = logging.getLogger(__name__)


class Launcher:
    """Prepares and executes runs for the daemon and for a foreground backfill."""

    def __init__(self, state: StateDir, repo: Repo | None, *, secrets_file: str | None = None, parallelism: int | None = None,
                 slots: Limiter | None = None, listeners: Callable[[], list[RunListener]] = list, kill_grace: float = 10.0):
        self.state = state
        self.repo = repo
        self.secrets_file = secrets_file
        self.parallelism = parallelism
        self.slots = slots
        self.listeners = listeners  # a fresh list per run (listeners may keep per-run state)
        self.kill_grace = kill_grace
        self.commits: dict[str, dict[str, str]] = {}  # full sha -> what a run keeps of it (for_run)

    def remember(self, info: CommitInfo) -> None:
        """Keep a loaded commit's subject and author, for runs created while Git cannot be read."""
        self.commits[info.sha] = info.for_run()

    # -- preparing (owner's thread) ------------------------------------------------------

    def prepare_new(self, dag: Dag, commit: str, kind: str, logical_date: datetime, params: Mapping[str, Any] | None = None) -> Job:
        """Create a run of `dag` at `commit` (run_created written) and return its job."""
        interval = schedule.data_interval(dag, logical_date) if dag.schedule else schedule.Interval(logical_date, logical_date)
        run = plan_run(self.state, dag, kind=kind, logical_date=logical_date, commit=commit,
                       commit_info=self._commit_info(commit), params=params, data_interval=(interval.start, interval.end))
        self._check(run, dag)
        create_run(self.state, run).close()
        log.info("created run %s of DAG %s at %s", run.run_id, dag.id, commit[:8])
        return Job(dag.id, run.run_id, "start")

    def prepare_resume(self, dag_id: str, run_id: str, dag: Dag | None = None, commit: str | None = None, clear: list[str] | None = None) -> Job:
        """Resume a run (optionally at another commit, optionally clearing tasks first)."""
        current, writer = open_run(self.state, dag_id, run_id)
        commit, target = commit or current.commit, dag or current.dag
        with writer:
            secrets = self._check(dataclasses.replace(current, commit=commit, dag=target), target)
            if clear:
                clear_tasks(writer, current, clear)
            moved = self._commit_info(commit) if commit != current.commit else None
            record = plan_resume(current, dag, commit, moved)
            open_resume(self.state, writer, current, record, secrets, self.kill_grace)
        log.info("resuming run %s of DAG %s", run_id, dag_id)
        return Job(dag_id, run_id, "resume")

    def prepare_rerun(self, dag_id: str, run_id: str) -> Job:
        """Run every task of a finished run again (backfill --reprocess all)."""
        current = self.state.load_run(dag_id, run_id)
        return self.prepare_resume(dag_id, run_id, clear=current.dag.topological_order())

    def prepare_unfinished(self, run: RunState) -> Job | None:
        """A run a dead daemon left queued or running: continue it (crash = resume)."""
        try:
            return self.prepare_resume(run.dag_id, run.run_id)
        except RunError as exc:
            log.info("run %s of DAG %s: %s", run.run_id, run.dag_id, exc)
            return None

    def masking_secrets(self, dag: Dag) -> dict[str, str]:
        """The DAG's secrets to mask logs with, or none when they cannot be read (logged)."""
        try:
            return secrets_for(dag, self.secrets_file)
        except GitflowdError as exc:
            log.warning("cannot mask the logs of DAG %s: %s", dag.id, exc)
            return {}

    def _check(self, run: RunState, dag: Dag) -> dict[str, str]:
        """Templates render, secrets resolve (returned) and the commit is checked out."""
        render_commands(run, dag)
        secrets = secrets_for(dag, self.secrets_file)
        if not (self.state.checkouts / run.commit).is_dir():  # else no Git needed (it may be gone for now)
            self.require_repo().checkout(run.commit, self.state.checkouts)
        return secrets

    def _commit_info(self, sha: str) -> dict[str, str]:
        if sha not in self.commits:
            self.commits[sha] = self.require_repo().commit_info(sha).for_run()
        return self.commits[sha]

    def require_repo(self) -> Repo:
        if self.repo is None:
            raise RunError("the repository cannot be read right now; see the daemon's log")
        return self.repo

    # -- executing (pool thread) ---------------------------------------------------------

    def execute(self, job: Job, control: Control) -> str:
        """Drive the run to its end; returns its final status."""
        run, writer = open_run(self.state, job.dag_id, job.run_id)
        executor = LocalExecutor(kill_grace=self.kill_grace)
        try:
            engine = Engine(run, writer, executor, self.state, self._checkout(run), parallelism=self.parallelism,
                            secrets=secrets_for(run.dag, self.secrets_file), listeners=self.listeners(), shared_slots=self.slots)
            control.wakeups.append(lambda: _apply(control, engine))
            _apply(control, engine)  # a stop may have come before the engine existed
            return engine.execute().value
        finally:
            executor.shutdown()
            writer.close()

    def _checkout(self, run: RunState) -> Path:
        path = self.state.checkouts / run.commit
        if not path.is_dir():
            raise RunError(f"checkout of {run.commit[:8]} for run {run.run_id} is missing at {path}")
        return path


def _apply(control: Control, engine: Engine) -> None:
    if control.interrupting.is_set():
        engine.request_stop(why="`gitflowd stop`" if control.cancelled else "the daemon's grace period is over")
    elif control.stopping.is_set():
        engine.request_drain()
