"""`gitflowd backfill DAG --start DATE --end DATE [--reprocess none|failed|all] [--dry-run] [--no-wait]`.

One run per tick of the DAG's schedule in [start, end] (dates in the DAG's timezone),
oldest first, `max_active_runs` at a time (backfill.py decides per tick). `--dry-run`
prints the plan and records nothing. While a daemon runs, the daemon does the work and
this command follows it; otherwise it takes the state lock and runs the plan in the
foreground, with a progress line on a terminal. Exit 0 when every run succeeded.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from gitflowd import settings
from gitflowd.backfill import REPROCESS, Action, Step, check_range, describe, future_ticks, plan_backfill
from gitflowd.commands.common import find_dag, format_time, open_repo, report_broken, table
from gitflowd.commands.handoff import daemon_holder, hand_over, note_foreground
from gitflowd.commands.run import add_execution_options, record_if_head, site_listeners
from gitflowd.lock import StateLock, is_locked
from gitflowd.pool import Finished, Job, Limiter, RunPool
from gitflowd.secrets import resolve_path, secrets_for
from gitflowd.state import RunState, RunStatus
from gitflowd.statedir import StateDir

if TYPE_CHECKING:
    from gitflowd.dag import Dag
    from gitflowd.launch import Launcher


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "backfill", parents=[common], help="run a DAG for every schedule tick in a date range",
        description="Create one backfill run per tick of the DAG's schedule in [--start, --end] (inclusive; "
        "dates in the DAG's timezone), oldest first, at most max_active_runs at a time. Ticks that already "
        "have a run are left alone unless --reprocess failed (resume failed or interrupted runs) or all.",
    )
    parser.add_argument("dag", metavar="DAG", help="DAG id")
    parser.add_argument("--start", required=True, metavar="DATE", help="first tick: YYYY-MM-DD or an ISO datetime")
    parser.add_argument("--end", required=True, metavar="DATE", help="last tick (inclusive): YYYY-MM-DD or an ISO datetime")
    parser.add_argument("--reprocess", choices=REPROCESS, default="none", help="what to do with ticks that already have a run (default: none)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    add_execution_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitflowd.launch import Launcher

    where = settings.resolve(args.repo, args.state, args.site)
    state = StateDir(where.state)
    if args.dry_run:
        with open_repo(args) as repo:
            dag = find_dag(repo.load(repo.resolve()), args.dag)
        busy = is_locked(state.lock_path)  # a daemon or a foreground command may be running any unfinished run
        return _print_plan(dag, _plan(dag, state, args, lambda _run: busy))
    if daemon_holder(state):
        request = {"dag": args.dag, "start": args.start, "end": args.end, "reprocess": args.reprocess}
        return hand_over(state, "backfill", request, wait=not args.no_wait)
    note_foreground(args.no_wait)
    settings.exclude_from_git(where)
    with StateLock(state.lock_path, "backfill"), open_repo(args) as repo:
        sha = repo.resolve()
        snapshot = repo.load(sha)
        dag = find_dag(snapshot, args.dag)
        steps = _plan(dag, state, args, lambda _run: False)  # we hold the lock: an unfinished run is nobody's
        record_if_head(repo, where.state, snapshot)  # as `run` does: the site shows the DAG's source and versions
        secrets_file = resolve_path(args.secrets_file)
        listeners = site_listeners(args, where.state, where.site, secrets_for(dag, secrets_file))
        launcher = Launcher(state, repo, secrets_file=secrets_file, parallelism=args.parallelism,
                            slots=Limiter(args.parallelism) if args.parallelism else None, listeners=lambda: listeners)
        try:
            return _Foreground(dag, launcher).run(sha, steps)
        finally:
            for listener in listeners:
                listener.close()


def _plan(dag: Dag, state: StateDir, args: argparse.Namespace, in_progress: Callable[[RunState], bool]) -> list[Step]:
    from gitflowd.schedule import aware, parse_when, zone

    now = datetime.now(timezone.utc)
    start = parse_when(args.start, dag, now, flag="--start")
    end = parse_when(args.end, dag, now, flag="--end")
    check_range(dag, start, end, args.start, args.end, now)
    for bound, outside, word in ((dag.start_date, start, "before its start_date"), (dag.end_date, end, "after its end_date")):
        if bound is not None and (outside < aware(bound, zone(dag)) if word.startswith("before") else outside > aware(bound, zone(dag))):
            print(f"gitflowd: note: DAG {dag.id!r} has no runs {word} {bound}; those ticks are not planned", file=sys.stderr)
    if future_ticks(dag, end, now):
        print(f"gitflowd: note: ticks of DAG {dag.id!r} after now are not planned; the schedule runs them when they come", file=sys.stderr)
    runs = state.runs(dag.id)
    report_broken(state)  # a tick whose journal cannot be read looks unrun: say so
    return plan_backfill(dag, runs, start, end, args.reprocess, in_progress, now)


def _print_plan(dag: Dag, steps: list[Step]) -> int:
    rows = [[format_time(s.tick, dag.timezone), s.action.value, s.run_id or "-", s.reason] for s in steps]
    if rows:
        print(table(["TICK", "ACTION", "RUN", "REASON"], rows))
    print(f"backfill {dag.id}: {describe(steps)} (dry run: nothing recorded)")
    return 0


class _Foreground:
    """Carries out a plan with a run pool in this process; Ctrl-C, SIGTERM and SIGHUP (a
    closed terminal) stop it cleanly."""

    def __init__(self, dag: Dag, launcher: Launcher):
        self.dag, self.launcher = dag, launcher
        self.wake = threading.Event()
        self.pool = RunPool(launcher.execute, lambda _dag_id: dag.max_active_runs, self.wake.set)
        self.results: list[Finished] = []
        self.signals = 0
        self.gone = False  # the terminal hung up (EIO) or the pipe's reader left (EPIPE)

    def run(self, sha: str, steps: list[Step]) -> int:
        jobs = [self._job(sha, step) for step in steps if step.action is not Action.SKIP]
        print(f"backfill {self.dag.id}: {describe(steps)}", flush=True)
        for job in jobs:
            self.pool.add(job)
        # A signal ignored at start stays ignored: `nohup gitflowd backfill ...` outlives its terminal.
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                    if signal.getsignal(sig) is not signal.SIG_IGN}
        try:
            self._drive(len(jobs))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        failed = [r for r in self.results if r.status != RunStatus.SUCCESS.value]
        return 0 if not failed and len(self.results) == len(jobs) else 1

    def _job(self, sha: str, step: Step) -> Job:
        if step.action is Action.CREATE:
            return self.launcher.prepare_new(self.dag, sha, "backfill", step.tick)
        if step.action is Action.RERUN:
            return self.launcher.prepare_rerun(self.dag.id, step.run_id or "")
        return self.launcher.prepare_resume(self.dag.id, step.run_id or "")

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.signals += 1
        self.wake.set()

    def _drive(self, total: int) -> None:
        handled = 0
        while not self.pool.idle:
            if self.signals > handled:
                handled = self.signals
                if handled == 1:
                    self.pool.stop()  # first signal: running tasks may finish
                else:
                    self.pool.interrupt()
            for item in self.pool.collect():  # before pump: a finished run frees its slot
                self.results.append(item)
                self._say(f"{item.job.run_id}: {item.status}{' ' + item.error if item.error else ''}")
            for job in self.pool.pump():
                self._say(f"{job.run_id}: started", transient=True)
            self._say(f"{len(self.results)}/{total} runs done, {len(self.pool.running)} running, {len(self.pool.queued)} queued", transient=True)
            if not self.pool.idle:
                self.wake.wait()
                self.wake.clear()

    def _say(self, text: str, transient: bool = False) -> None:
        """A line; on a terminal, transient lines are redrawn in place (the progress line).
        Output is for a person: once nobody reads it, the backfill goes on without it."""
        if self.gone:
            return
        try:
            if sys.stdout.isatty():
                sys.stdout.write(f"\r\x1b[K{text}" + ("" if transient else "\n"))
                sys.stdout.flush()
            elif not transient:
                print(text, flush=True)
        except OSError:
            self.gone = True
