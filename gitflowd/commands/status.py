"""`gitflowd status [DAG [RUN_ID]] [--json] [--limit N]`: runs newest first, with task states.

Without arguments: every run of every DAG; with DAG: that DAG's runs; with RUN_ID: one
run and a row per task. `--json` prints a JSON array of runs (shape in the README, `gitflowd status`).
A damaged journal is one error line on stderr (exit 1); the other runs are still shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime
from typing import Any

from gitflowd import settings
from gitflowd.commands.common import format_duration, report_broken, table
from gitflowd.commands.run import positive_int
from gitflowd.errors import DagNotFound, UsageError
from gitflowd.journal import exit_text
from gitflowd.lock import is_locked
from gitflowd.state import RunState, RunStatus, TaskState
from gitflowd.statedir import StateDir


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "status", parents=[common], help="show runs and their task states",
        description="Show runs newest first (all DAGs, one DAG, or one run with its tasks).",
    )
    parser.add_argument("dag", metavar="DAG", nargs="?", help="only this DAG's runs")
    parser.add_argument("run_id", metavar="RUN_ID", nargs="?", help="only this run, task by task (an empty one is an error)")
    parser.add_argument("--json", action="store_true", help="print a JSON array of runs")
    parser.add_argument("--limit", type=positive_int, default=20, metavar="N", help="runs shown as text (default 20; --json shows all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _refuse_empty(args)
    state = StateDir(settings.resolve(args.repo, args.state, args.site).state)
    if args.run_id is not None:
        runs = [state.load_run(args.dag, args.run_id)]
    else:
        if args.dag and args.dag not in state.dag_ids():
            from gitflowd.loader import suggest
            known = state.dag_ids()
            raise DagNotFound(args.dag, suggest(args.dag, known) or f" (no runs recorded; DAGs with runs: {', '.join(known) or 'none'})")
        runs = state.runs(args.dag)
    # A damaged journal is an error (exit 1), but the runs that could be read are still shown.
    code = 1 if report_broken(state) else 0
    if args.json:
        print(json.dumps([run_dict(r) for r in runs], indent=2))
        return code
    orphaned = not is_locked(state.lock_path)  # "running" with nobody holding the lock: the runner died
    if args.run_id is not None:
        print(describe_run(runs[0], orphaned))
    else:
        print(runs_table(runs[: args.limit], orphaned) if runs else "no runs")
        if len(runs) > args.limit:  # on stderr: the table on stdout stays a table
            print(f"gitflowd: {args.limit} of {len(runs)} runs shown (newest first); --limit N shows more, --json all", file=sys.stderr)
    return code


def _refuse_empty(args: argparse.Namespace) -> None:
    """An empty id given on purpose (`status d "$RUN"` with RUN unset) is not a missing one:
    listing every run instead would answer another question without a word."""
    if args.dag == "":
        raise UsageError("empty DAG id '': give a DAG id, or leave it out to list the runs of every DAG")
    if args.run_id == "":
        raise UsageError(f"empty RUN_ID '' for DAG {args.dag!r}: give a run id (`gitflowd status {args.dag}` "
                         "lists them), or leave it out to list the DAG's runs")


def _state(run: RunState, orphaned: bool) -> str:
    if run.cleared and run.state is RunStatus.QUEUED:
        return "queued (cleared: resume it)"
    # queued with no lock held: recorded, but its runner failed or died before it started it
    if orphaned and run.state in (RunStatus.RUNNING, RunStatus.QUEUED):
        return f"{run.state.value} (runner gone: resume it)"
    return run.state.value


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def task_dict(task: TaskState) -> dict[str, Any]:
    return {"state": task.state.value, "attempts": len(task.attempts), "exit_code": task.exit_code,
            "started": _iso(task.started), "ended": _iso(task.ended)}


def run_dict(run: RunState) -> dict[str, Any]:
    return {
        "dag": run.dag_id, "run_id": run.run_id, "kind": run.kind, "state": run.state.value,
        "logical_date": _iso(run.logical_date), "commit": run.commit,
        "started": _iso(run.started), "ended": _iso(run.ended), "last_started": _iso(run.last_started),
        "cleared": run.cleared,
        "tasks": {task_id: task_dict(task) for task_id, task in run.tasks.items()},
    }


def _last_attempt(task: TaskState) -> str:
    """A task's duration is its last attempt's, as on the site's run page (and in Airflow):
    first start to last end would count the wait for a retry or a resume days later. A task
    pending after a clear, or skipped by a resume, has none: that attempt is not what it is now."""
    current = task.current
    return _duration(current.started, current.ended) if current else "-"


def _duration(start: datetime | None, end: datetime | None) -> str:
    """Tenths only under a minute: 134.3 s is '2m14s', as 136 s is '2m16s', not '134.3s'."""
    if not (start and end):
        return "-"
    seconds = (end - start).total_seconds()
    return format_duration(round(seconds, 1) if seconds < 60 else round(seconds))


def _note(task: TaskState) -> str:
    """Why it was skipped, or why its last attempt could not start (it has no exit code)."""
    last = task.attempts[-1] if task.attempts else None
    if not task.reason and last is not None and last.error and last.state is task.state:
        return f"could not start: {last.error}"
    return task.reason


def _resumed(run: RunState) -> str:
    """The latest execution's start, when a resume made it another than the first."""
    if run.last_started != run.started:  # started again after a resume
        return f"; resumed {len(run.resumes)} time(s), the latest execution started {_iso(run.last_started)}"
    return ""


def _counts(run: RunState) -> str:
    counts = Counter(task.state.value for task in run.tasks.values())
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def runs_table(runs: list[RunState], orphaned: bool = False) -> str:
    rows = [[r.dag_id, r.run_id, _state(r, orphaned), r.logical_date.isoformat(), r.commit[:8],
             _duration(r.last_started, r.ended), _counts(r)] for r in runs]
    return table(["DAG", "RUN", "STATE", "LOGICAL DATE", "COMMIT", "DURATION", "TASKS"], rows)


def describe_run(run: RunState, orphaned: bool = False) -> str:
    subject = run.commit_info.get("subject", "")
    lines = [
        f"run {run.run_id} of {run.dag_id}: {_state(run, orphaned)}",
        f"  kind {run.kind}, logical date {run.logical_date.isoformat()}, commit {run.commit[:8]} {subject}".rstrip(),
        f"  started {_iso(run.started) or '-'}, ended {_iso(run.ended) or '-'}{_resumed(run)}",
        "",
    ]
    rows = [[t.task_id, t.state.value, str(len(t.attempts)), exit_text(t.exit_code, "-"),
             _last_attempt(t), _note(t)] for t in (run.tasks[i] for i in run.dag.topological_order() if i in run.tasks)]
    lines.append(table(["TASK", "STATE", "ATTEMPTS", "EXIT", "DURATION", "NOTE"], rows))
    return "\n".join(lines)
