#!/usr/bin/env python3
"""Workload 6: replaying a journal of 100,000 events through state.py.

Writes one real journal with journal.JournalWriter: the `run_created` record of a run of
a 10,000-task DAG (WIDTH chains, as made by runs.created_record), `run_started`, then for
every task five attempts (four failed with a `retry_at`, the fifth a success), each a
`task_started` and a `task_finished` as the engine writes them, and `run_finished`.
Then times, median of REPEATS:
  replay         state.read_run(path): read, verify every checksum, fold into a RunState
  read only      journal.read(path)
  fold only      state.replay(records)
  writer open    JournalWriter(path): the recovery scan a resume does before appending (info)
Budget: replay <= 1 s.

    python3 bench/bench_journal.py [--quick] [--profile]
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from common import Figure, cleanup, main, median_time, profile, scratch
from shapes import chain

from gitflowd import journal, state, statedir
from gitflowd.dag import Dag, Task
from gitflowd.runs import created_record, plan_run

EVENTS, QUICK_EVENTS = 100_000, 10_000
ATTEMPTS = 5  # per task: ATTEMPTS - 1 failures, then a success
REPEATS = 3
BUDGET = 1.0
BATCH = 1000
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_dag(tasks: int) -> Dag:
    deps = chain(tasks)
    return Dag(id="journal_bench", tasks={t: Task(id=t, cmd="true", deps=tuple(d), retries=ATTEMPTS - 1) for t, d in deps.items()},
               path="dags/journal_bench.toml")


def task_records(dag_id: str, run_id: str, task: str, clock: datetime) -> list[dict]:
    records = []
    for number in range(1, ATTEMPTS + 1):
        log = f"/var/lib/gitflowd/logs/{dag_id}/{run_id}/{task}.{number}.log"
        records.append({"event": journal.TASK_STARTED, "task": task, "attempt": number, "pid": 40000 + number,
                        "pgid": 40000 + number, "host": "benchhost", "log": log})
        finished = {"event": journal.TASK_FINISHED, "task": task, "attempt": number,
                    "state": "success" if number == ATTEMPTS else "failed",
                    "exit_code": 0 if number == ATTEMPTS else 1, "duration": 0.012345}
        if number < ATTEMPTS:
            finished["retry_at"] = journal.utc_timestamp(clock + timedelta(seconds=30))
        records.append(finished)
    return records


def write_journal(root: Path, events: int) -> Path:
    """A finished run's journal of `events` task events (+ created, started, finished)."""
    dag = make_dag(events // (2 * ATTEMPTS))
    run = plan_run(statedir.StateDir(root / "state"), dag, kind="manual", logical_date=T0, commit="ab" * 20,
                   commit_info={"subject": "bench", "author": "bench"})
    path = Path(run.journal_path)
    with journal.JournalWriter(path, exclusive=True) as writer:
        writer.append(created_record(run), {"event": journal.RUN_STARTED, "pid": 4242, "host": "benchhost"})
        pending: list[dict] = []
        for task in dag.tasks:
            pending += task_records(dag.id, run.run_id, task, T0)
            if len(pending) >= BATCH:
                writer.append(*pending, sync=False)
                pending = []
        writer.append(*pending, {"event": journal.RUN_FINISHED, "state": "success"})
    return path


def check(path: Path, events: int) -> None:
    run = state.read_run(path)
    if run.state is not state.RunStatus.SUCCESS or run.last_seq != events + 2:
        raise SystemExit(f"bench_journal: unexpected replay: {run.state}, last seq {run.last_seq}")


def figures(quick: bool = False) -> list[Figure]:
    events = QUICK_EVENTS if quick else EVENTS
    root = scratch("journal")
    try:
        path = write_journal(root, events)
        check(path, events)
        replay = median_time(REPEATS, lambda: state.read_run(path))
        read = median_time(REPEATS, lambda: journal.read(path))
        records = journal.read(path)
        fold = median_time(REPEATS, lambda: state.replay(records, str(path)))
        reopen = median_time(REPEATS, lambda: journal.JournalWriter(path).close())
        size = path.stat().st_size / 1e6
    finally:
        cleanup(root)
    w = "6 journal"
    return [
        Figure(w, f"replay of {events:,} events (state.read_run, {size:.0f} MB)", replay, "s", BUDGET),
        Figure(w, "of which journal.read (checksums + JSON)", read, "s", reference="info"),
        Figure(w, "of which state.replay (fold into RunState)", fold, "s", reference="info"),
        Figure(w, "JournalWriter open (recovery scan before a resume appends)", reopen, "s", reference="info"),
    ]


def profiles(quick: bool = False) -> None:
    events = QUICK_EVENTS if quick else EVENTS
    root = scratch("journal-profile")
    try:
        path = write_journal(root, events)
        print("## replay\n" + profile(lambda: state.read_run(path)))
    finally:
        cleanup(root)


if __name__ == "__main__":
    main(figures, profiles)
