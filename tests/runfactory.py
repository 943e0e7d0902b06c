"""Real run journals for site tests, written with journal.JournalWriter (no engine needed).

`write_run(state, dag, ...)` appends the records an engine would: run_created, run_started,
task_started / task_finished per attempt (or task_skipped), run_finished, each with a
timestamp from a fake clock so that durations are deterministic; logs go where
StateDir.log_path says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gitflowd import journal
from gitflowd.dag import Dag, Task
from gitflowd.statedir import StateDir

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_dag(dag_id: str, tasks: Mapping[str, Sequence[str]], description: str = "", cmd: str = "echo {{ ds }}",
             schedule: str | None = "@daily") -> Dag:
    """`tasks` maps task id -> deps, in file order."""
    return Dag(id=dag_id, tasks={t: Task(id=t, cmd=f"{cmd} {t}", deps=tuple(d)) for t, d in tasks.items()},
               description=description, schedule=schedule, path=f"dags/{dag_id}.toml")


def write_run(state: Path, dag: Dag, run_id: str, logical: datetime, outcomes: Mapping[str, Sequence[str] | str],
              logs: Mapping[tuple[str, int], str | bytes] | None = None, finish: str | None = "auto",
              commit_info: Mapping[str, str] | None = None, kind: str = "scheduled", sync: bool = False) -> Path:
    """`outcomes`: task -> attempt states (e.g. ["failed", "success"]) or a skip state string.
    Tasks missing from `outcomes` never start. `finish`: a run state, "auto", or None (running)."""
    dirs = StateDir(state)
    clock = [logical + timedelta(hours=1)]
    path = dirs.journal_path(dag.id, run_id)
    with journal.JournalWriter(path, clock=lambda: clock[0]) as real:
        writer = _Batch(real, sync)
        writer.append({"event": journal.RUN_CREATED, "dag_id": dag.id, "run_id": run_id, "kind": kind,
                       "dag": dag.to_dict(), "commit": "c0ffee" * 6 + "abcd", "logical_date": logical.isoformat(),
                       "data_interval_start": (logical - timedelta(days=1)).isoformat(),
                       "data_interval_end": logical.isoformat(), "params": {"region": "seoul"},
                       "commit_info": dict(commit_info or {"subject": "add pipeline", "author": "Ada", "time": T0.isoformat()})})
        writer.append({"event": journal.RUN_STARTED, "pid": 4242, "host": "testhost"})
        for task_id, result in outcomes.items():
            _task(writer, clock, dirs, dag.id, run_id, task_id, result, logs or {})
        if finish:
            failed = any(not isinstance(r, str) and r[-1] != "success" for r in outcomes.values())
            state = finish if finish != "auto" else ("failed" if failed else "success")
            writer.append({"event": journal.RUN_FINISHED, "state": state})
    return path


def _task(writer, clock, dirs, dag_id, run_id, task_id, result, logs) -> None:
    if isinstance(result, str):
        writer.append({"event": journal.TASK_SKIPPED, "task": task_id, "state": result, "reason": "upstream failed"})
        return
    for number, state in enumerate(result, 1):
        writer.append({"event": journal.TASK_STARTED, "task": task_id, "attempt": number, "pid": 100 + number, "host": "testhost"})
        log = dirs.log_path(dag_id, run_id, task_id, number)
        log.parent.mkdir(parents=True, exist_ok=True)
        text = logs.get((task_id, number), f"{task_id} attempt {number}\n")
        log.write_bytes(text if isinstance(text, bytes) else text.encode())
        clock[0] += timedelta(seconds=7 + 3 * number)
        if state == "running":
            return
        record = {"event": journal.TASK_FINISHED, "task": task_id, "attempt": number, "state": state,
                  "exit_code": 0 if state == "success" else 1}
        if number < len(result):
            record["retry_at"] = (clock[0] + timedelta(seconds=5)).isoformat()
        writer.append(record)
        clock[0] += timedelta(seconds=2)


class _Batch:
    """Appends without fsync unless asked: these journals are test input, not durable state."""

    def __init__(self, writer: journal.JournalWriter, sync: bool):
        self.writer, self.sync = writer, sync

    def append(self, record: dict) -> None:
        self.writer.append(record, sync=self.sync)
