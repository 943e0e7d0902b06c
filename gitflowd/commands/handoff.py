"""Hand a command to a running daemon, then follow its runs (shared by run, resume, clear, backfill).

Flow: `daemon_holder(state)` says whether a daemon holds STATE/daemon.lock (a foreground
run holding it is not a daemon: those commands then fail on the lock as before) ->
`hand_over(state, kind, args)` writes the request into the inbox and waits for the
daemon's reply -> prints the run ids -> unless `--no-wait`, `follow(...)` reads the runs'
journals as they grow (a progress line for one run, as in the foreground) until every
run has ended. Exit code: 0 when every run succeeded, 1 otherwise. SIGTERM and SIGHUP (a CI
job's timeout, a closed terminal) end it as Ctrl-C does: a request the daemon has not taken
is withdrawn, never left for its next start; the exit code is then 128+N.

Not a command itself (it is not listed in cli.COMMANDS).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gitflowd import inbox, journal
from gitflowd.lock import holder, is_locked
from gitflowd.progress import Progress
from gitflowd.state import RunState, RunStatus, apply, replay
from gitflowd.statedir import StateDir

REPLY_TIMEOUT = 120.0  # a busy daemon answers between two loop passes; this is for a hung one
FOLLOW_INTERVAL = 0.1  # seconds between two reads of a growing journal


def daemon_holder(state: StateDir) -> str | None:
    """'1234 (daemon)' when a daemon holds the state lock, else None."""
    if not is_locked(state.lock_path):
        return None
    who = holder(state.lock_path)
    return who if who and who.endswith("(daemon)") else None


def note_foreground(no_wait: bool) -> None:
    """`--no-wait` only applies to work handed to a daemon: say so when there is none, rather
    than block a script that expected to return at once without a word."""
    if no_wait:
        print("gitflowd: note: no daemon runs on this state directory, so --no-wait does not apply: "
              "the work runs here, in the foreground", file=sys.stderr)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP while waiting: handled as Ctrl-C is."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signum)
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _code(exc: KeyboardInterrupt) -> int:
    return 128 + (exc.signum if isinstance(exc, Stopped) else signal.SIGINT)


def hand_over(state: StateDir, kind: str, args: dict[str, Any], wait: bool = True) -> int:
    """Ask the daemon to do `kind` with `args`; print what it did; follow the runs if `wait`."""
    with _stopped_by_signals():
        return _hand_over(state, kind, args, wait)


def _hand_over(state: StateDir, kind: str, args: dict[str, Any], wait: bool) -> int:
    request = inbox.Request(kind, args)
    try:
        inbox.submit(state.root, request)
        reply = inbox.wait_reply(state.root, request.id, REPLY_TIMEOUT, alive=lambda: is_locked(state.lock_path))
    except KeyboardInterrupt as exc:
        if inbox.withdraw(state.root, request.id):
            print(f"gitflowd: interrupted; the {kind} request was withdrawn before the daemon took it: nothing done", file=sys.stderr)
        else:
            print(f"gitflowd: stopped waiting; the daemon took this {kind} (see `gitflowd status {args['dag']}`)", file=sys.stderr)
        return _code(exc)
    if not reply.ok:
        print(f"gitflowd: error: {reply.error}", file=sys.stderr)
        return reply.exit_code or 1
    if reply.message:
        print(reply.message, file=sys.stderr if reply.runs else sys.stdout)
    try:
        return _report(state, reply.runs, wait)
    except KeyboardInterrupt as exc:  # Ctrl-C stops this follower, not the daemon's runs: say so
        dag_id, names = reply.runs[0][0], ", ".join(run_id for _, run_id in reply.runs)
        print(f"gitflowd: stopped following; run(s) {names} of DAG {dag_id!r} go on in the daemon "
              f"(see `gitflowd status {dag_id}`)", file=sys.stderr)
        return _code(exc)


def _report(state: StateDir, runs: list[tuple[str, str]], wait: bool) -> int:
    """Print the run ids, then follow them unless told not to wait."""
    for _, run_id in runs:
        print(run_id, flush=True)
    if not wait or not runs:
        return 0
    ended = follow(state, [tuple(r) for r in runs])
    return 0 if all(r.state is RunStatus.SUCCESS for r in ended) else 1


def follow(state: StateDir, runs: list[tuple[str, str]]) -> list[RunState]:
    """Read the journals until every run has ended; one run gets the foreground progress output."""
    followers = [_Follower(state, dag_id, run_id, progress=len(runs) == 1) for dag_id, run_id in runs]
    while True:
        daemon_alive = is_locked(state.lock_path)
        for item in followers:
            item.poll()
            if len(followers) > 1:
                item.say_end()
        if all(item.ended for item in followers):
            break
        if not daemon_alive:
            left = ", ".join(f.path.stem for f in followers if not f.ended)
            print(f"gitflowd: the daemon stopped before run(s) {left} ended; they continue at its next start", file=sys.stderr)
            break
        if len(followers) > 1:
            _overall(followers)
        time.sleep(FOLLOW_INTERVAL)
    if len(followers) > 1:
        _overall(followers, final=True)
    return [item.run for item in followers if item.run is not None]


class _Follower:
    """One run's journal, read as it grows."""

    def __init__(self, state: StateDir, dag_id: str, run_id: str, progress: bool):
        self.path = state.journal_path(dag_id, run_id)
        self.show = progress
        self.run: RunState | None = None
        self.seen = 0
        self.progress: Progress | None = None
        self.said = False

    @property
    def ended(self) -> bool:
        return self.run is not None and self.run.state.ended

    def poll(self) -> None:
        if self.ended or not self.path.exists():
            return
        records = journal.read(self.path)
        if self.run is None:
            self.seen = _start_of_this_execution(records)
            self.run = replay(records[: self.seen], str(self.path))
            self.progress = Progress(self.run, sys.stdout) if self.show else None
        for record in records[self.seen:]:
            apply(self.run, record)
            if self.progress is not None:
                self.progress.on_record(record, self.run)
        self.seen = len(records)

    def say_end(self) -> None:
        """A line when the run ends (`backfill__...: success`), as a backfill in the foreground prints."""
        if self.ended and not self.said and self.run is not None:
            self.said = True
            _line(f"{self.path.stem}: {self.run.state.value}")


def _start_of_this_execution(records: list[dict[str, Any]]) -> int:
    """Records before this one are history: a new run starts after run_created, a resumed one
    after its last run_resumed. The daemon writes that record before it replies, so the first
    read finds it whichever command asked: `resume`, or `backfill --reprocess` (which resumes
    or re-runs existing runs; its old executions were replayed as if happening now)."""
    for index in range(len(records) - 1, 0, -1):
        if records[index]["event"] == journal.RUN_RESUMED:
            return index + 1
    return 1


def _overall(followers: list[_Follower], final: bool = False) -> None:
    """A progress line over several runs (backfill) on a terminal; one line at the end elsewhere."""
    done = [f.run for f in followers if f.ended and f.run is not None]
    failed = sum(1 for r in done if r.state is not RunStatus.SUCCESS)
    text = f"{len(done)}/{len(followers)} runs done, {failed} not successful"
    if sys.stdout.isatty():
        sys.stdout.write(f"\r\x1b[K{text}" + ("\n" if final else ""))
        sys.stdout.flush()
    elif final:
        print(text)


def _line(text: str) -> None:
    """A lasting line; on a terminal it first erases the progress line drawn in its place."""
    print(f"\r\x1b[K{text}" if sys.stdout.isatty() else text, flush=True)
