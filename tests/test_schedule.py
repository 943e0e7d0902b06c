"""Cron ticks, DST, start/end dates, catch-up, backfill plans and data intervals (clock passed in)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from gitflowd import schedule
from gitflowd.dag import Dag, Task

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def make_dag(**settings_: object) -> Dag:
    return Dag(id="d", tasks={"t": Task(id="t", cmd="true")}, **settings_)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz).astimezone(UTC)


def walk(dag: Dag, after: datetime, count: int) -> list[datetime]:
    return list(islice(schedule.ticks(dag, after), count))


# -- check_schedule ------------------------------------------------------------------------


@pytest.mark.parametrize("expr", ["0 0 * * *", "*/15 * * * *", "0 9 * * MON-FRI", "30 2 1 1,7 *", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", " @daily ",
                                  "@quarterly", "@midnight", "@annually"])
def test_check_schedule_accepts_cron_and_presets(expr: str) -> None:
    assert schedule.check_schedule(expr) is None


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("* * * *", "has 4 fields; expected 5"),
        ("0 0 * * * *", "has 6 fields; expected 5"),
        ("", "has 0 fields"),
        ("61 * * * *", "invalid cron expression '61 * * * *'"),
        ("*/0 * * * *", "invalid cron expression"),
        ("0 0 * * FUNDAY", "invalid cron expression"),
        ("0 0 31 2 *", "never fires"),
        ("@midnightish", "unknown schedule preset '@midnightish'"),
        ("@every 5m", "unknown schedule preset"),
        ("H 2 * * *", "hashed values (H, as in Jenkins) are not supported"),
        ("0 H(0-5) * * *", "hashed values"),
    ],
)
def test_check_schedule_explains_bad_expressions(expr: str, words: str) -> None:
    message = schedule.check_schedule(expr)
    assert message is not None and words in message
    assert "\n" not in message


# -- next_tick -----------------------------------------------------------------------------


def test_next_tick_is_strictly_after() -> None:
    dag = make_dag(schedule="@daily")
    assert schedule.next_tick(dag, utc(2026, 1, 1)) == utc(2026, 1, 2)
    assert schedule.next_tick(dag, utc(2026, 1, 1) - timedelta(microseconds=1)) == utc(2026, 1, 1)


def test_manual_only_dag_has_no_ticks() -> None:
    dag = make_dag()
    assert schedule.next_tick(dag, utc(2026, 1, 1)) is None
    assert schedule.catchup_plan(dag, None, utc(2026, 5, 1)) == []
    assert schedule.data_interval(dag, utc(2026, 1, 1)) == schedule.Interval(utc(2026, 1, 1), utc(2026, 1, 1))


def test_ticks_are_in_the_dag_timezone() -> None:
    dag = make_dag(schedule="@daily", timezone="Asia/Seoul")
    assert schedule.next_tick(dag, utc(2026, 1, 1)) == utc(2026, 1, 1, 15)  # midnight in Seoul


def test_naive_after_is_read_in_the_dag_timezone() -> None:
    dag = make_dag(schedule="0 12 * * *", timezone="America/New_York")
    assert schedule.next_tick(dag, datetime(2026, 1, 1, 11)) == local(NEW_YORK, 2026, 1, 1, 12)


def test_presets_match_their_cron() -> None:
    after = utc(2026, 1, 7, 10, 30)
    assert schedule.next_tick(make_dag(schedule="@hourly"), after) == utc(2026, 1, 7, 11)
    assert schedule.next_tick(make_dag(schedule="@weekly"), after) == utc(2026, 1, 11)  # a Sunday
    assert schedule.next_tick(make_dag(schedule="@monthly"), after) == utc(2026, 2, 1)
    assert schedule.next_tick(make_dag(schedule="@yearly"), after) == utc(2027, 1, 1)
    assert schedule.next_tick(make_dag(schedule="@quarterly"), after) == utc(2026, 4, 1)
    assert schedule.next_tick(make_dag(schedule="@midnight"), after) == utc(2026, 1, 8)
    assert schedule.next_tick(make_dag(schedule="@annually"), after) == utc(2027, 1, 1)


def test_start_date_holds_back_the_first_tick() -> None:
    dag = make_dag(schedule="@daily", start_date=datetime(2026, 3, 1))
    assert schedule.next_tick(dag, utc(2020, 1, 1)) == utc(2026, 3, 1)
    late = make_dag(schedule="@daily", start_date=datetime(2026, 3, 1, 6))
    assert schedule.next_tick(late, utc(2020, 1, 1)) == utc(2026, 3, 2)


def test_end_date_stops_ticks() -> None:
    dag = make_dag(schedule="@daily", end_date=datetime(2026, 1, 3))
    assert walk(dag, utc(2026, 1, 1), 10) == [utc(2026, 1, 2), utc(2026, 1, 3)]
    assert schedule.next_tick(dag, utc(2026, 1, 3)) is None
    assert schedule.next_tick(dag, utc(2027, 1, 1)) is None


def test_aware_start_and_end_dates_are_respected() -> None:
    dag = make_dag(schedule="@hourly", timezone="Europe/Berlin", start_date=datetime(2026, 1, 1, 10, tzinfo=UTC), end_date=datetime(2026, 1, 1, 12, tzinfo=UTC))
    assert walk(dag, utc(2025, 1, 1), 5) == [utc(2026, 1, 1, 10), utc(2026, 1, 1, 11), utc(2026, 1, 1, 12)]


# -- DST -----------------------------------------------------------------------------------


def test_daily_tick_in_the_spring_gap_fires_once_shifted_forward() -> None:
    dag = make_dag(schedule="30 2 * * *", timezone="Europe/Berlin")
    got = walk(dag, utc(2026, 3, 27), 4)
    assert [t.astimezone(BERLIN).strftime("%d %H:%M %z") for t in got] == ["27 02:30 +0100", "28 02:30 +0100", "29 03:30 +0200", "30 02:30 +0200"]


def test_daily_tick_in_the_autumn_overlap_fires_once() -> None:
    dag = make_dag(schedule="30 1 * * *", timezone="America/New_York")
    got = walk(dag, utc(2026, 10, 31), 3)  # US fall back: 2026-11-01 02:00 EDT -> 01:00 EST
    assert [t.astimezone(NEW_YORK).strftime("%d %H:%M %z") for t in got] == ["31 01:30 -0400", "01 01:30 -0400", "02 01:30 -0500"]


def test_hourly_keeps_every_elapsed_hour_across_both_changes() -> None:
    dag = make_dag(schedule="@hourly", timezone="Europe/Berlin")
    spring = walk(dag, utc(2026, 3, 28, 22), 6)
    assert spring == [utc(2026, 3, 28, 23) + timedelta(hours=i) for i in range(6)]
    autumn = walk(dag, utc(2026, 10, 24, 22), 6)
    assert autumn == [utc(2026, 10, 24, 23) + timedelta(hours=i) for i in range(6)]
    assert [t.astimezone(BERLIN).strftime("%H%z") for t in autumn[1:3]] == ["02+0200", "02+0100"]


@pytest.mark.parametrize(("expr", "per_hour"), [("30 */1 * * *", 1), ("30 0-23 * * *", 1), ("*/30 0-11,12-23 * * *", 2)])
def test_an_hour_field_covering_every_hour_fires_on_both_readings_of_the_overlap(expr: str, per_hour: int) -> None:
    # as `*` does (and Airflow, which looks at the hours the field expands to, not its text)
    dag = make_dag(schedule=expr, timezone="Europe/Berlin")
    autumn = schedule.due_ticks(dag, utc(2026, 10, 24, 23), utc(2026, 10, 25, 2))
    assert utc(2026, 10, 25, 0, 30) in autumn and utc(2026, 10, 25, 1, 30) in autumn  # 02:30 CEST, then 02:30 CET
    assert len(schedule.due_ticks(dag, local(BERLIN, 2026, 10, 25), local(BERLIN, 2026, 10, 26))) == 25 * per_hour


def test_a_berlin_day_with_dst_has_23_or_25_hourly_ticks() -> None:
    dag = make_dag(schedule="@hourly", timezone="Europe/Berlin")
    assert len(schedule.due_ticks(dag, local(BERLIN, 2026, 3, 29), local(BERLIN, 2026, 3, 30))) == 23
    assert len(schedule.due_ticks(dag, local(BERLIN, 2026, 10, 25), local(BERLIN, 2026, 10, 26))) == 25
    assert len(schedule.due_ticks(dag, local(BERLIN, 2026, 10, 26), local(BERLIN, 2026, 10, 27))) == 24


def test_catchup_across_dst_creates_exactly_the_missed_ticks() -> None:
    dag = make_dag(schedule="0 2 * * *", timezone="Europe/Berlin", start_date=datetime(2026, 3, 27), catchup=True)
    plan = schedule.catchup_plan(dag, None, local(BERLIN, 2026, 3, 31, 12))
    assert [t.astimezone(BERLIN).strftime("%m-%d %H:%M") for t in plan] == ["03-27 02:00", "03-28 02:00", "03-29 03:00", "03-30 02:00", "03-31 02:00"]
    assert len(set(plan)) == len(plan) and plan == sorted(plan)


def test_prev_tick_across_the_overlap() -> None:
    dag = make_dag(schedule="30 2 * * *", timezone="Europe/Berlin")
    tick = local(BERLIN, 2026, 10, 26, 2, 30)
    assert schedule.prev_tick(dag, tick) == datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN).astimezone(UTC)  # first occurrence
    assert schedule.data_interval(dag, tick).end - schedule.data_interval(dag, tick).start == timedelta(hours=25)


CRONS = ["*/7 * * * *", "0 * * * *", "15 */3 * * *", "30 2 * * *", "0 0 * * 1", "45 23 L * *", "0 1,2,3 * * *"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@settings(max_examples=60, deadline=None)
@given(
    expr=st.sampled_from(CRONS),
    tz_name=st.sampled_from(ZONES),
    after=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1)),
)
def test_ticks_increase_match_the_cron_and_skip_nothing(expr: str, tz_name: str, after: datetime) -> None:
    dag = make_dag(schedule=expr, timezone=tz_name)
    start = after.replace(tzinfo=UTC)
    got = walk(dag, start, 30)
    assert got[0] > start and all(a < b for a, b in zip(got, got[1:]))
    tz = ZoneInfo(tz_name)
    walls = [t.astimezone(tz).replace(tzinfo=None) for t in got]
    exact = [w for w in walls if croniter.match(expr, w)]
    assert len(exact) >= len(walls) - 2  # only gap-shifted ticks may miss the wall time
    # every cron match between the first and last tick that exists on the local clock is a tick
    expected = set()
    for wall in croniter_range_walls(expr, walls[0], walls[-1]):
        instant = wall.replace(tzinfo=tz).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == wall:
            expected.add(instant)
    assert expected <= set(got)
    # prev_tick inverts next_tick
    assert all(schedule.prev_tick(dag, b) == a for a, b in zip(got[:5], got[1:6]))


def croniter_range_walls(expr: str, first: datetime, last: datetime) -> list[datetime]:
    it, out = croniter(expr, first - timedelta(seconds=1)), []
    while (wall := it.get_next(datetime)) <= last:
        out.append(wall)
    return out


# -- plans ---------------------------------------------------------------------------------


def test_due_ticks_are_half_open() -> None:
    dag = make_dag(schedule="@daily")
    assert schedule.due_ticks(dag, utc(2026, 1, 1), utc(2026, 1, 3)) == [utc(2026, 1, 2), utc(2026, 1, 3)]
    assert schedule.due_ticks(dag, utc(2026, 1, 3), utc(2026, 1, 3, 23)) == []


def test_catchup_true_runs_every_missed_tick_since_start_date() -> None:
    dag = make_dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=True)
    plan = schedule.catchup_plan(dag, None, utc(2026, 1, 4, 12))
    assert plan == [utc(2026, 1, 1), utc(2026, 1, 2), utc(2026, 1, 3), utc(2026, 1, 4)]


def test_catchup_true_continues_after_the_last_scheduled_run() -> None:
    dag = make_dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=True)
    assert schedule.catchup_plan(dag, utc(2026, 1, 3), utc(2026, 1, 5, 1)) == [utc(2026, 1, 4), utc(2026, 1, 5)]
    assert schedule.catchup_plan(dag, utc(2026, 1, 5), utc(2026, 1, 5, 1)) == []


def test_catchup_false_runs_only_the_latest_missed_tick() -> None:
    dag = make_dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False)
    assert schedule.catchup_plan(dag, None, utc(2026, 1, 4, 12)) == [utc(2026, 1, 4)]
    assert schedule.catchup_plan(dag, utc(2026, 1, 2), utc(2026, 1, 4, 12)) == [utc(2026, 1, 4)]
    assert schedule.catchup_plan(dag, utc(2026, 1, 4), utc(2026, 1, 4, 12)) == []


def test_catchup_without_start_date_runs_only_the_latest_tick() -> None:
    dag = make_dag(schedule="@hourly", catchup=True)
    assert schedule.catchup_plan(dag, None, utc(2026, 1, 4, 12, 30)) == [utc(2026, 1, 4, 12)]


def test_catchup_before_start_date_plans_nothing() -> None:
    dag = make_dag(schedule="@daily", start_date=datetime(2026, 6, 1), catchup=True)
    assert schedule.catchup_plan(dag, None, utc(2026, 5, 31, 23)) == []


def test_end_date_stops_catchup() -> None:
    dag = make_dag(schedule="@daily", start_date=datetime(2026, 1, 1), end_date=date(2026, 1, 3), catchup=True)  # type: ignore[arg-type]
    assert schedule.catchup_plan(dag, None, utc(2026, 3, 1)) == [utc(2026, 1, 1), utc(2026, 1, 2), utc(2026, 1, 3)]
    assert schedule.catchup_plan(dag, utc(2026, 1, 3), utc(2026, 3, 1)) == []


def test_backfill_plan_is_inclusive_and_oldest_first() -> None:
    dag = make_dag(schedule="@daily", timezone="Europe/Berlin")
    plan = schedule.backfill_plan(dag, date(2026, 1, 1), date(2026, 1, 3))
    assert plan == [local(BERLIN, 2026, 1, 1), local(BERLIN, 2026, 1, 2), local(BERLIN, 2026, 1, 3)]


def test_backfill_plan_respects_start_and_end_date() -> None:
    dag = make_dag(schedule="@daily", start_date=datetime(2026, 1, 2), end_date=datetime(2026, 1, 4))
    assert schedule.backfill_plan(dag, date(2026, 1, 1), date(2026, 1, 9)) == [utc(2026, 1, 2), utc(2026, 1, 3), utc(2026, 1, 4)]


def test_backfill_plan_rejects_a_reversed_range() -> None:
    with pytest.raises(ValueError, match="end 2026-01-01 is before start 2026-01-05"):
        schedule.backfill_plan(make_dag(schedule="@daily"), date(2026, 1, 5), date(2026, 1, 1))


def test_data_interval_is_previous_tick_to_tick() -> None:
    dag = make_dag(schedule="@daily", start_date=datetime(2026, 1, 1))
    assert schedule.data_interval(dag, utc(2026, 1, 1)) == schedule.Interval(utc(2025, 12, 31), utc(2026, 1, 1))
    weekly = make_dag(schedule="0 6 * * MON")
    assert schedule.data_interval(weekly, utc(2026, 1, 12, 6)) == schedule.Interval(utc(2026, 1, 5, 6), utc(2026, 1, 12, 6))


def test_max_active_runs_limits_what_starts() -> None:
    dag = make_dag(schedule="@daily", max_active_runs=2)
    planned = [utc(2026, 1, d) for d in range(1, 6)]
    assert schedule.take_startable(dag, planned, 0) == planned[:2]
    assert schedule.take_startable(dag, planned, 1) == planned[:1]
    assert schedule.take_startable(dag, planned, 2) == []
    assert schedule.take_startable(dag, planned, 5) == []


def test_unknown_timezone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="DAG 'd': unknown timezone 'Mars/Olympus'"):
        schedule.next_tick(make_dag(schedule="@daily", timezone="Mars/Olympus"), utc(2026, 1, 1))


# -- command-line times ---------------------------------------------------------------------


def test_parse_when_reads_dates_and_naive_times_in_the_dag_timezone() -> None:
    dag = make_dag(timezone="Asia/Seoul")
    assert schedule.parse_when("2026-01-02", dag) == datetime(2026, 1, 2, tzinfo=ZoneInfo("Asia/Seoul"))
    assert schedule.parse_when("2026-01-02T03:04", dag) == datetime(2026, 1, 2, 3, 4, tzinfo=ZoneInfo("Asia/Seoul"))
    assert schedule.parse_when("2026-01-02T03:04+00:00", dag) == utc(2026, 1, 2, 3, 4)
    assert schedule.parse_when(None, dag, now=utc(2026, 5, 5, 1, 2, 3)) == utc(2026, 5, 5, 1, 2, 3)


def test_parse_when_names_the_flag_on_bad_input() -> None:
    from gitflowd.errors import UsageError

    with pytest.raises(UsageError, match="bad --start 'yesterday'"):
        schedule.parse_when("yesterday", make_dag(), flag="--start")


@pytest.mark.parametrize("text", ["0001-01-01", "0999-12-31T23:59", "1000-01-01", "9999-01-01", "9998-12-31T23:59:59-05:00",
                                  "9999-12-31T23:00-05:00", "0001-01-01T00:30+01:00"])
def test_parse_when_refuses_dates_outside_four_digit_years(text: str) -> None:
    """Year 1 overflowed in the schedule (a traceback) and gave run ids like manual__10101T000000Z."""
    from gitflowd.errors import UsageError

    dag = make_dag(schedule="@daily", start_date=datetime(2026, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(UsageError, match=rf"bad --date '{re.escape(text)}': out of range \(years 1000 to 9998, in UTC\)"):
        schedule.parse_when(text, dag)


def test_a_manual_runs_logical_date_is_refused_before_the_dags_start_date() -> None:
    """`run --date` before start_date was accepted (Airflow's trigger refuses it); on the
    start_date itself, or for a DAG without one, any date goes."""
    from gitflowd.errors import UsageError

    seoul = make_dag(timezone="Asia/Seoul", start_date=datetime(2026, 1, 2))  # naive: in Seoul
    with pytest.raises(UsageError, match=re.escape("--date 2026-01-01T23:59 is before the start_date of DAG 'd' "
                                                   "(2026-01-02T00:00:00+09:00): a run's logical date must be on or after it")):
        schedule.parse_logical_date("2026-01-01T23:59", seoul)
    with pytest.raises(UsageError, match=re.escape("now (2026-01-01T09:00:00+09:00) is before the start_date of DAG 'd'")):
        schedule.parse_logical_date(None, seoul, now=utc(2026, 1, 1))
    assert schedule.parse_logical_date("2026-01-02", seoul) == datetime(2026, 1, 2, tzinfo=ZoneInfo("Asia/Seoul"))
    assert schedule.parse_logical_date("2026-01-01T15:00+00:00", seoul) == utc(2026, 1, 1, 15)  # the same instant
    assert schedule.parse_logical_date("1999-01-01", make_dag()) == datetime(1999, 1, 1, tzinfo=UTC)


def test_the_first_and_last_dates_accepted_have_ticks_around_them() -> None:
    dag = make_dag(schedule="@daily", start_date=datetime(2026, 1, 1, tzinfo=timezone.utc))
    for text in ("1000-01-02", "9998-12-31T23:59:59"):
        moment = schedule.parse_when(text, dag)
        assert schedule.data_interval(dag, moment).end == moment.astimezone(timezone.utc)


def test_catchup_false_finds_the_latest_tick_without_walking_the_gap() -> None:
    dag = make_dag(schedule="* * * * *", start_date=datetime(2020, 1, 1), catchup=False)  # walking would take minutes
    assert schedule.catchup_plan(dag, None, utc(2026, 6, 1, 12, 30, 30)) == [utc(2026, 6, 1, 12, 30)]
    assert schedule.catchup_plan(dag, utc(2020, 1, 1), utc(2026, 6, 1, 12, 30, 30)) == [utc(2026, 6, 1, 12, 30)]
    assert schedule.latest_tick(make_dag(schedule="@daily", start_date=datetime(2026, 6, 2)), utc(2026, 6, 1)) is None
    assert schedule.latest_tick(make_dag(schedule="@daily", end_date=datetime(2026, 1, 3)), utc(2026, 6, 1)) == utc(2026, 1, 3)
