"""How the daemon stops: a grace period for its running runs, then an interruption, and the
runs it interrupted remembered for the next start.

Flow: a SIGTERM/SIGINT handler calls `signal(signum)` (a flag and a count only) -> the
loop sees `requested` and calls `begin(pool, notifier)`: queued runs are dropped (they wait
for the next start) and running runs start no new tasks -> `check(pool, mono)`, on every
pass, interrupts the running runs once the grace period is over or a second signal came
(Ctrl-C twice) -> each run interrupted so is `note`d as it ends, and `remember(root)` writes
them to STATE/daemon-resume.json, which the next start `take_noted` to resume exactly those
(a run ended by `gitflowd stop` is not among them: it waits for its user).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from gitflowd.atomic import write_atomic
from gitflowd.notify import Notifier
from gitflowd.pool import RunPool

log = logging.getLogger(__name__)

RESUME_FILE = "daemon-resume.json"  # runs a stopping daemon interrupted, resumed at the next start


class Stopping:
    """The daemon's stop, from the first signal to the runs it interrupted."""

    def __init__(self, grace: float):
        self.grace = grace
        self.requested = False
        self.signals = 0  # a second SIGTERM/SIGINT (Ctrl-C twice) ends the grace period at once
        self.signum = 0  # the first of them: `once` then exits 128+N, as run and backfill do
        self.since: float | None = None  # when the stop began (monotonic)
        self.interrupted = False
        self._runs: list[tuple[str, str]] = []

    @property
    def begun(self) -> bool:
        return self.since is not None

    def signal(self, signum: int) -> None:
        """From a signal handler: only flags (the wakeup fd has woken the loop already)."""
        self.requested = True
        self.signals += 1
        self.signum = self.signum or signum

    def begin(self, pool: RunPool, notifier: Notifier) -> None:
        """Stop scheduling; running runs start no new tasks and get `grace` seconds."""
        self.since = time.monotonic()
        dropped = pool.stop()
        running = len(pool.running)
        hint = " (stop again, e.g. Ctrl-C, to end them now)" if running else ""
        log.info("stopping: %d run(s) get %gs to finish their running tasks%s; %d queued run(s) wait for the next start",
                 running, self.grace, hint, len(dropped))
        notifier.stopping(f"stopping: waiting up to {self.grace:g}s for {running} run(s)")

    def grace_end(self) -> float | None:
        if self.since is None or self.interrupted:
            return None
        return self.since + self.grace

    def check(self, pool: RunPool, mono: float) -> None:
        """At the end of the grace period, or at a second stop signal: interrupt the runs."""
        end = self.grace_end()
        if end is None or not pool.running:
            return
        if mono >= end:
            log.warning("grace period over: interrupting %d run(s)", len(pool.running))
        elif self.signals > 1:
            log.warning("asked again to stop: interrupting %d run(s) now", len(pool.running))
        else:
            return
        self.interrupted = True
        pool.interrupt()

    def note(self, dag_id: str, run_id: str) -> None:
        """A run this stop interrupted: the next start resumes it."""
        self._runs.append((dag_id, run_id))

    def remember(self, root: Path) -> None:
        if self._runs:
            write_atomic(root / RESUME_FILE, json.dumps([list(r) for r in self._runs]), durable=True)


def take_noted(root: Path) -> set[tuple[str, str]]:
    """The runs the last stop interrupted, read once: the file is gone afterwards."""
    path = root / RESUME_FILE
    try:
        noted = {(d, r) for d, r in json.loads(path.read_text())}
    except (OSError, ValueError, TypeError):
        return set()
    path.unlink(missing_ok=True)
    return noted
