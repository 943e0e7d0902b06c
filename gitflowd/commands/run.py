"""`gitflowd run DAG [--rev REV] [--date WHEN] [--param K=V]... [--parallelism N] [--secrets-file F]`.

A manual run in the foreground: load the DAG from the commit (head of the branch by
default), check params, render every command and resolve secrets before anything is
recorded, take the state lock, write `run_created`, print the run id, then execute with
a progress reporter. Exit 0 when the run succeeds, 1 when it fails, 128+signal when
interrupted. `execute()` is shared with `resume`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gitflowd import settings
from gitflowd.commands.common import find_dag, open_repo
from gitflowd.commands.handoff import daemon_holder, hand_over, note_foreground
from gitflowd.errors import GitflowdError
from gitflowd.lock import StateLock
from gitflowd.progress import Progress
from gitflowd.secrets import resolve_path, secrets_for
from gitflowd.state import RunState, RunStatus
from gitflowd.statedir import StateDir

if TYPE_CHECKING:
    from gitflowd.engine import RunListener
    from gitflowd.journal import JournalWriter
    from gitflowd.repo import Repo, Snapshot
    from gitflowd.templating import Rendered

log = logging.getLogger(__name__)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def add_execution_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parallelism", type=positive_int, metavar="N",
                        help="tasks running at once (default: CPU count; the DAG's max_active_tasks also applies)")
    parser.add_argument("--secrets-file", metavar="FILE", help="KEY=VALUE secrets, mode 600 (env GITFLOWD_SECRETS_FILE)")
    parser.add_argument("--no-wait", action="store_true",
                        help="while a daemon runs (it then does the work): print the run id and return at once")
    parser.add_argument("--no-render", action="store_true",
                        help="do not render the site while and after running (CI, scripts); `gitflowd render` "
                             "catches up later")


def site_listeners(args: argparse.Namespace, state: Path, site: Path, secrets: Mapping[str, str]) -> list[RunListener]:
    """The debounced site renderer, unless --no-render (then the site is not even imported)."""
    if args.no_render:
        return []
    from gitflowd.site_listener import listener_for
    return [listener_for(state, site, secrets)]


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "run", parents=[common], help="run a DAG now, in the foreground",
        description="Create a manual run of DAG at a commit and run it in the foreground. "
                    "Prints the run id first; exits 0 when the run succeeds, 1 when it fails.",
    )
    parser.add_argument("dag", metavar="DAG", help="DAG id")
    parser.add_argument("--rev", metavar="REV", help="commit, branch or tag (default: head of the branch)")
    parser.add_argument("--date", metavar="WHEN",
                        help="logical date: YYYY-MM-DD or an ISO datetime, in the DAG's timezone unless it has an offset (default: now); "
                             "not before the DAG's start_date")
    parser.add_argument("--param", action="append", default=[], metavar="K=V", help="override a DAG param, typed as its default (repeatable)")
    add_execution_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitflowd.runs import create_run, parse_params, plan_run
    from gitflowd.schedule import data_interval, parse_logical_date
    from gitflowd.templating import render_commands

    where = settings.resolve(args.repo, args.state, args.site)
    state = StateDir(where.state)
    if daemon_holder(state):
        request = {"dag": args.dag, "rev": args.rev, "date": args.date, "params": args.param}
        return hand_over(state, "run", request, wait=not args.no_wait)
    note_foreground(args.no_wait)
    with open_repo(args) as repo:
        sha = repo.resolve(args.rev)
        snapshot = repo.load(sha)
        dag = find_dag(snapshot, args.dag, args.rev)
        note_uncommitted(repo, snapshot, dag.id)
        logical = parse_logical_date(args.date, dag)
        params = parse_params(args.param, dag)
        secrets = secrets_for(dag, resolve_path(args.secrets_file))
        interval = data_interval(dag, logical)
        settings.exclude_from_git(where)
        with StateLock(state.lock_path, "run"):
            record_if_head(repo, where.state, snapshot)
            new = plan_run(state, dag, kind="manual", logical_date=logical, commit=sha,
                           commit_info=snapshot.commit.for_run(), params=params,
                           data_interval=(interval.start, interval.end))
            commands = render_commands(new, dag)  # a template error stops us before anything is written
            checkout = repo.checkout(sha, state.checkouts)
            writer = create_run(state, new)
            print(new.run_id, flush=True)
            return execute(new, writer, state, checkout, args.parallelism, secrets, commands,
                           listeners=site_listeners(args, where.state, where.site, secrets))


def note_uncommitted(repo: Repo, snapshot: Snapshot, dag_id: str) -> None:
    """Runs use committed files only (DESIGN.md), so a DAG file edited and run at once ran
    its old version without a word: say so on stderr when the run is at the work tree's
    HEAD and the file on disk differs from it."""
    loaded = snapshot.dags.get(dag_id)
    if repo.bare or loaded is None or snapshot.commit is None:
        return
    try:
        if snapshot.commit.sha != repo.resolve("HEAD"):
            return
        text = (repo.path / loaded.path).read_text(encoding="utf-8")
    except (GitflowdError, OSError, UnicodeDecodeError):
        return
    if text != loaded.source:
        print(f"gitflowd: note: {loaded.path} has changes that are not committed; this run uses its version at "
              f"{snapshot.commit.sha[:8]} (commit them to run them)", file=sys.stderr)


def record_if_head(repo: Repo, state: Path, snapshot: Snapshot) -> None:
    """A snapshot of the branch head goes into the registry, as the daemon would load it: the
    site shows each DAG's source and versions from there. Failing must not stop the run."""
    from gitflowd.registry import record_snapshot
    try:
        if snapshot.commit is not None and snapshot.commit.sha == repo.resolve():
            record_snapshot(state, snapshot)
    except GitflowdError as exc:
        log.warning("%s", exc)


def execute(run_state: RunState, writer: JournalWriter, state: StateDir, checkout: Path, parallelism: int | None,
            secrets: Mapping[str, str], commands: Mapping[str, Rendered] | None = None,
            listeners: Iterable[RunListener] = ()) -> int:
    """Run the engine in the foreground with signals wired to a clean stop; the exit code."""
    from gitflowd.engine import Engine
    from gitflowd.executors.local import LocalExecutor

    # Tasks run in the checkout; being there ourselves lets the executor use posix_spawn,
    # which has no working-directory action before 3.13. Every path we hold is absolute.
    os.chdir(checkout)
    executor = LocalExecutor()
    engine = Engine(run_state, writer, executor, state, checkout, parallelism=parallelism, secrets=secrets,
                    listeners=[Progress(run_state, sys.stdout, autoflush=False), *listeners], commands=commands)
    # SIGHUP too (a closed terminal, a dropped ssh session): its default action ended the
    # runner at once and left the run 'running' with its tasks orphaned in their sessions.
    # A signal ignored when we started stays ignored: `nohup gitflowd run ...` must outlive
    # the terminal, and a job started with `&` by a script ignores Ctrl-C.
    previous = {sig: signal.signal(sig, lambda signum, _frame: engine.request_stop(signum))
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        status = engine.execute()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        executor.shutdown()
        writer.close()
        for listener in engine.listeners:  # e.g. the site listener's last render
            getattr(listener, "close", lambda: None)()
    if status is RunStatus.SUCCESS:
        return 0
    if status is RunStatus.INTERRUPTED:
        return 128 + (engine.stop_signal or signal.SIGTERM)
    return 1
