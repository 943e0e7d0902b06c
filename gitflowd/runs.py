"""The life of a run outside the engine: create it, resume it, clear its tasks.

Flow: `plan_run(...)` builds the RunState of a new run in memory (unique run id, checked
params) so that its commands can be rendered and its secrets resolved before anything is
recorded -> `create_run(state_dir, run)` writes its `run_created` record and returns the
journal writer the engine will use. For an existing run: `plan_resume(run, dag, commit)`
decides what a resume re-runs (or says there is nothing to do) -> `open_resume(...)`
kills the orphaned process groups of a runner that died, masks the logs they left and
writes `run_resumed`.
`clear_tasks(...)` writes `tasks_cleared`; `stop_unfinished(...)` ends a run nobody runs.
Every function here expects the caller to hold the state lock (one writer per journal).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitflowd import journal
from gitflowd.dag import Dag
from gitflowd.errors import RunError, StateError, TaskNotFound, UsageError
from gitflowd.executors.local import append_note, find_run_processes, kill_process_groups
from gitflowd.errors import suggest
from gitflowd.journal import JournalWriter, JournalWriteError
from gitflowd.secrets import Masker
from gitflowd.state import RunState, RunStatus, TaskStatus, apply, new_run_state, replay
from gitflowd.statedir import StateDir

log = logging.getLogger(__name__)

KINDS = ("manual", "scheduled", "backfill")


def run_id_for(kind: str, logical_date: datetime) -> str:
    """`manual__20261125T081500Z`: file- and URL-safe, sortable by time."""
    return f"{kind}__{logical_date.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def unique_run_id(state_dir: StateDir, dag_id: str, kind: str, logical_date: datetime) -> str:
    """`run_id_for(...)`, with `-2`, `-3`, ... appended if a run with that id exists (an empty
    journal is none: create_run replaces it)."""
    base = run_id_for(kind, logical_date)
    candidate, counter = base, 1
    while _holds_a_run(state_dir.journal_path(dag_id, candidate)):
        counter += 1
        candidate = f"{base}-{counter}"
    return candidate


def parse_params(pairs: Iterable[str], dag: Dag) -> dict[str, Any]:
    """`K=V` strings -> overrides of the DAG's declared params, each of its default's type
    (`--param days=3` is 3 where the default is an integer, as `{{ params.days + 1 }}` expects)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"bad --param {pair!r}: expected KEY=VALUE")
        if key not in dag.params:
            hint = suggest(key, dag.params) or f"; DAG {dag.id!r} declares: {', '.join(dag.params) or 'none'}"
            raise UsageError(f"unknown --param {key!r}{hint}")
        result[key] = _typed(dag, key, value)
    return result


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_KINDS = {bool: "true or false", int: "an integer", float: "a number", list: "a JSON array", dict: "a JSON object"}


def _typed(dag: Dag, key: str, value: str) -> Any:
    """`value` as the type of the param's default; strings (and dates, kept as ISO text) stay text."""
    default = dag.params[key]
    kind = type(default)
    if kind not in _KINDS:
        return value
    try:
        if kind is bool:
            if value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError(value)
        if kind in (list, dict):
            parsed = json.loads(value, parse_constant=_not_a_number)
            if not isinstance(parsed, kind):
                raise ValueError(value)
            return parsed
        if kind is float and not math.isfinite(float(value)):  # nan, inf: not JSON, and no param's meaning
            raise ValueError(value)
        return kind(value)
    except ValueError:
        raise UsageError(f"bad --param {key}={value!r}: DAG {dag.id!r} declares {key} as {_KINDS[kind]} "
                         f"(default {json.dumps(default)})") from None


def _not_a_number(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: json.loads takes them, but they are not JSON


def created_record(run: RunState) -> dict[str, Any]:
    def stamp(moment: datetime | None) -> str | None:
        return moment.astimezone(UTC).isoformat() if moment else None

    return {
        "event": journal.RUN_CREATED, "dag_id": run.dag_id, "run_id": run.run_id, "kind": run.kind,
        "logical_date": stamp(run.logical_date), "data_interval_start": stamp(run.data_interval_start),
        "data_interval_end": stamp(run.data_interval_end), "commit": run.commit,
        "commit_info": run.commit_info, "params": run.params, "dag": run.dag.to_dict(),
    }


def plan_run(state_dir: StateDir, dag: Dag, *, kind: str, logical_date: datetime, commit: str,
             commit_info: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
             data_interval: tuple[datetime | None, datetime | None] = (None, None), run_id: str | None = None) -> RunState:
    """A new run, in memory only (nothing is written)."""
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}")
    if logical_date.tzinfo is None:
        raise ValueError("logical_date must be timezone-aware")
    run_id = run_id or unique_run_id(state_dir, dag.id, kind, logical_date)
    record = created_record(RunState(
        dag_id=dag.id, run_id=run_id, kind=kind, dag=dag, commit=commit, logical_date=logical_date,
        data_interval_start=data_interval[0] or logical_date, data_interval_end=data_interval[1] or logical_date,
        params=dict(params or {}), commit_info=dict(commit_info or {}),
    ))
    return new_run_state(record, str(state_dir.journal_path(dag.id, run_id)), dag=dag)


