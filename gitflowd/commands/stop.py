"""`gitflowd stop DAG RUN_ID [--secrets-file F]`: stop a run; `resume` can continue it later.

With a daemon holding the state directory the request goes to it (`stop` in requests.py):
a running run's engine sends its running tasks SIGTERM, then SIGKILL after the grace, and
records them and the run `interrupted`; a queued run is ended at once. This command then
waits until the journal says the run ended. Without a daemon, a run whose runner died
(its journal still says queued or running) is ended here: orphaned task groups killed,
their logs masked, the run recorded `interrupted`. A run a foreground `gitflowd run`,
`resume` or `backfill` is running is refused: stop that process (Ctrl-C there).
"""

from __future__ import annotations

import argparse
import time

from gitflowd import settings
from gitflowd.commands.handoff import daemon_holder, hand_over
from gitflowd.errors import RunError
from gitflowd.lock import StateLock, holder, is_locked
from gitflowd.state import RunState, RunStatus
from gitflowd.statedir import LiveRun, StateDir

POLL = 0.1  # seconds between two looks at the stopping run's journal


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "stop", parents=[common], help="stop a queued or running run (resume continues it)",
        description="Stop a queued or running run: its running tasks get SIGTERM, then SIGKILL 10 s later if "
                    "they are still there, and the run ends `interrupted`; `gitflowd resume` continues it later.",
    )
    parser.add_argument("dag", metavar="DAG", help="DAG id")
    parser.add_argument("run_id", metavar="RUN_ID", help="run id")
    parser.add_argument("--secrets-file", metavar="FILE",
                        help="mask these secrets in the logs a dead runner left (env GITFLOWD_SECRETS_FILE)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    where = settings.resolve(args.repo, args.state, args.site)
    state = StateDir(where.state)
    current = state.load_run(args.dag, args.run_id)  # unknown DAG or run: one line, before any hand-over
    if daemon_holder(state):
        code = hand_over(state, "stop", {"dag": current.dag_id, "run_id": current.run_id}, wait=False)
        return code or _report(_wait_for_end(state, current))
    if is_locked(state.lock_path):
        raise RunError(f"run {current.run_id!r} is in a state directory used by pid {holder(state.lock_path) or '?'} "
                       "(a gitflowd run, resume or backfill in the foreground): stop that process, e.g. Ctrl-C in its terminal")
    stopped = _stop_here(state, current.dag_id, current.run_id, args.secrets_file)
    from gitflowd.site_listener import render_once
    render_once(where.state, where.site, stopped.dag_id, stopped.run_id)  # no runner is left to render it
    return _report(stopped)


def _stop_here(state: StateDir, dag_id: str, run_id: str, secrets_flag: str | None) -> RunState:
    from gitflowd.runs import open_run, running_attempts, stop_unfinished
    from gitflowd.secrets import resolve_path, secrets_for

    with StateLock(state.lock_path, "run"):
        current, writer = open_run(state, dag_id, run_id)
        with writer:
            path = resolve_path(secrets_flag)
            unmasked = [task_id for task_id, _ in running_attempts(current)]
            if current.dag.secrets and not path and unmasked:  # the engine masks a log when its attempt ends
                raise RunError(f"the logs of {', '.join(unmasked)} in run {run_id!r} are not masked yet (its runner died): "
                               "give the DAG's secrets file (--secrets-file or GITFLOWD_SECRETS_FILE) so that stop masks them")
            stop_unfinished(state, writer, current, secrets_for(current.dag, path) if path else {})
    return current


def _wait_for_end(state: StateDir, current: RunState) -> RunState:
    """The run as its journal ends it (the daemon's engine writes run_finished)."""
    live = LiveRun(state, current.dag_id, current.run_id)
    while True:
        alive = is_locked(state.lock_path)  # asked before reading: a run that ended as the daemon exited is seen
        current = live.refresh()
        if current.state.ended:
            return current
        if not alive:
            raise RunError(f"the daemon stopped before run {current.run_id!r} ended (see `gitflowd status {current.dag_id}`)")
        time.sleep(POLL)


def _report(current: RunState) -> int:
    if current.state is RunStatus.INTERRUPTED:
        print(f"run {current.run_id}: interrupted; continue it with: gitflowd resume {current.dag_id} {current.run_id}")
    else:
        print(f"run {current.run_id}: {current.state.value} (it ended before it could be stopped)")
    return 0
