"""The values the site's pages are made of, computed from state; no markup here.

Flow: a `RunState` becomes a `RunRow` (one light line per run, cached on disk so that a
DAG page never replays old journals) plus its task states; rows of one DAG are kept
oldest first and cut into fixed grid pages; `DagInfo` joins a registry entry with what
the runs know; commands and params are shown masked (sitelogs.py reads and masks logs).
URLs are built here too, always relative to the site root.
"""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from gitflowd.dag import Dag
from gitflowd.registry import DagEntry
from gitflowd.sitelogs import mask_secrets
from gitflowd.state import AttemptState, RunState, RunStatus, TaskStatus

PAGE_SIZE = 50  # runs per grid page; the DAG page shows the newest PAGE_SIZE
RECENT = 20  # squares per DAG on the index

# Glyphs so that no state is told by colour alone (DESIGN.md section 5).
GLYPHS = {
    "success": "✓", "failed": "✕", "running": "▸", "queued": "○", "pending": "○",
    "upstream_failed": "↑", "skipped": "–", "up_for_retry": "↻", "interrupted": "!",
    "timeout": "◷", "none": " ",
}
TASK_LEGEND = [s.value for s in TaskStatus]
ACTIVE_RUN = {RunStatus.QUEUED.value, RunStatus.RUNNING.value}


@functools.lru_cache(maxsize=65536)
def q(part: str) -> str:
    return quote(part, safe="")


def dag_url(dag_id: str) -> str:
    return f"dags/{q(dag_id)}/index.html"


def grid_url(dag_id: str, page: int) -> str:
    return f"dags/{q(dag_id)}/runs-{page}.html"


def run_url(dag_id: str, run_id: str) -> str:
    return f"dags/{q(dag_id)}/runs/{q(run_id)}/index.html"


def log_url(dag_id: str, run_id: str, task_id: str, attempt: int, raw: bool = False) -> str:
    return f"dags/{q(dag_id)}/runs/{q(run_id)}/{q(task_id)}.{attempt}.{'log.txt' if raw else 'html'}"


def iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def parse_time(value: str | datetime | None) -> datetime | None:
    if isinstance(value, datetime) or value is None:
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True)
class RunRow:
    """One run in a line: enough for the index squares, grid headers and status.json."""

    run_id: str
    kind: str
    state: str
    logical_date: str
    started: str | None  # the first execution's start, as in `status --json`
    last_started: str | None  # the latest execution's (after a resume): what its duration counts
    ended: str | None
    commit: str
    sort: float  # logical date as a UNIX time; ties broken by run id
    cleared: bool = False  # queued by `clear`: it waits for a `gitflowd resume`, nothing runs it

    @property
    def key(self) -> tuple[float, str]:
        return (self.sort, self.run_id)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_RUN and not self.cleared

    def seconds(self, now: datetime) -> float:
        """How long its latest execution ran (so far, when active)."""
        start = parse_time(self.last_started)
        end = parse_time(self.ended) or (now if self.active else None)
        return max((end - start).total_seconds(), 0.0) if start and end else 0.0

    @classmethod
    def of(cls, run: RunState) -> RunRow:
        return cls(run.run_id, run.kind, run.state.value, iso(run.logical_date) or "", iso(run.started),
                   iso(run.last_started), iso(run.ended), run.commit, run.logical_date.timestamp(), run.cleared)

    @classmethod
    def from_json(cls, data: list[Any]) -> RunRow:
        return cls(*data)

    def to_json(self) -> list[Any]:
        """Field values in order: compact, and fast for 1,000s of rows (asdict deep-copies)."""
        return [self.run_id, self.kind, self.state, self.logical_date, self.started, self.last_started, self.ended,
                self.commit, self.sort, self.cleared]

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


Logged = frozenset[tuple[str, int]]  # (task, attempt) of the attempts whose log has a page


def task_cells(run: RunState, logged: Logged) -> dict[str, tuple[str, int]]:
    """task -> (state, number of the attempt its state came from when that attempt has a log
    page, else 0: the square then links to the run page; a task cleared or skipped since its
    last attempt links there too, not to a log of another execution). Saved at every render of
    the run, so a log that grows after an empty render gets its link at the next one."""
    return {t: (s.state.value, s.current.number if s.current and (t, s.current.number) in logged else 0)
            for t, s in run.tasks.items()}