def _state_error(path: object, exc: OSError) -> StateError:
    return StateError(f"cannot write journal {path}: {exc.strerror or exc}")


def create_run(state_dir: StateDir, run: RunState, clock: Callable[[], datetime] | None = None) -> JournalWriter:
    """Write the run's `run_created` record; RunError if the run id is taken, StateError if it cannot."""
    path = state_dir.journal_path(run.dag_id, run.run_id)
    workspace = state_dir.workspace(run.dag_id, run.run_id)
    try:  # before the record: a run that cannot have its workspace is not recorded at all
        workspace.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"cannot create workspace {workspace}: {exc.strerror or exc}") from None
    writer = None
    try:
        _drop_if_no_run(path)
        writer = JournalWriter(path, exclusive=True, clock=clock)
        (record,) = writer.append(created_record(run))
    except FileExistsError:
        raise RunError(f"run {run.run_id!r} of DAG {run.dag_id!r} already exists") from None
    except OSError as exc:
        _discard(path, writer)
        raise _state_error(path, exc) from None
    run.created = datetime.fromisoformat(record["ts"])
    run.last_seq = record["seq"]
    return writer


def _holds_a_run(path: Path) -> bool:
    """Whether `path` is a journal with a whole record: an empty one, or one whose only record
    is torn, is a creation killed before its first write ended, and holds no run. (Read only
    when the id is already there: a run created in the same second, or such a leftover.)"""
    try:
        return bool(journal.read(path))
    except journal.CorruptRecord:
        return True
    except OSError:  # absent, or a state directory that create_run will report as unusable
        return False


def _drop_if_no_run(path: Path) -> None:
    """Such a journal must not take its run's id (the caller holds the state directory's lock,
    so no one is writing it now)."""
    if path.is_file() and not _holds_a_run(path):
        path.unlink(missing_ok=True)


def _discard(path: Path, writer: JournalWriter | None) -> None:
    """A journal whose run_created was never acknowledged (its write or fsync failed) holds no
    run: remove it, so that no half-created run is left for status and resume to trip on. It
    is ours if we opened it (created exclusively) or empty (it then records nothing)."""
    try:
        if writer is not None:
            writer.close()
        if writer is not None or path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass  # nothing there, or a disk failing harder: the error being raised says enough


def open_run(state_dir: StateDir, dag_id: str, run_id: str,
             clock: Callable[[], datetime] | None = None) -> tuple[RunState, JournalWriter]:
    """An existing run and the writer to append to it (torn tail cut off)."""
    state_dir.load_run(dag_id, run_id)  # RunNotFound / JournalCorrupt before opening for writing
    try:
        writer = JournalWriter(state_dir.journal_path(dag_id, run_id), clock=clock)
    except OSError as exc:
        raise _state_error(state_dir.journal_path(dag_id, run_id), exc) from None
    return replay(writer.records_on_open, str(writer.path)), writer


# -- resume ---------------------------------------------------------------------------------


