"""`gitflowd list [--rev REV] [--json]`: every DAG with its schedule and next run.

Like `airflow dags list`, files that fail to load are not listed; their problems go to
stderr (`path:line: message`) and the exit code stays 0, since the listing itself
worked. `gitflowd validate` is the command that fails on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from gitflowd.commands.common import format_time, load_snapshot, problem_dict, table

if TYPE_CHECKING:
    from gitflowd.repo import Snapshot


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "list", parents=[common], help="list the DAGs with schedule, task count and next run",
        description="List every DAG at the head of the branch (or --rev): id, schedule, task count, "
        "next run time in the DAG's timezone and description. Load errors go to stderr.",
    )
    parser.add_argument("--rev", metavar="REV", help="commit, branch or tag (default: head of the branch)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    snapshot = load_snapshot(args, args.rev)
    now = datetime.now(timezone.utc)
    rows = [_row(loaded.dag, now) | {"path": loaded.path} for loaded in snapshot.dags.values()]
    if args.json:
        errors = [problem_dict(p) for p in snapshot.problems]
        print(json.dumps({"commit": snapshot.commit.sha if snapshot.commit else None, "dags": rows, "errors": errors}, indent=2))
        return 0
    _print_table(snapshot, rows)
    return 0


def _row(dag, now: datetime) -> dict[str, object]:
    from gitflowd.schedule import next_tick
    upcoming = next_tick(dag, now) if dag.schedule and not dag.paused else None
    return {
        "id": dag.id,
        "schedule": dag.schedule,
        "timezone": dag.timezone,
        "tasks": len(dag.tasks),
        "paused": dag.paused,
        "next_run": upcoming.isoformat() if upcoming else None,
        "next_run_local": format_time(upcoming, dag.timezone) if upcoming else None,
        "description": dag.description,
        "tags": list(dag.tags),
    }


def _print_table(snapshot: Snapshot, rows: list[dict[str, object]]) -> None:
    if rows:
        cells = [
            [r["id"], r["schedule"] or "manual", r["tasks"], "paused" if r["paused"] else r["next_run_local"] or "-", r["description"]]
            for r in rows
        ]
        print(table(["DAG", "SCHEDULE", "TASKS", "NEXT RUN", "DESCRIPTION"], cells))
    elif not snapshot.problems:
        print("no DAGs (add TOML files under dags/ and commit them)")
    if snapshot.problems:
        files = len({p.path for p in snapshot.problems})
        print(f"gitflowd: {files} DAG file(s) failed to load and are not listed:", file=sys.stderr)
        for problem in snapshot.problems:
            print(problem, file=sys.stderr)
