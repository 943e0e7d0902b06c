"""`gitflowd logs DAG RUN_ID TASK [--attempt N] [--secrets-file F]`: one attempt's log.

Prints the log of the last attempt (or attempt N), streamed, with the DAG's secrets masked
again if the secrets file is available (they were masked when the task ended; a runner
that died mid-task could not do that).
"""

from __future__ import annotations

import argparse
import logging
import sys

from gitflowd import settings
from gitflowd.errors import GitflowdError, RunError, TaskNotFound
from gitflowd.secrets import Masker, load_file, resolve_path
from gitflowd.state import RunState, StateDir

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "logs", parents=[common], help="print the log of a task attempt",
        description="Print the log of a task's last attempt (or --attempt N) in a run.",
    )
    parser.add_argument("dag", metavar="DAG", help="DAG id")
    parser.add_argument("run_id", metavar="RUN_ID", help="run id")
    parser.add_argument("task", metavar="TASK", help="task id")
    parser.add_argument("--attempt", type=int, metavar="N", help="attempt number (default: the last)")
    parser.add_argument("--secrets-file", metavar="FILE", help="mask these secrets (env GITFLOWD_SECRETS_FILE)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state = StateDir(settings.resolve(args.repo, args.state, args.site).state)
    current = state.load_run(args.dag, args.run_id)
    number = _attempt_number(current, args.task, args.attempt)
    path = state.log_path(current.dag_id, current.run_id, args.task, number)
    masker = _masker(current, args.secrets_file)
    try:
        with path.open("rb") as src:
            masker.mask_stream(src, sys.stdout.buffer) if masker else _copy(src)
    except FileNotFoundError:
        raise RunError(f"no log file for attempt {number} of task {args.task!r} in run {current.run_id!r}: {path}") from None
    sys.stdout.flush()
    return 0


def _attempt_number(run: RunState, task_id: str, wanted: int | None) -> int:
    if task_id not in run.tasks:
        from gitflowd.loader import suggest
        raise TaskNotFound(run.dag_id, task_id, suggest(task_id, list(run.tasks)))
    numbers = [a.number for a in run.tasks[task_id].attempts]
    if not numbers:
        raise RunError(f"task {task_id!r} has not started in run {run.run_id!r} (state {run.tasks[task_id].state.value})")
    if wanted is None:
        return numbers[-1]
    if wanted not in numbers:
        raise RunError(f"task {task_id!r} has no attempt {wanted} in run {run.run_id!r} "
                       f"(attempts: {', '.join(map(str, numbers))})")
    return wanted


def _masker(run: RunState, flag: str | None) -> Masker | None:
    path = resolve_path(flag)
    if not run.dag.secrets or not path:
        return None
    try:
        values = load_file(path)
    except GitflowdError as exc:
        log.warning("not masking secrets again: %s", exc)
        return None
    return Masker(values[name] for name in run.dag.secrets if name in values)


def _copy(src) -> None:  # noqa: ANN001 - a binary file
    while chunk := src.read(1 << 20):
        sys.stdout.buffer.write(chunk)
