"""When runs are due: cron ticks in a DAG's timezone, catch-up, backfill and data intervals.

Flow: `check_schedule(expr)` validates what the loader reads -> `ticks(dag, after)` walks
cron matches in local wall-clock time (croniter on naive datetimes) and turns each into
the UTC instants it denotes (zoneinfo), oldest first -> `next_tick`, `prev_tick`,
`due_ticks`, `catchup_plan` and `backfill_plan` are questions asked of that walk, bounded
by the DAG's `start_date` / `end_date`. Nothing here reads the clock: every instant is
passed in, so tests and the daemon's `loop(now=...)` control time.

DST rules (decided here, documented in docs/daemon.md):
- A wall time skipped by a spring-forward gap fires once, shifted forward by the gap
  (02:30 on a day that jumps 02:00 -> 03:00 fires at 03:30), unless another tick already
  falls on that instant.
- A wall time repeated by a fall-back overlap fires once, at its first occurrence, except
  when the hour field covers every hour (`*`, `*/1`, `0-23`: hourly-or-faster schedules),
  which fire on both, so "every hour" keeps meaning every elapsed hour (as Airflow).

All instants returned are timezone-aware UTC datetimes. Naive datetimes given to this
module (and naive `start_date` / `end_date`) are read in the DAG's timezone.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gitflowd.dag import Dag
from gitflowd.errors import UsageError

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",  # Airflow's
    "@yearly": "0 0 1 1 *",
    "@midnight": "0 0 * * *",  # cron's aliases
    "@annually": "0 0 1 1 *",
}

# Wall times near an instant can denote instants up to this far away (DST and zone
# changes); candidate instants are held back until no later wall time can precede them.
_SLACK = timedelta(hours=3)
_PROBE = datetime(2000, 1, 1)


def check_schedule(expr: str) -> str | None:
    """None when `expr` is a usable schedule, else a one-line message saying what is wrong."""
    text = expr.strip()
    if text.startswith("@"):
        if text in PRESETS:
            return None
        import difflib

        close = difflib.get_close_matches(text, PRESETS, n=1)
        if close:
            return f"unknown schedule preset {text!r} (did you mean {close[0]!r}?)"
        return f"unknown schedule preset {text!r}; use one of {', '.join(list(PRESETS)[:6])} or a 5-field cron expression"
    fields = text.split()
    if len(fields) != 5:
        return f"cron expression {text!r} has {len(fields)} fields; expected 5 (minute hour day-of-month month day-of-week)"
    if any(field.upper().startswith("H") for field in fields):
        return f"cron expression {text!r}: hashed values (H, as in Jenkins) are not supported; write a fixed minute or hour"
    from croniter import croniter  # here: a manual run never needs cron (30 ms of imports)
    from croniter.croniter import CroniterError

    try:
        croniter(text, _PROBE).get_next(datetime)
    except CroniterError as exc:
        reason = str(exc).split("\n")[0]
        if "find next date" in reason:
            return f"cron expression {text!r} never fires"
        return f"invalid cron expression {text!r}: {reason}"
    return None


EARLIEST, LATEST = datetime(1000, 1, 2), datetime(9998, 12, 31, 23, 59, 59)  # UTC, naive


def parse_when(text: str | None, dag: Dag, now: datetime | None = None, flag: str = "--date") -> datetime:
    """A command-line time: None/'now' -> now; a date -> its midnight in the DAG's timezone;
    an ISO datetime without offset -> in the DAG's timezone."""
    if text is None or text.strip().lower() == "now":
        return (now or datetime.now(timezone.utc)).replace(microsecond=0)
    tz = zone(dag)
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            moment = datetime(day.year, day.month, day.day, tzinfo=tz)
        else:
            moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"bad {flag} {text!r}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=tz)
    # Four-digit years keep run ids sortable, and a day of slack keeps the ticks around the
    # date (and UTC conversions) inside what datetime can hold.
    try:
        in_range = EARLIEST <= moment.astimezone(timezone.utc).replace(tzinfo=None) <= LATEST
    except OverflowError:  # its UTC time is past year 9999 or before year 1
        in_range = False
    if not in_range:
        raise UsageError(f"bad {flag} {text!r}: out of range (years {EARLIEST.year} to {LATEST.year}, in UTC)")
    return moment


