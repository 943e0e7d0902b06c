"""`gitflowd logs DAG RUN_ID TASK [--attempt N] [--secrets-file F] [-f]`: one attempt's log.

Prints the log of the last attempt (or attempt N), streamed, with the DAG's secrets masked
again if the secrets file is available (they were masked when the task ended; a runner
that died mid-task could not do that).

A task with no attempt says why (`_no_attempt`): skipped or upstream_failed by its trigger
rule, with the journal's reason, or not started yet.

With `-f` it follows the attempt as `tail -f` would (`_follow`): it waits for the task to
start if it has not (unless its trigger rule already skipped it), prints what the log has, then what is appended, until the journal
says the attempt ended (or the run did, or no process holds the state lock any more: the
runner died). The journal is replayed again only when it grew. A DAG with secrets is only
followed live with its secrets file: the log on disk is masked when the attempt ends, so
without them it waits for the end and prints the masked log.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import BinaryIO

from gitflowd import settings
from gitflowd.errors import GitflowdError, RunError, TaskNotFound
from gitflowd.lock import is_locked
from gitflowd.secrets import Masker, MaskingWriter, load_file, resolve_path
from gitflowd.state import RunState, RunStatus, TaskState, TaskStatus
from gitflowd.statedir import LiveRun, StateDir

POLL = 0.2  # seconds between looks at a followed log and its journal

log = logging.getLogger(__name__)

# A task its trigger rule settled without running it: what befell it (the journal says why).
NOT_RUN = {TaskStatus.SKIPPED: "was skipped", TaskStatus.UPSTREAM_FAILED: "was marked upstream_failed"}


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
    parser.add_argument("-f", "--follow", action="store_true",
                        help="wait for the task to start if it has not, then print the log as it grows until the attempt ends")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state = StateDir(settings.resolve(args.repo, args.state, args.site).state)
    current = state.load_run(args.dag, args.run_id)
    if args.follow:
        return _follow(_Journal(state, current.dag_id, current.run_id), args.task, args.attempt, args.secrets_file)
    number = _attempt_number(current, args.task, args.attempt)
    path = state.log_path(current.dag_id, current.run_id, args.task, number)
    masker = _masker(current, args.secrets_file)
    if current.dag.secrets and masker is None:
        _refuse_unmasked(current, args.task, number)
    with _open_log(path, current, args.task, number) as src:
        masker.mask_stream(src, sys.stdout.buffer) if masker else _copy(src)
        empty = src.tell() == 0
    sys.stdout.flush()
    if empty:  # on stderr: a pipe still gets exactly the log, which is empty
        print(f"gitflowd: attempt {number} of task {args.task!r} printed nothing", file=sys.stderr)
    return 0


def _refuse_unmasked(run: RunState, task_id: str, number: int) -> None:
    """A log is masked when its attempt ends: the log of one that has not (still running, or
    its runner died) holds the DAG's secrets in clear, and was printed so."""
    attempt = next(a for a in run.tasks[task_id].attempts if a.number == number)
    if attempt.ended is None:
        raise RunError(f"attempt {number} of task {task_id!r} has not ended and DAG {run.dag_id!r} has secrets: its log "
                       "is masked only when it ends; give the secrets file (--secrets-file or GITFLOWD_SECRETS_FILE) "
                       "to read it now, or -f to wait for the end")


def _attempt_number(run: RunState, task_id: str, wanted: int | None) -> int:
    if task_id not in run.tasks:
        from gitflowd.loader import suggest
        raise TaskNotFound(run.dag_id, task_id, suggest(task_id, list(run.tasks)))
    numbers = [a.number for a in run.tasks[task_id].attempts]
    if not numbers:
        raise _no_attempt(run, run.tasks[task_id])
    if wanted is None:
        return numbers[-1]
    if wanted not in numbers:
        raise RunError(f"task {task_id!r} has no attempt {wanted} in run {run.run_id!r} "
                       f"(attempts: {', '.join(map(str, numbers))})")
    return wanted


def _no_attempt(run: RunState, task: TaskState) -> RunError:
    """Why a task has no log: its trigger rule skipped it (with the reason its task_skipped
    record gives), or it has not started (yet)."""
    verb = NOT_RUN.get(task.state)
    if verb is None:
        return RunError(f"task {task.task_id!r} has not started in run {run.run_id!r} (state {task.state.value})")
    why = f" ({task.reason})" if task.reason else ""
    return RunError(f"task {task.task_id!r} {verb} in run {run.run_id!r}{why}: it has no log")


def _masker(run: RunState, flag: str | None) -> Masker | None:
    path = resolve_path(flag)
    if not run.dag.secrets or not path:
        return None
    try:
        values = load_file(path)
    except GitflowdError as exc:
        log.warning("not masking secrets again: %s", exc)
        return None
    missing = [name for name in run.dag.secrets if name not in values]
    if missing:  # another DAG's file, say: masking with part of the secrets is not masking
        log.warning("not masking secrets again: %s has no %s", path, ", ".join(missing))
        return None
    return Masker(values[name] for name in run.dag.secrets)


