"""The static status site, rendered from the state directory with Jinja (DESIGN.md section 5).

Flow: `Site(state, site)`
  render_all()            every DAG (registry + journals) -> every run: run page, log pages
                          (masked; an unfinished attempt's log, still clear on disk, only
                          when the DAG's secrets are known),
                          a RunRow and its task cells cached in SITE/.cache -> every grid page
                          -> the DAG page -> index.html + status.json
  render_run(dag, run)    that run's pages -> upsert its row (bisect) -> only the grid pages
                          it changes -> its DAG page (and those of DAGs whose registry entry
                          changed since their page: a foreground `run` records the head too)
                          -> index.html + status.json: the cost of one DAG page, not of the history
  render_dags(ids)        after a reload without runs: those DAG pages (and stale ones) and the index
`SiteListener` (site_listener.py) feeds render_run from engine events, debounced. A page is written before
any page that links to it, and an existing page is replaced atomically (temporary file,
rename), so a browser or web server never reads half a page. Pages use relative links
only and carry their CSS inline, so the site works from file:// and any static server.
Layout geometry comes from svg.py, page values from sitedata.py, markup from templates/
through the Jinja environment of sitetemplates.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gitflowd import sitedata, sitelogs, svg
from gitflowd.atomic import write_page
from gitflowd.dag import Dag, is_valid_id
from gitflowd.errors import GitflowdError, RunNotFound, SiteError
from gitflowd.lock import is_locked
from gitflowd.registry import ChangeKind, CommitRef, DagEntry, Registry, Reload, read_registry, read_reloads
from gitflowd.schedule import next_tick
from gitflowd.secrets import SecretsFile
from gitflowd.sitecache import CacheMissing, SiteCache, upsert
from gitflowd.sitedata import DagInfo, IndexEntry, RunRow
from gitflowd.sitetemplates import environment
from gitflowd.state import RunState
from gitflowd.statedir import StateDir

log = logging.getLogger(__name__)


class Site:
    """Renders STATE into SITE; see the module docstring for the flow."""

    def __init__(self, state_root: Path, site_root: Path, secrets: Mapping[str, str] | SecretsFile | None = None,
                 clock: Callable[[], datetime] | None = None):
        """`secrets`: name -> value, masked in every log shown; the names tell which runs'
        unfinished logs (not yet masked on disk) can be shown at all. A SecretsFile (the
        daemon's) is read again at each render if it changed."""
        self.state = StateDir(Path(state_root))
        self.root = Path(site_root)
        self._secrets_file = secrets if isinstance(secrets, SecretsFile) else None
        self._use_secrets(secrets.current() if isinstance(secrets, SecretsFile) else secrets or {})
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._env = environment()
        self.cache = SiteCache(self.root)
        self._history: tuple[tuple[int, int], dict[str, list[Reload]]] = ((-1, -1), {})  # file version, dag -> reloads
        self._next_runs: dict[str, tuple[object, datetime, datetime]] = {}  # dag id -> (version, asked at, next tick)
        self.skipped: list[str] = []  # the journals the last render_all could not read (its errors)
        self._runner_gone = False  # no process holds the state lock: a run left active is nobody's

    def _use_secrets(self, secrets: Mapping[str, str]) -> None:
        self.secrets = tuple(v for v in secrets.values() if v)
        self._secret_names = frozenset(secrets)

    def _refresh_secrets(self) -> None:
        if self._secrets_file is not None:
            self._use_secrets(self._secrets_file.current())

    # -- entry points -----------------------------------------------------------------

    def render_all(self) -> Path:
        """Rebuild every page from state; returns the path of index.html."""
        with self._writing(), self.cache.locked():
            self._render_all()
        return self.root / "index.html"

    def render_run(self, dag_id: str, run_id: str, run: RunState | None = None) -> None:
        """Rewrite one run's pages and what shows it: its grid page(s), DAG page, index."""
        with self._writing(), self.cache.locked():
            self.cache.forget()
            try:
                index = self.cache.index()
            except CacheMissing as exc:  # a first render, or a deleted site: build it all
                log.info("site: rendering everything (%s)", exc)
                self._render_all()
                return
            run = run or self.state.load_run(dag_id, run_id)
            rows, pages = self._place_run(run)
            registry = read_registry(self.state.root)
            info = self._info(dag_id, registry, self._snapshot(dag_id, rows, run))
            for page in sorted(pages, reverse=True):  # page k links to k + 1
                self._write_grid_page(info, rows, page)
            index[dag_id] = self._write_dag_page(info, rows)
            # a foreground `run` records the head as the daemon does: DAGs that reload changed
            self._write_dag_pages(registry, index, _stale(registry, index) - {dag_id})
            self._write_index(registry, index)

    def _place_run(self, run: RunState) -> tuple[list[RunRow], set[int]]:
        """Write the run's pages and put it among its DAG's rows; the grid pages to rewrite."""
        try:
            rows = self.cache.rows(run.dag_id)
        except CacheMissing:  # the DAG's first run here (or its cache was lost): this DAG only
            rows = self._render_runs_of(run.dag_id)
            return rows, set(range(1, sitedata.page_count(rows) + 1))
        logged = self._write_run(run)
        pages = upsert(rows, RunRow.of(run))
        self.cache.save_cells(run.dag_id, run.run_id, sitedata.task_cells(run, logged))
        self.cache.save_rows(run.dag_id, rows)
        return rows, pages

    def render_dags(self, dag_ids: Iterable[str] = ()) -> None:
        """After a reload: rewrite these DAG pages (new version, errors), new DAGs' pages, the index."""
        with self._writing(), self.cache.locked():
            self.cache.forget()
            try:
                index = self.cache.index()
            except CacheMissing:
                self._render_all()
                return
            registry = read_registry(self.state.root)
            self._write_dag_pages(registry, index, set(dag_ids) | _stale(registry, index))
            self._write_index(registry, index)

    def _write_dag_pages(self, registry: Registry, index: dict[str, dict[str, Any]], dag_ids: Iterable[str]) -> None:
        for dag_id in sorted(dag_ids):
            pages: Iterable[int] = ()
            try:
                rows = self.cache.rows(dag_id)
            except CacheMissing:  # never rendered here: its runs (usually none) with it
                rows = self._render_runs_of(dag_id)
                pages = range(sitedata.page_count(rows), 0, -1)
            info = self._info(dag_id, registry, self._snapshot(dag_id, rows, None))
            for page in pages:
                self._write_grid_page(info, rows, page)
            index[dag_id] = self._write_dag_page(info, rows)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """An OSError while writing the site is one line naming the file, not a traceback.
        Every render starts here: the secrets file is looked at first, and whether any process
        (daemon, foreground run) holds the state: without one, nothing runs what looks active."""
        self._refresh_secrets()
        self._runner_gone = not is_locked(self.state.lock_path)
        try:
            yield
        except OSError as exc:
            where = exc.filename or self.root
            raise SiteError(f"cannot write the site at {self.root}: {where}: {exc.strerror or exc}") from None

    def _render_all(self) -> None:
        self.cache.forget()
        self.skipped = []
        registry = read_registry(self.state.root)
        index: dict[str, dict[str, Any]] = {}
        for dag_id in self._dag_ids(registry):
            rows = self._render_runs_of(dag_id)
            info = self._info(dag_id, registry, self._snapshot(dag_id, rows, None))
            for page in range(sitedata.page_count(rows), 0, -1):  # page k links to k + 1
                self._write_grid_page(info, rows, page)
            index[dag_id] = self._write_dag_page(info, rows)
        self.cache.save_skipped(self.skipped)
        self._write_index(registry, index)

    # -- runs -------------------------------------------------------------------------

    def _render_runs_of(self, dag_id: str) -> list[RunRow]:
        rows = []
        for run_id in self.state.run_ids(dag_id):
            try:
                run = self.state.load_run(dag_id, run_id)
            except RunNotFound:
                continue  # gone since listed, or its creation never completed: no run to show
            except GitflowdError as exc:  # one damaged journal must not hide the others
                log.error("site: skipping run %s of %s: %s", run_id, dag_id, exc)
                self.skipped.append(str(exc))
                continue
            logged = self._write_run(run)
            self.cache.save_cells(dag_id, run_id, sitedata.task_cells(run, logged))
            rows.append(RunRow.of(run))
        rows.sort(key=lambda r: r.key)
        self.cache.save_rows(dag_id, rows)
        return rows

    def _write_run(self, run: RunState) -> sitedata.Logged:
        """The run page and its log pages; returns the attempts that have a log page."""
        if not (is_valid_id(run.dag_id) and is_valid_id(run.run_id)):
            log.error("site: refusing unsafe ids %r / %r", run.dag_id, run.run_id)
            return frozenset()
        now = self._clock()
        logged = self._write_logs(run)  # pages before the pages that link to them
        spans = [svg.Span(t, a.number, a.state.value, a.started, a.ended, sitedata.attempt_href(t, a.number, logged),
                          old=a is not task.current)  # None: skipped or cleared since
                 for t, task in run.tasks.items() for a in task.attempts if a.started]
        order = [t for t in run.dag.topological_order() if t in run.tasks] + [t for t in run.tasks if t not in run.dag.tasks]
        marks = [(r["ts"], f"resume {n}") for n, r in enumerate(run.resumes, 1) if r.get("ts")]
        gantt = svg.gantt_layout([(t, run.tasks[t].state.value) for t in order], spans, now, marks)
        active = run.state.value in sitedata.ACTIVE_RUN and not run.cleared
        live = active and not self._runner_gone
        self._page(sitedata.run_url(run.dag_id, run.run_id), "run.html", run=run, rows=sitedata.task_rows(run, order, now, logged, self.secrets),
                   params=sitedata.masked_params(run, self.secrets), gantt=gantt, duration=_run_seconds(run, now, live),
                   refresh=live, runner_gone=active and self._runner_gone)
        return logged

    def _write_logs(self, run: RunState) -> sitedata.Logged:
        """A page per attempt whose log has output. Decided afresh at every render (a log
        written after an earlier render gets its page now); a page written for a log that
        is empty now is left alone."""
        attempts = [(task_id, task, a) for task_id, task in run.tasks.items() for a in task.attempts]
        logged = frozenset((task_id, a.number) for task_id, _, a in attempts
                           if sitelogs.has_output(self.state.log_path(run.dag_id, run.run_id, task_id, a.number)))
        for task_id, task, attempt in attempts:
            if (task_id, attempt.number) in logged:
                self._write_log(run, task_id, task, attempt, logged)
        return logged

    def _write_log(self, run: RunState, task_id: str, task: Any, attempt: Any, logged: sitedata.Logged) -> None:
        source = self.state.log_path(run.dag_id, run.run_id, task_id, attempt.number)
        withheld = sitelogs.log_withheld(run, attempt, self._secret_names)
        text = sitelogs.WITHHELD if withheld else sitelogs.read_log(source, self.secrets)
        raw_url = sitedata.log_url(run.dag_id, run.run_id, task_id, attempt.number, raw=True)
        raw_ready = text.truncated and attempt.ended is not None
        if raw_ready and not _newer(self.root / raw_url, source):
            sitelogs.copy_masked(source, self.root / raw_url, self.secrets)
        self._page(sitedata.log_url(run.dag_id, run.run_id, task_id, attempt.number), "log.html",
                   run=run, task=task, attempt=attempt, text=text, raw_ready=raw_ready, logged=logged,
                   command=sitedata.command_of(run.dag, task_id, attempt, self.secrets),
                   refresh=attempt.ended is None and not self._runner_gone)

    # -- DAG pages --------------------------------------------------------------------

    def _write_grid_page(self, info: DagInfo, rows: list[RunRow], page: int) -> None:
        if sitedata.page_count(rows) == 1:
            return  # the DAG page shows them all
        columns = sitedata.page_rows(rows, page)
        self._page(sitedata.grid_url(info.id, page), "grid_page.html", info=info, page=page,
                   pages=sitedata.page_count(rows), grid=self._grid(info, columns),
                   refresh=any(map(self._live, columns)))

    def _write_dag_page(self, info: DagInfo, rows: list[RunRow]) -> dict[str, Any]:
        """Writes the DAG page; returns the DAG's index entry (cached for the index)."""
        window = sitedata.newest(rows)
        latest = self.cache.cells(info.id, rows[-1].run_id) if rows else {}
        layout = svg.graph_layout(info.dag) if info.dag and info.dag.tasks else None
        running = sum(map(self._live, rows[-sitedata.PAGE_SIZE * 4:]))
        history = self._dag_history(info.id)
        self._page(sitedata.dag_url(info.id), "dag.html", info=info, grid=self._grid(info, window),
                   pages=sitedata.page_count(rows), total=len(rows), layout=layout, latest=latest,
                   latest_run=rows[-1] if rows else None, history=history, removed_by=_removed_by(history),
                   next_run=self._next_run(info), refresh=running > 0)
        return {"recent": [r.to_json() for r in sitedata.newest(rows, sitedata.RECENT)], "total": len(rows),
                "running": running, "snapshot": info.dag.to_dict() if info.dag and not info.entry else None,
                "shown": _shown(info.entry)}

    def _live(self, row: RunRow) -> bool:
        return row.active and not self._runner_gone

    def _grid(self, info: DagInfo, columns: list[RunRow]) -> dict[str, Any]:
        cells = [self.cache.cells(info.id, r.run_id) for r in columns]
        seconds = [r.seconds(self._clock()) for r in columns]
        longest = max(seconds, default=0.0) or 1.0
        heights = [round(4 + 46 * s / longest) for s in seconds]
        return {"columns": list(zip(columns, cells)), "tasks": sitedata.grid_tasks(info.dag, cells), "heights": heights}

    def _dag_history(self, dag_id: str) -> list[Reload]:
        """Read once per version of reloads.jsonl for every DAG: a full render of 1,000 DAGs
        would otherwise parse it 1,000 times (and warn as often about a damaged record)."""
        path = self.state.root / "reloads.jsonl"
        try:
            stat = path.stat()
        except FileNotFoundError:
            return []
        key = (stat.st_size, stat.st_mtime_ns)
        if self._history[0] != key:
            self._history = (key, _histories(read_reloads(self.state.root)))
        return self._history[1].get(dag_id, [])

    def _next_run(self, info: DagInfo) -> datetime | None:
        """The DAG's next tick after now. Kept until it passes: no tick lies between the
        moment it was asked for and it, and croniter was most of an index render (1,000 DAGs)."""
        if not info.dag or not info.dag.schedule or info.dag.paused or info.retired:
            return None
        now = self._clock()
        version: object = info.entry.version.key if info.entry is not None else info.dag
        cached = self._next_runs.get(info.id)
        if cached is not None and cached[0] == version and cached[1] <= now < cached[2]:
            return cached[2]
        try:
            tick = next_tick(info.dag, now)
        except (GitflowdError, ValueError, KeyError) as exc:
            log.warning("site: no next run for %s: %s", info.id, exc)
            return None
        if tick is not None:
            self._next_runs[info.id] = (version, now, tick)
        return tick

    # -- index ------------------------------------------------------------------------

    def _write_index(self, registry: Registry, index: dict[str, dict[str, Any]]) -> None:
        self.cache.save_index(index)
        entries = []
        for dag_id in sorted(set(index) | set(registry.dags)):
            cached = index.get(dag_id) or {"recent": [], "total": 0, "running": 0, "snapshot": None}
            info = self._info(dag_id, registry, Dag.from_dict(cached["snapshot"]) if cached.get("snapshot") else None)
            entries.append(IndexEntry(info, [RunRow.from_json(r) for r in cached["recent"]], cached["total"],
                                      cached["running"], self._next_run(info)))
        entries.sort(key=lambda e: (e.info.retired, e.info.id))
        now, unreadable = self._clock(), self.cache.skipped()
        self._page("index.html", "index.html", entries=entries, registry=registry, now=now, unreadable=unreadable,
                   refresh=any(e.running for e in entries))
        status = {**sitedata.status_json(entries, registry, now), "unreadable_runs": unreadable}
        write_page(self.root / "status.json", json.dumps(status, indent=1, ensure_ascii=False))

    # -- helpers ----------------------------------------------------------------------

    def _page(self, rel: str, template: str, **context: Any) -> None:
        root = "../" * rel.count("/")
        write_page(self.root / rel, self._env.get_template(template).render(root=root, generated=self._clock(), **context))

    def _dag_ids(self, registry: Registry) -> list[str]:
        return sorted((set(registry.dags) | set(self.state.dag_ids())) - {d for d in self.state.dag_ids() if not is_valid_id(d)})

    def _info(self, dag_id: str, registry: Registry, fallback: Dag | None) -> DagInfo:
        entry = registry.dags.get(dag_id)
        return DagInfo(dag_id, entry.load() if entry else fallback, entry)

    def _snapshot(self, dag_id: str, rows: list[RunRow], run: RunState | None) -> Dag | None:
        """The DAG as its newest run knew it (for DAGs the registry does not know)."""
        if run is not None and (not rows or rows[-1].run_id == run.run_id):
            return run.dag
        if rows:
            try:
                return self.state.load_run(dag_id, rows[-1].run_id).dag
            except GitflowdError:
                return None
        return None


def _run_seconds(run: RunState, now: datetime, live: bool) -> float | None:
    """A resumed run's time is its latest execution's, as in Airflow after a clear; the time so
    far while something runs it; none while it waits (cleared, or its runner gone), as `status`
    says, rather than a time that grows at every render."""
    if run.last_started is None:
        return None
    if run.ended is not None:
        return (run.ended - run.last_started).total_seconds()
    return (now - run.last_started).total_seconds() if live else None


def _shown(entry: DagEntry | None) -> list[Any] | None:
    """What a DAG page shows of its registry entry that a reload can change (its version, file,
    retirement, errors): a page whose entry differs from this is stale."""
    if entry is None:
        return None
    return [entry.blob, entry.path, entry.since.sha, entry.retired, [str(p) for p in entry.errors]]


def _stale(registry: Registry, index: dict[str, dict[str, Any]]) -> set[str]:
    """DAGs whose page predates their registry entry (new ones included)."""
    return {d for d, entry in registry.dags.items() if (index.get(d) or {}).get("shown") != _shown(entry)}


def _newer(target: Path, source: Path) -> bool:
    try:
        return target.stat().st_mtime_ns >= source.stat().st_mtime_ns
    except FileNotFoundError:
        return False


def _histories(reloads: list[Reload]) -> dict[str, list[Reload]]:
    """DAG id -> the reloads that changed it, newest first, each with only that DAG's changes
    (registry.dag_history for every DAG in one pass)."""
    by_dag: dict[str, list[Reload]] = {}
    for reload in reversed(reloads):
        for dag_id in dict.fromkeys(c.dag_id for c in reload.changes):
            by_dag.setdefault(dag_id, []).append(replace(reload, changes=tuple(c for c in reload.changes if c.dag_id == dag_id)))
    return by_dag


def _removed_by(history: list[Reload]) -> CommitRef | None:
    """The commit that retired the DAG: its newest removal (history is newest first)."""
    return next((r.commit for r in history if any(c.change is ChangeKind.REMOVED for c in r.changes)), None)