def parse_logical_date(text: str | None, dag: Dag, now: datetime | None = None) -> datetime:
    """A manual run's `--date` (default now), refused before the DAG's `start_date`: no runs
    before it, as Airflow's trigger refuses one ("should be >= start_date")."""
    logical = parse_when(text, dag, now)
    if dag.start_date is not None and logical < (start := aware(dag.start_date, zone(dag))):
        given = f"--date {text}" if text is not None else f"now ({logical.astimezone(zone(dag)).isoformat()})"
        raise UsageError(f"{given} is before the start_date of DAG {dag.id!r} "
                         f"({start.astimezone(zone(dag)).isoformat()}): a run's logical date must be on or after it")
    return logical


def cron_of(expr: str) -> str:
    """The 5-field cron expression of a schedule (presets expanded)."""
    text = expr.strip()
    return PRESETS.get(text, text)


def zone(dag: Dag) -> ZoneInfo:
    """The DAG's timezone (UTC when unset)."""
    try:
        return ZoneInfo(dag.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"DAG {dag.id!r}: unknown timezone {dag.timezone!r}") from exc


def aware(value: datetime | date, tz: ZoneInfo) -> datetime:
    """`value` as an aware UTC datetime; naive values and dates are read in `tz`."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(timezone.utc)


# -- the walk over cron matches ----------------------------------------------------------


def _instants(wall: datetime, tz: ZoneInfo, both_folds: bool) -> list[datetime]:
    """The UTC instants a local wall time denotes (see the DST rules above)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)
    if both_folds:
        # only in an overlap is the second reading of a wall time later than the first
        second = wall.replace(tzinfo=tz, fold=1).astimezone(timezone.utc)
        if second > first:
            return [first, second]
    return [first]


def _walk(expr: str, tz: ZoneInfo, anchor: datetime, backwards: bool) -> Iterator[datetime]:
    """Every tick instant strictly after (or before) `anchor`, in order, without repeats."""
    cron = cron_of(expr)
    sign = -1 if backwards else 1
    wall_anchor = anchor.astimezone(tz).replace(tzinfo=None)
    from croniter import croniter

    matches = croniter(cron, wall_anchor - sign * _SLACK)
    # every hour, however written (`*`, `*/1`, `0-23`): croniter expands such a field to ['*']
    both_folds = matches.expanded[1] == ["*"]
    step = matches.get_prev if backwards else matches.get_next
    heap: list[tuple[float, datetime]] = []
    last: datetime | None = None
    while True:
        instants = _instants(step(datetime), tz, both_folds)
        for instant in instants:
            heapq.heappush(heap, (sign * instant.timestamp(), instant))
        # later wall times map to instants no earlier than this (offsets vary < _SLACK)
        horizon = sign * (instants[0] - sign * _SLACK).timestamp()
        while heap and heap[0][0] < horizon:
            instant = heapq.heappop(heap)[1]
            if sign * (instant - anchor).total_seconds() > 0 and instant != last:
                last = instant
                yield instant


def ticks(dag: Dag, after: datetime) -> Iterator[datetime]:
    """Tick instants strictly after `after`, oldest first, within start_date and end_date."""
    if not dag.schedule:
        return
    tz = zone(dag)
    start = aware(dag.start_date, tz) if dag.start_date else None
    end = aware(dag.end_date, tz) if dag.end_date else None
    anchor = aware(after, tz)
    if start is not None and anchor < start:
        anchor = start - timedelta(microseconds=1)
    for instant in _walk(dag.schedule, tz, anchor, backwards=False):
        if end is not None and instant > end:
            return
        yield instant


def next_tick(dag: Dag, after: datetime) -> datetime | None:
    """The first tick strictly after `after`; None for manual-only DAGs or past end_date."""
    return next(ticks(dag, after), None)


