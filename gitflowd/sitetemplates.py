"""The Jinja environment of the site: where its templates are, and the filters and globals
they use (times in UTC and in a DAG's zone, durations, state glyphs, badges and legends).

Flow: `environment()` -> a Jinja Environment over templates/ (autoescaped; compiled
templates cached on disk) whose filters turn values into text or small escaped Markup;
site.py renders every page through it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from gitflowd import journal, sitedata, sitelogs, svg


def templates_dir() -> Path:
    """templates/ ships inside the package (a symlink to the top-level templates/ in Git)."""
    here = Path(__file__).resolve().parent
    return next((p for p in (here / "templates", here.parent / "templates") if p.is_dir()), here / "templates")


def environment() -> Environment:
    # compiled templates are cached on disk: a `run` process renders once and exits
    env = Environment(loader=FileSystemLoader(templates_dir()), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, bytecode_cache=_bytecode_cache(), finalize=_finalize)
    env.filters.update(dt=_format_time, dur=svg.format_seconds, glyph=lambda s: sitedata.GLYPHS.get(str(s), "?"),
                       exit=lambda code: journal.exit_text(code, "—"), badge=_badge, legend=_legend, local=_local_time, size=_size)
    css = Markup((templates_dir() / "style.css").read_text(encoding="utf-8"))
    env.globals.update(
        css=css, dag_url=sitedata.dag_url, grid_url=sitedata.grid_url, run_url=sitedata.run_url, log_url=sitedata.log_url,
        glyphs=sitedata.GLYPHS, task_legend=sitedata.TASK_LEGEND, run_legend=["queued", "running", "success", "failed", "interrupted"],
    )
    return env


def _bytecode_cache() -> FileSystemBytecodeCache:
    """Jinja checks a cached template against its source only, but options such as `finalize`
    are compiled into it: the file name carries a digest of this module, which sets them."""
    digest = hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:12]
    return FileSystemBytecodeCache(pattern=f"__gitflowd_{digest}_%s.cache")


def _finalize(value: object) -> object:
    """Every value a template prints passes here: text from a TOML file or a journal may hold
    control characters. Markup is ours (filters, macros whose values passed here already)."""
    return sitelogs.visible(value) if type(value) is str else value  # noqa: E721 - Markup is a str subclass


@functools.cache
def _badge(state: str) -> Markup:
    """A state pill: colour, glyph and word (a filter, since macros cost ten times more)."""
    glyph, label = sitedata.GLYPHS.get(state, "?"), state.replace("_", " ")
    return Markup('<span class="badge s-{0}" data-state="{0}">{1} {2}</span>').format(state, glyph, label)


def _legend(states: Iterable[str]) -> Markup:
    items = (Markup('<span><i class="sq s-{0}">{1}</i>{2}</span>').format(s, sitedata.GLYPHS.get(s, "?"), s.replace("_", " "))
             for s in states)
    return Markup('<div class="legend">{}</div>').format(Markup("").join(items))


def _size(count: int) -> str:
    """Bytes as people read them: 812 bytes, 188 KiB, 2.9 MiB."""
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"


def _format_time(value: datetime | str | None) -> str:
    moment = sitedata.parse_time(value)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def _local_time(value: datetime | str | None, zone_name: str | None) -> Markup:
    """The moment in a DAG's own zone, for DAGs outside UTC (ds and the schedule are in it):
    pages say UTC, and a Seoul run of 2026-11-22 would otherwise read 2026-11-21 15:00."""
    moment, zone = sitedata.parse_time(value), _zone(zone_name)
    if moment is None or zone is None:
        return Markup("")
    local = moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    return Markup('<span class="muted local" title="{}">{}</span>').format(zone_name, local)


@functools.cache
def _zone(name: str | None) -> ZoneInfo | None:
    if not name or name in ("UTC", "Etc/UTC"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