def _copy(src) -> None:  # noqa: ANN001 - a binary file
    while chunk := src.read(1 << 20):
        sys.stdout.buffer.write(chunk)


class _Journal(LiveRun):
    """The followed run, and what following one of its task attempts needs to know."""

    def task(self, task_id: str) -> TaskState:
        """The followed task as the journal has it now; RunError once a resume at another
        commit took it out of the run (`resume --rev` of a DAG that no longer has it)."""
        task = self.refresh().tasks.get(task_id)
        if task is None:
            raise RunError(f"task {task_id!r} is no longer in run {self.run.run_id!r}: "
                           f"it was resumed at commit {self.run.commit[:8]}, whose DAG has no such task")
        return task

    def over(self, task_id: str, number: int | None) -> str | None:
        """Why following must stop: "" when the attempt ended, else what happened to the run;
        None to go on."""
        if any(a.number == number and a.ended is not None for a in self.task(task_id).attempts):
            return ""
        run = self.run
        if run.state.ended:
            return f"run {run.run_id!r} ended {run.state.value}"
        if not is_locked(self.state.lock_path):  # "running" with nobody holding the lock: the runner died
            return f"run {run.run_id!r} has no runner any more (it died; `gitflowd resume` finishes it)"
        return None


def _follow(journal: _Journal, task_id: str, wanted: int | None, secrets_flag: str | None) -> int:
    number = _wait_to_start(journal, task_id, wanted)
    run = journal.run
    path = journal.state.log_path(run.dag_id, run.run_id, task_id, number)
    masker = _masker(run, secrets_flag)
    out = MaskingWriter(masker or Masker(()), sys.stdout.buffer)
    if masker is None and run.dag.secrets:  # not live: the log is masked on disk when the attempt ends
        reason = _wait_over(journal, task_id, number)
        with _open_log(path, run, task_id, number) as src:
            _drain(src, out)
    else:
        with _open_when_there(path, journal, task_id, number) as src:
            reason = _copy_until_over(src, out, journal, task_id, number)
            _drain(src, out)
    out.close()
    sys.stdout.flush()
    if reason:
        raise RunError(f"attempt {number} of task {task_id!r} did not end: {reason}")
    return 0


def _wait_to_start(journal: _Journal, task_id: str, wanted: int | None) -> int:
    if task_id not in journal.run.tasks:
        _attempt_number(journal.run, task_id, wanted)  # raises TaskNotFound
    while True:
        task = journal.task(task_id)
        numbers = [a.number for a in task.attempts]
        if numbers and (wanted is None or wanted <= numbers[-1]):
            return _attempt_number(journal.run, task_id, wanted)
        # Settled by this execution of the run: nothing to wait for. In a queued run (cleared,
        # or resumed and not yet started) the skip is an earlier one that the resume judges again.
        if not numbers and task.state in NOT_RUN and journal.run.state is not RunStatus.QUEUED:
            raise _no_attempt(journal.run, task)
        reason = journal.over(task_id, wanted)
        if reason:
            raise RunError(f"task {task_id!r} did not start: {reason}")
        time.sleep(POLL)


def _open_log(path: Path, run: RunState, task_id: str, number: int) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise RunError(f"no log file for attempt {number} of task {task_id!r} in run {run.run_id!r}: {path}") from None
    except OSError as exc:  # not ours to read (a service's state directory), or not a file
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: OSError) -> RunError:
    return RunError(f"cannot read log file {path}: {exc.strerror or exc}")


def _open_when_there(path: Path, journal: _Journal, task_id: str, number: int) -> BinaryIO:
    """The log file; it is created just before the spawn, so a few polls at most."""
    while True:
        try:
            return path.open("rb")
        except FileNotFoundError:
            if journal.over(task_id, number) is not None:
                return _open_log(path, journal.run, task_id, number)
            time.sleep(POLL)
        except OSError as exc:
            raise _unreadable(path, exc) from None


def _copy_until_over(src: BinaryIO, out: MaskingWriter, journal: _Journal, task_id: str, number: int) -> str:
    while True:
        if _drain(src, out):
            sys.stdout.flush()
            continue
        reason = journal.over(task_id, number)
        if reason is not None:
            return reason
        time.sleep(POLL)


def _wait_over(journal: _Journal, task_id: str, number: int) -> str:
    while (reason := journal.over(task_id, number)) is None:
        time.sleep(POLL)
    return reason


def _drain(src: BinaryIO, out: MaskingWriter) -> bool:
    """Copy what the file has now; True if there was anything."""
    copied = False
    while chunk := src.read(1 << 20):
        out.write(chunk)
        copied = True
    return copied
