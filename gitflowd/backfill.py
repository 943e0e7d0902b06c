"""Backfill plans: which ticks of [start, end] get a new run, a resume, or are left alone.

Flow: `check_range` refuses an empty request (end before start, a start in the future, a DAG
without a schedule); `plan_backfill(dag, runs, start, end, reprocess, now=...)` asks schedule.py
for every tick of the range up to now (oldest first, start_date / end_date respected; later
ticks are the schedule's) and decides per tick:
- no run has that logical date: `create` a backfill run;
- a run is queued or running: `skip` if something runs it (the daemon's pool; anyone
  holding the state lock, for a dry run), else `resume` it: it was left unfinished, e.g. by a
  backfill stopped with Ctrl-C, and skipping it would leave it for ever;
- `--reprocess none` (default): `skip` every tick that has a run;
- `--reprocess failed`: `resume` runs that failed or were interrupted, `skip` the others;
- `--reprocess all`: `rerun` every finished run (all its tasks cleared, then resumed).
The caller (the backfill command in the foreground, or the daemon for an inbox request)
carries the steps out through the run pool, `max_active_runs` at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from gitflowd.dag import Dag
from gitflowd.errors import UsageError
from gitflowd.state import RunState, RunStatus

REPROCESS = ("none", "failed", "all")


class Action(str, Enum):
    CREATE = "create"
    RESUME = "resume"
    RERUN = "rerun"
    SKIP = "skip"


@dataclass(frozen=True)
class Step:
    tick: datetime
    action: Action
    run_id: str | None = None  # the existing run (resume, rerun, skip)
    reason: str = ""


def latest_by_tick(runs: Iterable[RunState]) -> dict[datetime, RunState]:
    """The newest run of each logical date (runs given newest first, as StateDir.runs does)."""
    result: dict[datetime, RunState] = {}
    for run in runs:
        result.setdefault(run.logical_date, run)
    return result


def check_range(dag: Dag, start: datetime, end: datetime, start_text: str, end_text: str, now: datetime) -> None:
    """Refuse a range that ends before it starts, lies in the future, or a DAG without ticks, the
    same in the foreground and in the daemon (the daemon would otherwise answer "no ticks in range", exit 0)."""
    if end < start:
        raise UsageError(f"--end {end_text} is before --start {start_text}")
    if not dag.schedule:
        raise UsageError(f"DAG {dag.id!r} has no schedule, so it has no ticks to backfill (use `gitflowd run {dag.id} --date ...`)")
    if start > now:  # as Airflow refuses: the schedule runs those ticks when they come
        raise UsageError(f"--start {start_text} is in the future: a backfill runs ticks that have come; the schedule runs the others")


def future_ticks(dag: Dag, end: datetime, now: datetime) -> bool:
    """Whether the range's end leaves out ticks after `now` (plan_backfill does not plan them)."""
    from gitflowd import schedule

    upcoming = schedule.next_tick(dag, now) if end > now else None
    return upcoming is not None and upcoming <= end


def plan_backfill(dag: Dag, runs: Iterable[RunState], start: date | datetime, end: date | datetime, reprocess: str = "none",
                  in_progress: Callable[[RunState], bool] = lambda _run: True, now: datetime | None = None) -> list[Step]:
    """One step per tick in [start, end] up to `now`, oldest first; `in_progress(run)` says whether
    a queued or running run is being run by someone (else it is resumed).

    A tick after `now` is left to the schedule: a backfill run of it would run before its data
    interval has ended, and the scheduler skips ticks that have a run, so it would never be scheduled."""
    from gitflowd import schedule  # here: the CLI imports this module for REPROCESS and starts without croniter

    if reprocess not in REPROCESS:
        raise ValueError(f"--reprocess must be one of {', '.join(REPROCESS)}, not {reprocess!r}")
    existing = latest_by_tick(runs)
    ticks = [t for t in schedule.backfill_plan(dag, start, end) if now is None or t <= now]
    return [_step(tick, existing.get(tick), reprocess, in_progress) for tick in ticks]


def _step(tick: datetime, run: RunState | None, reprocess: str, in_progress: Callable[[RunState], bool]) -> Step:
    if run is None:
        return Step(tick, Action.CREATE)
    state = run.state
    if state in (RunStatus.QUEUED, RunStatus.RUNNING):
        if in_progress(run):
            return Step(tick, Action.SKIP, run.run_id, f"{state.value} (in progress)")
        return Step(tick, Action.RESUME, run.run_id, f"{state.value} (left unfinished)")
    if reprocess == "all":
        return Step(tick, Action.RERUN, run.run_id, f"was {state.value}")
    if reprocess == "failed" and state in (RunStatus.FAILED, RunStatus.INTERRUPTED):
        return Step(tick, Action.RESUME, run.run_id, state.value)
    return Step(tick, Action.SKIP, run.run_id, state.value)


def describe(steps: list[Step]) -> str:
    """'3 to create, 1 to resume, 2 left alone'."""
    counts = {action: sum(1 for s in steps if s.action is action) for action in Action}
    words = {Action.CREATE: "to create", Action.RESUME: "to resume", Action.RERUN: "to re-run", Action.SKIP: "left alone"}
    return ", ".join(f"{counts[a]} {words[a]}" for a in Action if counts[a]) or "no ticks in range"
