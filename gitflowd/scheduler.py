"""Which scheduled runs are due now: the daemon's memory of each DAG's newest tick.

Flow: the daemon asks `due(dags, active, now)` on every loop pass -> for each DAG whose
first tick after its newest scheduled run has come (cached per DAG version and run, so
an idle pass does no cron arithmetic), `schedule.catchup_plan` lists the missed ticks
(all of them with catchup, else only the latest) -> ticks are handed out oldest first
while the DAG has fewer than `max_active_runs` runs active, skipping ticks that already
have a run (e.g. from a backfill) -> the daemon creates the runs. `next_due(now)` is when
the loop must wake next for a tick. Deciding only: nothing here creates or runs anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from gitflowd import schedule
from gitflowd.dag import Dag
from gitflowd.statedir import RunHead, StateDir

log = logging.getLogger(__name__)


class Scheduler:
    """Due ticks per DAG; `dags` maps id -> (Dag, version key such as its blob sha)."""

    def __init__(self, state: StateDir):
        self.state = state
        self.last_tick: dict[str, datetime | None] = {}
        self._cache: dict[str, tuple[tuple[str, datetime], datetime | None]] = {}
        self._reported: set[tuple[str, str]] = set()

    def due(self, dags: Mapping[str, tuple[Dag, str]], active: Callable[[str], int], now: datetime) -> list[tuple[Dag, datetime]]:
        """Runs to create now, oldest first per DAG; each is remembered as handed out."""
        result = []
        for dag_id, (dag, version) in dags.items():
            upcoming = self._upcoming(dag, version, now)
            if upcoming is not None and upcoming <= now:
                result += [(dag, tick) for tick in self._due_ticks(dag, dag.max_active_runs - active(dag_id), now)]
        return result

    def _due_ticks(self, dag: Dag, slots: int, now: datetime) -> list[datetime]:
        """Up to `slots` due ticks that have no run yet; `last_tick` moves past every tick seen."""
        chosen: list[datetime] = []
        existing: set[datetime] | None = None
        while len(chosen) < slots:
            try:  # only as many ticks as can start: a long catch-up is planned a slice at a time
                planned = schedule.catchup_plan(dag, self.last(dag.id), now, limit=slots - len(chosen))
            except ValueError as exc:  # e.g. a timezone this system does not know: say it once
                self._report(dag.id, str(exc))
                return chosen
            if not planned:
                break
            existing = existing if existing is not None else {run.logical_date for run in self._runs(dag.id)}
            for tick in planned:
                self.last_tick[dag.id] = tick
                if tick not in existing:
                    chosen.append(tick)
        return chosen

    def next_due(self, dags: Mapping[str, tuple[Dag, str]], now: datetime) -> datetime | None:
        """The soonest tick after `now` of any DAG (ticks already due wait for a run to end)."""
        ticks = []
        for dag_id, (dag, version) in dags.items():
            upcoming = self._upcoming(dag, version, now)
            if upcoming is not None and upcoming <= now and self.last(dag_id) is None:
                upcoming = _quietly(lambda: schedule.next_tick(dag, now))
            if upcoming is not None and upcoming > now:
                ticks.append(upcoming)
        return min(ticks, default=None)

    def forget(self, dag_id: str) -> None:
        """Ticks handed out but not run (Git could not be read) are due again: re-read the newest run."""
        self.last_tick.pop(dag_id, None)

    def last(self, dag_id: str) -> datetime | None:
        """The logical date of the DAG's newest scheduled run (read from the state once)."""
        if dag_id not in self.last_tick:
            ticks = [run.logical_date for run in self._runs(dag_id) if run.kind == "scheduled"]
            self.last_tick[dag_id] = max(ticks, default=None)
        return self.last_tick[dag_id]

    def _upcoming(self, dag: Dag, version: str, now: datetime) -> datetime | None:
        """The first tick after the newest scheduled run; `now` for a DAG never scheduled
        (catchup_plan decides); None when no tick will ever come."""
        if not dag.schedule or dag.paused:  # unpaused, catch-up picks up from the newest scheduled run
            return None
        last = self.last(dag.id)
        if last is None:
            return now
        key = (version, last)
        cached = self._cache.get(dag.id)
        if cached is None or cached[0] != key:
            cached = key, _quietly(lambda: schedule.next_tick(dag, last))
            self._cache[dag.id] = cached
        return cached[1]

    def _runs(self, dag_id: str) -> list[RunHead]:
        """The DAG's runs, from their first records; a journal whose first record cannot be
        read is said once (its tick looks unrun)."""
        runs = self.state.run_heads(dag_id)
        for path, error in self.state.broken:
            if (path, error) not in self._reported:
                self._reported.add((path, error))
                log.error("run journal %s cannot be read; its tick counts as not run: %s", path, error)
        return runs

    def _report(self, dag_id: str, message: str) -> None:
        if (dag_id, message) not in self._reported:
            self._reported.add((dag_id, message))
            log.error("DAG %s is not scheduled: %s", dag_id, message)


def _quietly(compute: Callable[[], datetime | None]) -> datetime | None:
    try:
        return compute()
    except ValueError:  # reported by due()
        return None