def plan_resume(run: RunState, dag: Dag | None = None, commit: str | None = None,
                commit_info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `run_resumed` record for `run` (optionally moved to `dag` at `commit`, whose
    subject and author `commit_info` gives: status and the site show them).

    Re-runs what did not succeed (failed, timeout, interrupted, upstream_failed, pending,
    up_for_retry) and everything downstream of it; RunError if there is nothing to do.
    """
    interrupted = [{"task": t.task_id, "attempt": t.attempts[-1].number}
                   for t in run.tasks.values() if t.state is TaskStatus.RUNNING and t.attempts]
    target = dag or run.dag
    redo = {t for t in target.tasks if t not in run.tasks or run.tasks[t].state.needs_rerun}
    redo |= target.downstream(redo)
    if not redo and not interrupted and run.state not in (RunStatus.QUEUED, RunStatus.RUNNING):
        raise RunError(f"nothing to resume: every task of run {run.run_id!r} of DAG {run.dag_id!r} succeeded "
                       f"(use `gitflowd clear --task` to run tasks again)")
    record: dict[str, Any] = {
        "event": journal.RUN_RESUMED, "commit": commit or run.commit,
        "tasks": [t for t in target.topological_order() if t in redo], "interrupted": interrupted,
    }
    if dag is not None and (commit != run.commit or dag.to_dict() != run.dag.to_dict()):
        record["dag"] = dag.to_dict()
    if commit_info and record["commit"] != run.commit:
        record["commit_info"] = dict(commit_info)
    return record


def open_resume(state_dir: StateDir, writer: JournalWriter, run: RunState, record: dict[str, Any],
                secrets: Mapping[str, str], kill_grace: float = 10.0) -> None:
    """Kill orphans of a runner that died, mask the logs they left, then write `run_resumed`
    and fold it into `run`. In that order: the record says those attempts ended, and the site
    shows the log of an ended attempt as masked on disk; an orphan still running would write
    after the masking."""
    _end_orphans(state_dir, run, [(item["task"], item["attempt"]) for item in record["interrupted"]], secrets, kill_grace,
                 "resumed")
    _record(writer, run, record)


def _end_orphans(state_dir: StateDir, run: RunState, unended: list[tuple[str, int]], secrets: Mapping[str, str],
                 kill_grace: float, then: str | None = None) -> None:
    """Kill what a dead runner's tasks left running, then mask the logs of the attempts it
    never saw end (the engine masks a log when its attempt ends); with `then` (what is being
    done to the run), say at the end of each why it stops there."""
    orphans = find_run_processes(run.dag_id, run.run_id)
    if orphans:
        kill_process_groups(orphans, kill_grace)
    masker = Masker(secrets.values())
    for task_id, attempt in unended:
        log_path = state_dir.log_path(run.dag_id, run.run_id, task_id, attempt)
        masker.mask_file(log_path)
        if then:
            append_note(log_path, f"interrupted: the run's runner died while this attempt ran; what was left of it "
                                  f"was ended when the run was {then}")


def kill_orphans(runs: Iterable[RunState], grace: float) -> None:
    """What the tasks of a dead daemon's runs left running, killed in one pass before those runs
    are resumed: one grace period in all, where resuming them one by one waited a whole grace
    per run whose orphan ignores SIGTERM (nine such runs passed systemd's 90 s start timeout)."""
    groups: dict[int, list[int]] = {}
    for run in runs:
        groups.update(find_run_processes(run.dag_id, run.run_id))
    if groups:
        kill_process_groups(groups, grace)


# -- stop -----------------------------------------------------------------------------------


def running_attempts(run: RunState) -> list[tuple[str, int]]:
    """(task, attempt) of every attempt the journal says is running: without a runner, its
    log was never masked and its process may be an orphan."""
    return [(t.task_id, t.attempts[-1].number) for t in run.tasks.values() if t.state is TaskStatus.RUNNING and t.attempts]


def stop_unfinished(state_dir: StateDir, writer: JournalWriter, run: RunState, secrets: Mapping[str, str],
                    kill_grace: float = 10.0) -> None:
    """End a run that nobody is running (`gitflowd stop` of a queued run, or of one whose
    runner died): kill its orphans, mask their logs, record each attempt left running and
    the run `interrupted` (a later `resume` continues it). RunError if the run has ended."""
    if run.state.ended:
        raise RunError(f"run {run.run_id!r} of DAG {run.dag_id!r} has already ended ({run.state.value})")
    unended = running_attempts(run)
    _end_orphans(state_dir, run, unended, secrets, kill_grace, "stopped")
    # No `error`: that field says why a process could not start, and these did start.
    records = [{"event": journal.TASK_FINISHED, "task": task_id, "attempt": attempt, "state": TaskStatus.INTERRUPTED.value,
                "exit_code": None} for task_id, attempt in unended]
    _record(writer, run, *records, {"event": journal.RUN_FINISHED, "state": RunStatus.INTERRUPTED.value})


# -- clear ----------------------------------------------------------------------------------


def tasks_to_clear(run: RunState, task_ids: Iterable[str], downstream: bool) -> list[str]:
    """The tasks a clear resets, in topological order; TaskNotFound for an unknown id."""
    chosen = set()
    for task_id in task_ids:
        if task_id not in run.dag.tasks:
            raise TaskNotFound(run.dag_id, task_id, suggest(task_id, run.dag.tasks))
        chosen.add(task_id)
    if downstream:
        chosen |= run.dag.downstream(chosen)
    return [t for t in run.dag.topological_order() if t in chosen]


def clear_tasks(writer: JournalWriter, run: RunState, tasks: list[str]) -> None:
    """Write `tasks_cleared` and fold it into `run`."""
    _record(writer, run, {"event": journal.TASKS_CLEARED, "tasks": tasks})


def _record(writer: JournalWriter, run: RunState, *records: dict[str, Any]) -> None:
    """Append durably and fold into `run`; a failed write or fsync is one StateError line
    (never retried: DESIGN.md section 7), not a traceback."""
    try:
        stamped = writer.append(*records)
    except JournalWriteError as exc:
        raise StateError(f"run {run.run_id!r} of DAG {run.dag_id!r}: {exc} (nothing after it was recorded)") from None
    for record in stamped:
        apply(run, record)
