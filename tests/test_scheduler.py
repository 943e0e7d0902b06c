"""Scheduler: due ticks from the state directory's runs, max_active_runs, existing runs, errors once."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gitflowd.dag import Dag, Task
from gitflowd.scheduler import Scheduler
from gitflowd.statedir import StateDir
from tests.runfactory import make_dag, write_run

UTC = timezone.utc


def daily(**settings: object) -> Dag:
    return Dag(id="d", tasks={"t": Task(id="t", cmd="true")}, schedule="@daily", **settings)  # type: ignore[arg-type]


def ticks(result: list[tuple[Dag, datetime]]) -> list[int]:
    return [tick.day for _, tick in result]


def test_catchup_hands_out_ticks_within_max_active_runs(tmp_path: Path) -> None:
    scheduler = Scheduler(StateDir(tmp_path))
    dag = daily(start_date=datetime(2026, 1, 1), catchup=True, max_active_runs=2)
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert ticks(scheduler.due({"d": (dag, "v1")}, lambda _: 0, now)) == [1, 2]
    assert ticks(scheduler.due({"d": (dag, "v1")}, lambda _: 2, now)) == []  # both still running
    assert ticks(scheduler.due({"d": (dag, "v1")}, lambda _: 1, now)) == [3]
    assert ticks(scheduler.due({"d": (dag, "v1")}, lambda _: 0, now)) == [4, 5]
    assert scheduler.due({"d": (dag, "v1")}, lambda _: 0, now) == []
    assert scheduler.next_due({"d": (dag, "v1")}, now) == datetime(2026, 1, 6, tzinfo=UTC)


def test_the_newest_scheduled_run_in_the_state_is_where_catchup_resumes(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    fake = make_dag("d", {"t": []})
    write_run(tmp_path, fake, "scheduled__20260103T000000Z", datetime(2026, 1, 3, tzinfo=UTC), {"t": ["success"]})
    write_run(tmp_path, fake, "backfill__20260105T000000Z", datetime(2026, 1, 5, tzinfo=UTC), {"t": ["success"]}, kind="backfill")
    scheduler = Scheduler(state)
    dag = daily(start_date=datetime(2026, 1, 1), catchup=True, max_active_runs=5)
    assert ticks(scheduler.due({"d": (dag, "v1")}, lambda _: 0, datetime(2026, 1, 6, 1, tzinfo=UTC))) == [4, 6]  # the 5th has a run


def test_manual_only_and_finished_dags_are_never_due(tmp_path: Path) -> None:
    scheduler = Scheduler(StateDir(tmp_path))
    manual = Dag(id="m", tasks={"t": Task(id="t", cmd="true")})
    ended = daily(start_date=datetime(2026, 1, 1), end_date=datetime(2026, 1, 2), catchup=True, max_active_runs=3)
    dags = {"m": (manual, "v"), "d": (ended, "v")}
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert ticks(scheduler.due(dags, lambda _: 0, now)) == [1, 2]
    assert scheduler.due(dags, lambda _: 0, now) == [] and scheduler.next_due(dags, now) is None


def test_a_bad_timezone_is_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = Scheduler(StateDir(tmp_path))
    dag = daily(timezone="Mars/Olympus")
    for _ in range(3):
        assert scheduler.due({"d": (dag, "v")}, lambda _: 0, datetime(2026, 1, 1, tzinfo=UTC)) == []
    with caplog.at_level(logging.ERROR):
        scheduler.due({"d": (dag, "v2")}, lambda _: 0, datetime(2026, 1, 1, tzinfo=UTC))
    assert caplog.text.count("unknown timezone 'Mars/Olympus'") == 1


def test_an_unreadable_journal_is_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A journal that goes bad while the daemon runs: if its first record (the run's kind and
    # logical date) cannot be read, its tick looks unrun and the error is logged once, not on
    # every pass of the loop. Damage after the first record is not the scheduler's business
    # (status and the site report it): the run exists, and its tick is not run again.
    fake = make_dag("d", {"t": []})
    later = write_run(tmp_path, fake, "scheduled__20260102T000000Z", datetime(2026, 1, 2, tzinfo=UTC), {"t": ["success"]})
    first = write_run(tmp_path, fake, "scheduled__20260103T000000Z", datetime(2026, 1, 3, tzinfo=UTC), {"t": ["success"]})
    for path, line in ((later, 1), (first, 0)):
        lines = path.read_bytes().split(b"\n")
        lines[line] = lines[line].replace(f'"seq":{line}'.encode(), b'"seq":7')  # the checksum no longer matches
        path.write_bytes(b"\n".join(lines))
    scheduler = Scheduler(StateDir(tmp_path))
    dag = daily(start_date=datetime(2026, 1, 1), catchup=True, max_active_runs=5)
    with caplog.at_level(logging.ERROR):
        due = [tick.day for _, tick in scheduler.due({"d": (dag, "v1")}, lambda _: 0, datetime(2026, 1, 4, 1, tzinfo=UTC))]
        scheduler.due({"d": (dag, "v1")}, lambda _: 0, datetime(2026, 1, 5, 1, tzinfo=UTC))
    assert due == [3, 4]  # after the newest readable scheduled run (01-02): 01-03 looks unrun
    assert caplog.text.count(f"run journal {first} cannot be read") == 1
    assert ":1: corrupt journal record" in caplog.text and str(later) not in caplog.text
