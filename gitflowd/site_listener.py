"""The site following a run: an engine listener that re-renders the run's pages as it goes.

Flow: the engine hands every durable record to `on_record` -> the run is marked pending
and a timer is started if none runs -> the timer renders every pending run (`flush`), one
render at a time, the gap between renders at least twice the last render's cost -> the
run's `run_finished` record renders it at once; `close()` renders what is left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gitflowd import journal
from gitflowd.errors import SiteError
from gitflowd.site import Site
from gitflowd.state import RunState

log = logging.getLogger(__name__)


def listener_for(state_root: Path, site_root: Path, secrets: Mapping[str, str]) -> SiteListener:
    """What `run` and `resume` hand the engine so that the site follows the run."""
    return SiteListener(Site(state_root, site_root, secrets=secrets))


def render_once(state_root: Path, site_root: Path, dag_id: str, run_id: str) -> None:
    """For a command that changes a run's journal without running it (`clear`, `stop`): its
    pages once, and a site that cannot be written is a warning, never the command's failure."""
    site = Site(state_root, site_root)
    SiteListener(site).guard(lambda: site.render_run(dag_id, run_id), f"rendering run {run_id} of {dag_id}")


class SiteListener:
    """Engine listener: re-renders a run at most every `interval` seconds, and at its end.

    Renders between events happen on a timer thread reading the journal from disk (always at
    least as new as the event); the end of a run renders at once. A failing render is logged,
    never raised (`guard`): the site must not break a run.
    """

    def __init__(self, site: Site, interval: float = 0.5):
        self.site = site
        self.interval = interval
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._pending: set[tuple[str, str]] = set()
        self._timer: threading.Timer | None = None
        self._last = 0.0
        self._cost = 0.0  # seconds the last render took
        self._said: set[str] = set()  # SiteErrors already logged since the last render that worked

    def on_record(self, record: dict[str, Any], run: RunState) -> None:
        key = (run.dag_id, run.run_id)
        if record.get("event") == journal.RUN_FINISHED:
            with self._lock:
                self._pending.discard(key)
            self._render(key, run)
            return
        with self._lock:
            self._pending.add(key)
            if self._timer is None:
                self._start_timer()

    def _start_timer(self) -> None:
        """Called with `_lock` held. The gap between renders is at least twice the last
        render's cost, so a big run's pages take at most a third of a core from its tasks."""
        gap = max(self.interval, 2 * self._cost)
        self._timer = threading.Timer(max(0.0, self._last + gap - time.monotonic()), self.flush)
        self._timer.daemon = True
        self._timer.start()

    def flush(self) -> None:
        """Render every run with unrendered events (also called by close)."""
        with self._lock:
            keys, self._pending = self._pending, set()
        for key in sorted(keys):
            self._render(key, None)
        with self._lock:  # only now may the next timer start: renders never queue up
            self._timer = None
            if self._pending:
                self._start_timer()

    def close(self) -> None:
        with self._lock:
            timer = self._timer
        if timer is not None:
            timer.cancel()
        self.flush()

    def _render(self, key: tuple[str, str], run: RunState | None) -> None:
        with self._render_lock:
            start = time.monotonic()
            self.guard(lambda: self.site.render_run(*key, run=run), f"rendering run {key[1]} of {key[0]}")
            self._last = time.monotonic()
            self._cost = self._last - start

    def guard(self, render: Callable[[], object], what: str) -> None:
        """Run a render that must never fail its caller (a run, the daemon). A SiteError is
        the user's condition (a site path that is a file, a full disk): one warning line, said
        again only once it changed or after a render worked; anything else is a bug and is
        logged with its traceback."""
        try:
            render()
        except SiteError as exc:
            if str(exc) not in self._said:
                self._said.add(str(exc))
                log.warning("site not updated: %s", exc)
        except Exception:  # noqa: BLE001 - the site must never fail a run
            log.exception("site: %s failed", what)
        else:
            self._said.clear()