def prev_tick(dag: Dag, before: datetime) -> datetime | None:
    """The cron tick strictly before `before`, ignoring start_date (None when manual-only)."""
    if not dag.schedule:
        return None
    tz = zone(dag)
    return next(_walk(dag.schedule, tz, aware(before, tz), backwards=True), None)


# -- questions the daemon and backfill ask -----------------------------------------------


@dataclass(frozen=True)
class Interval:
    """The data interval (start, end] of a run; `end` is its logical date."""

    start: datetime
    end: datetime


def data_interval(dag: Dag, logical_date: datetime) -> Interval:
    """(previous tick, tick] for a scheduled DAG; (t, t] for a manual-only one."""
    tick = aware(logical_date, zone(dag))
    previous = prev_tick(dag, tick)
    return Interval(previous if previous is not None else tick, tick)


def due_ticks(dag: Dag, after: datetime | None, until: datetime, limit: int | None = None) -> list[datetime]:
    """Every tick in (after, until], oldest first (the first `limit`); `after=None` means since start_date."""
    tz, count = zone(dag), limit
    limit = aware(until, tz)
    begin = aware(after, tz) if after is not None else _before_everything(dag, limit)
    result: list[datetime] = []
    for instant in ticks(dag, begin):
        if instant > limit or (count is not None and len(result) >= count):
            break
        result.append(instant)
    return result


def _before_everything(dag: Dag, until: datetime) -> datetime:
    """An instant before every tick worth considering for a DAG with no runs yet."""
    if dag.start_date is not None:
        return aware(dag.start_date, zone(dag)) - timedelta(microseconds=1)
    # no start_date: there is no history to catch up; only the latest tick matters
    latest = latest_tick(dag, until)
    return latest - timedelta(microseconds=1) if latest is not None else until


def latest_tick(dag: Dag, now: datetime) -> datetime | None:
    """The newest tick at or before `now`, within start_date and end_date (None: none yet)."""
    tz = zone(dag)
    limit = aware(now, tz)
    if dag.end_date is not None:
        limit = min(limit, aware(dag.end_date, tz))
    tick = prev_tick(dag, limit + timedelta(microseconds=1))
    if tick is None or (dag.start_date is not None and tick < aware(dag.start_date, tz)):
        return None
    return tick


def catchup_plan(dag: Dag, last_scheduled: datetime | None, now: datetime, limit: int | None = None) -> list[datetime]:
    """Ticks to run now, oldest first: every missed one with catchup, else only the latest.

    `last_scheduled` is the logical date of the newest scheduled run that exists (None
    when there is none); ticks up to and including it are never planned again. Without
    catchup the latest tick is found directly, however long the daemon was away; with it,
    `limit` stops the list after that many ticks (the rest are planned next time).
    """
    if dag.catchup and dag.start_date is not None:
        return due_ticks(dag, last_scheduled, now, limit)
    latest = latest_tick(dag, now) if dag.schedule else None
    if latest is None or (last_scheduled is not None and latest <= aware(last_scheduled, zone(dag))):
        return []
    return [latest]


def backfill_plan(dag: Dag, start: datetime | date, end: datetime | date) -> list[datetime]:
    """Every tick in [start, end] (naive values in the DAG's timezone), oldest first."""
    tz = zone(dag)
    first, last = aware(start, tz), aware(end, tz)
    if last < first:
        raise ValueError(f"backfill of DAG {dag.id!r}: end {end} is before start {start}")
    return due_ticks(dag, first - timedelta(microseconds=1), last)


def free_slots(dag: Dag, active_runs: int) -> int:
    """How many more runs of `dag` may start while `active_runs` are queued or running."""
    return max(0, max(dag.max_active_runs, 1) - active_runs)


def take_startable(dag: Dag, planned: list[datetime], active_runs: int) -> list[datetime]:
    """The oldest planned ticks that `max_active_runs` lets start now."""
    return planned[: free_slots(dag, active_runs)]
