"""`gitflowd resume DAG RUN_ID [--rev REV] [--parallelism N] [--secrets-file F]`.

Re-runs what did not succeed (failed, timed out, interrupted, never started) and
everything downstream of it, at the run's commit or at `--rev` (fix forward). Everything
that can be wrong is checked before the journal is touched: the run, the revision, the
DAG at that revision, templates and secrets. Then the orphaned process groups of a
runner that died are killed, `run_resumed` is written and the engine takes over.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from gitflowd import settings
from gitflowd.commands.common import find_dag, open_repo
from gitflowd.commands.handoff import daemon_holder, hand_over, note_foreground
from gitflowd.commands.run import add_execution_options, execute, note_uncommitted, record_if_head, site_listeners
from gitflowd.errors import RepoError, RunError
from gitflowd.lock import StateLock
from gitflowd.progress import describe
from gitflowd.secrets import resolve_path, secrets_for
from gitflowd.statedir import StateDir

if TYPE_CHECKING:
    from gitflowd.dag import Dag
    from gitflowd.repo import Repo


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "resume", parents=[common], help="re-run the failed, interrupted and never-started tasks of a run",
        description="Resume a run: keep succeeded tasks, run again failed, timed-out, interrupted, cleared "
                    "and never-started tasks and everything downstream of them. Attempt numbers continue.",
    )
    parser.add_argument("dag", metavar="DAG", help="DAG id")
    parser.add_argument("run_id", metavar="RUN_ID", help="run id (see `gitflowd status DAG`)")
    parser.add_argument("--rev", metavar="REV", help="run at this commit instead of the run's own (fix forward: --rev HEAD)")
    add_execution_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitflowd.runs import open_resume, open_run, plan_resume
    from gitflowd.templating import render_commands

    where = settings.resolve(args.repo, args.state, args.site)
    state = StateDir(where.state)
    if daemon_holder(state):
        return hand_over(state, "resume", {"dag": args.dag, "run_id": args.run_id, "rev": args.rev}, wait=not args.no_wait)
    note_foreground(args.no_wait)
    with StateLock(state.lock_path, "run"), open_repo(args) as repo:
        current, writer = open_run(state, args.dag, args.run_id)
        try:
            sha, dag, commit_info = current.commit, None, None
            if args.rev:
                sha = repo.resolve(args.rev)
                snapshot = repo.load(sha)
                dag, commit_info = find_dag(snapshot, current.dag_id, args.rev), snapshot.commit.for_run()
                note_uncommitted(repo, snapshot, current.dag_id)
                record_if_head(repo, where.state, snapshot)  # fix forward: the site shows the fix
            record = plan_resume(current, dag, sha, commit_info)
            target: Dag = dag or current.dag
            commands = render_commands(dataclasses.replace(current, commit=sha, dag=target), target)
            secrets = secrets_for(target, resolve_path(args.secrets_file))
            checkout = _checkout(repo, state, sha, current.run_id) if not args.rev else repo.checkout(sha, state.checkouts)
        except BaseException:
            writer.close()
            raise
        open_resume(state, writer, current, record, secrets)
        print(current.run_id, flush=True)
        print(describe(record, current), flush=True)  # before the engine's listeners exist
        return execute(current, writer, state, checkout, args.parallelism, secrets, commands,
                       listeners=site_listeners(args, where.state, where.site, secrets))


def _checkout(repo: Repo, state: StateDir, sha: str, run_id: str) -> Path:
    """The tree of the run's own commit. One that exists needs no Git: the commit may have
    left the repository since (a force-push, then gc), and the run can still resume there."""
    existing = state.checkouts / sha
    if existing.is_dir():
        return existing
    try:
        repo.resolve(sha)
    except RepoError:
        if not repo.git_dir.is_dir():
            raise
        raise RunError(f"commit {sha[:8]} of run {run_id!r} is no longer in {repo.path} (history rewritten by a "
                       "force-push?) and its checkout is gone: resume the run at another commit with --rev, "
                       "e.g. --rev HEAD") from None
    return repo.checkout(sha, state.checkouts)
