"""The daemon's site renders, on a thread of their own, so that its loop never waits for one.

Flow: the loop `submit`s a render (the whole site at start, a reloaded DAG's pages, a queued
run) and goes on at once -> the worker thread runs them one at a time, in order, each
through `guard` (a failing render is logged, never raised) -> `close()` lets it finish what
was submitted (`daemon --once` exits with its site complete) and joins it.

Why: a render can take long. The whole site of a state directory with years of runs takes
minutes, and any render waits while another process renders the same site (a `gitflowd
render`, a foreground run: they take its lock). Done in the loop, that held back READY=1
past systemd's start timeout, starved the watchdog (systemd killed the daemon) and left
inbox requests unanswered.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Render = Callable[[], object]


class SiteWorker:
    """Runs submitted renders in order on one thread, started at the first submit."""

    def __init__(self, guard: Callable[[Render], None]):
        self._guard = guard
        self._queue: queue.SimpleQueue[Render | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, render: Render) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="site", daemon=True)
            self._thread.start()
        self._queue.put(render)

    def close(self) -> None:
        """Finish what was submitted, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _work(self) -> None:
        while (render := self._queue.get()) is not None:
            self._guard(render)
