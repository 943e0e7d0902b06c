"""The values the site's pages are made of, computed from state; no markup here.

Flow: a `RunState` becomes a `RunRow` (one light line per run, cached on disk so that a
DAG page never replays old journals) plus its task states; rows of one DAG are kept
oldest first and cut into fixed grid pages; `DagInfo` joins a registry entry with what
the runs know; `read_log` turns a log file into escaped-later, secret-masked text, tail
first when large, each line redrawn with carriage returns (a progress bar) at its last state
(`has_output`: an empty or missing log gets no page; `log_withheld`: an unfinished attempt's
log whose secrets are unknown is not shown). URLs are built here too, always relative to the site root.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gitflowd import secrets as secrets_module
from gitflowd.dag import Dag
from gitflowd.registry import DagEntry
from gitflowd.state import AttemptState, RunState, RunStatus, TaskStatus

PAGE_SIZE = 50  # runs per grid page; the DAG page shows the newest PAGE_SIZE
RECENT = 20  # squares per DAG on the index
LOG_TAIL = 256 * 1024  # bytes of a large log shown inline (the rest is linked)
MASK = secrets_module.MASK.decode()  # as on disk and in `gitflowd logs`
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# C0 controls other than tab, newline and carriage return, and DEL: invalid in HTML (a NUL
# made grep call the page binary); shown as U+FFFD, as undecodable bytes are.
_CONTROLS = dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F], "\ufffd")
_HAS_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

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


@dataclass(frozen=True)
class LogText:
    text: str
    size: int  # bytes of the whole log
    truncated: bool  # True: `text` is only the tail
    missing: bool = False
    withheld: bool = False  # not shown: it may hold secrets this render cannot mask
    shown: int = 0  # bytes of the log that `text` shows


WITHHELD = LogText("", 0, False, withheld=True)


def log_withheld(run: RunState, attempt: AttemptState, known: Collection[str]) -> bool:
    """Whether an attempt's log must not be published: the engine masks a log only when its
    attempt ends (its task_finished record is written after), so the log of an attempt still
    running, or cut short by a runner that died, holds its secrets in clear; a render that
    lacks any of the DAG's secrets cannot mask them."""
    return attempt.ended is None and not set(run.dag.secrets) <= set(known)


def masked_params(run: RunState, secrets: Sequence[str]) -> list[tuple[str, str, bool]]:
    """The params a run's tasks got (the DAG's defaults under its --param overrides, as the
    templates see them) as (key, value, overridden), secrets masked: a param can hold one,
    as a command can. Values other than text are shown as JSON, as --param takes them."""
    merged = {**run.dag.params, **run.params}
    return [(key, mask_secrets(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), secrets),
             key in run.params) for key, value in merged.items()]


def _maskable(secrets: Iterable[str]) -> list[str]:
    """The engine's rule: values shorter than MIN_MASKED_LENGTH would mask ordinary text."""
    return [s for s in secrets if len(s) >= secrets_module.MIN_MASKED_LENGTH]


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Every whole secret value in `text` as MASK, the longest first."""
    for value in sorted(_maskable(secrets), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def visible(text: str) -> str:
    """Text without the control characters HTML cannot hold (TOML strings may carry them:
    "\u0000"), each shown as U+FFFD, as in logs."""
    return text.translate(_CONTROLS) if _HAS_CONTROL.search(text) else text


def clean_text(raw: bytes, secrets: Iterable[str]) -> str:
    """Log bytes to display text: UTF-8 (lossy), ANSI colour codes dropped, other control
    characters shown as U+FFFD, secrets masked."""
    return mask_secrets(_ANSI.sub("", raw.decode("utf-8", errors="replace")).translate(_CONTROLS), secrets)


def as_terminal_shows(text: str) -> str:
    """Each line as a terminal leaves it after carriage returns: its last rewrite. A progress
    bar (tqdm, curl, pip) redraws one line thousands of times; a browser breaks lines at a
    lone CR and would show every redraw. Line ends (CRLF too) are kept."""
    if "\r" not in text:
        return text
    return "\n".join(_last_rewrite(line) for line in text.split("\n"))


def _last_rewrite(line: str) -> str:
    body = line.rstrip("\r")
    return body.rsplit("\r", 1)[-1] + line[len(body):]


def has_output(path: Path) -> bool:
    """Whether a log has anything to show: an empty or missing one gets no page (a run of
    10,000 quiet tasks would otherwise spend most of its render on them)."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def read_log(path: Path, secrets: Sequence[str], tail: int = LOG_TAIL) -> LogText:
    """A log for its page: whole when small, else its last `tail` bytes from a line start, or
    from within a line that fills most of them (cut, marked with "…": dropping it would leave
    next to nothing; the cut's first characters go too, as they may be the end of a secret)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return LogText("", 0, False, missing=True)
    try:
        size = os.fstat(fd).st_size
        raw = os.pread(fd, tail, max(0, size - tail))  # one call: 20,000 logs in a full render
    finally:
        os.close(fd)
    truncated, partial = size > tail, False
    if truncated:
        cut = raw.find(b"\n")
        if 0 <= cut < len(raw) // 2:
            raw = raw[cut + 1:]
        else:
            partial = True  # one line fills most of the tail: its end, rather than next to nothing
    text = as_terminal_shows(clean_text(raw, secrets))
    if partial:  # the cut may fall inside a secret, whose piece no mask would match: drop what it can be
        text = f"…{text[max((len(v.encode()) for v in _maskable(secrets)), default=1) - 1:]}"
    return LogText(text, size, truncated, shown=len(raw))


def copy_masked(source: Path, target: Path, secrets: Sequence[str], chunk: int = 1 << 20) -> None:
    """The full log, masked, for the raw link; memory stays bounded even for a log of one
    gigabyte-long line (chunks end at a newline when there is one, so secrets stay whole).
    It starts with a byte order mark: a browser guesses a text file's encoding from its first
    bytes, and a log that starts in ASCII would show its later UTF-8 as windows-1252."""
    temp = target.with_name(f".{target.name}.tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(temp, "w", encoding="utf-8-sig") as dst:
        carry = b""
        while block := src.read(chunk):
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) < 4 * chunk:  # no line end yet: keep the line whole, up to a bound
                carry = data
                continue
            cut = cut or len(data)
            dst.write(clean_text(data[:cut], secrets))
            carry = data[cut:]
        dst.write(clean_text(carry, secrets))
    temp.replace(target)


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