def page_count(rows: Sequence[RunRow]) -> int:
    return max(1, -(-len(rows) // PAGE_SIZE))


def page_of(position: int) -> int:
    """Grid pages count from the oldest run, so that new runs only touch the last page."""
    return position // PAGE_SIZE + 1


def page_rows(rows: Sequence[RunRow], page: int) -> list[RunRow]:
    """The runs of grid page `page` (1-based, oldest page first), newest first."""
    return list(reversed(rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]))


def newest(rows: Sequence[RunRow], count: int = PAGE_SIZE) -> list[RunRow]:
    return list(reversed(rows[-count:]))


@dataclass(frozen=True)
class DagInfo:
    """A DAG as the pages show it: its registry entry if any, else what its newest run knew."""

    id: str
    dag: Dag | None
    entry: DagEntry | None = None

    @property
    def retired(self) -> bool:
        return bool(self.entry and self.entry.retired)

    @property
    def errors(self) -> tuple:
        return self.entry.errors if self.entry else ()


def grid_tasks(dag: Dag | None, cells: Iterable[dict[str, tuple[str, int]]]) -> list[str]:
    """Rows of the grid: the current tasks in graph order, then tasks only old runs had."""
    order = dag.topological_order() if dag else []
    seen = set(order)
    for run_cells in cells:
        for task in run_cells:
            if task not in seen:
                seen.add(task)
                order.append(task)
    return order


@dataclass(frozen=True)
class TaskRow:
    """One line of a run's task table, computed once so the template only prints."""

    id: str
    state: str
    reason: str
    attempts: list[tuple[int, str, str]]  # (number, state, href relative to the run page; "" if no output)
    started: datetime | None
    ended: datetime | None
    seconds: float | None
    running: bool  # `seconds` is the time so far
    exit_code: int | None
    command: str
    rendered: bool  # `command` is what its current attempt ran, not the TOML's template


def task_rows(run: RunState, order: Sequence[str], now: datetime, logged: Logged, secrets: Sequence[str]) -> list[TaskRow]:
    rows = []
    for task_id in order:
        task = run.tasks[task_id]
        current = task.current  # None when cleared, skipped or reset: its attempts were another execution
        running = bool(current and current.started and not current.ended)
        seconds = (now - current.started).total_seconds() if running and current and current.started else (current.duration if current else None)
        links = [(a.number, a.state.value, attempt_href(task_id, a.number, logged)) for a in task.attempts]
        command, rendered = command_of(run.dag, task_id, current, secrets)
        rows.append(TaskRow(task_id, task.state.value, task.reason, links, task.started, task.ended, seconds, running,
                            task.exit_code, command, rendered))
    return rows


def attempt_href(task_id: str, attempt: int, logged: Logged) -> str:
    """The attempt's log page relative to its run page; "" when it has none (no output)."""
    return f"{q(task_id)}.{attempt}.html" if (task_id, attempt) in logged else ""


def command_of(dag: Dag, task_id: str, attempt: AttemptState | None, secrets: Sequence[str]) -> tuple[str, bool]:
    """What an attempt ran, templates rendered and secrets masked, and True; or, for a task
    not started yet (or a journal from before commands were recorded), the TOML's template
    and False."""
    if attempt is not None and attempt.command is not None:
        return mask_secrets(attempt.command, secrets), True
    task = dag.tasks.get(task_id)
    if task is None:
        return "", False
    if task.call is not None:
        return f"call {task.call}", True  # not templated: what it runs is what the TOML says
    return (task.cmd if task.cmd is not None else shlex.join(task.argv or ())), False


def masked_params(run: RunState, secrets: Sequence[str]) -> list[tuple[str, str, bool]]:
    """The params a run's tasks got (the DAG's defaults under its --param overrides, as the
    templates see them) as (key, value, overridden), secrets masked: a param can hold one,
    as a command can. Values other than text are shown as JSON, as --param takes them."""
    merged = {**run.dag.params, **run.params}
    return [(key, mask_secrets(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), secrets),
             key in run.params) for key, value in merged.items()]


@dataclass(frozen=True)
class IndexEntry:
    """One DAG's line on the index and in status.json."""

    info: DagInfo
    recent: list[RunRow] = field(default_factory=list)  # newest first
    total: int = 0
    running: int = 0
    next_run: datetime | None = None


def status_json(entries: Sequence[IndexEntry], registry: Any, generated: datetime) -> dict[str, Any]:
    """status.json: the index for machines."""
    return {
        "v": 1,
        "generated": iso(generated),
        "attempted_commit": asdict(registry.attempted) if registry.attempted else None,
        "errors": [asdict(p) for p in registry.errors],
        "dags": [_dag_status(e) for e in entries],
    }


def _dag_status(entry: IndexEntry) -> dict[str, Any]:
    dag, reg = entry.info.dag, entry.info.entry
    return {
        "id": entry.info.id,
        "url": dag_url(entry.info.id),
        "description": dag.description if dag else "",
        "schedule": dag.schedule if dag else None,
        "timezone": dag.timezone if dag else None,
        "paused": bool(dag and dag.paused),
        "path": reg.path if reg else (dag.path if dag else ""),
        "retired": entry.info.retired,
        "commit": asdict(reg.commit) if reg else None,
        "errors": [asdict(p) for p in entry.info.errors],
        "next_run": iso(entry.next_run),
        "runs_total": entry.total,
        "running": entry.running,
        "runs": [{**{k: v for k, v in r.to_dict().items() if k != "sort"}, "url": run_url(entry.info.id, r.run_id)}
                 for r in entry.recent],
    }
