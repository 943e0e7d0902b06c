"""`gitflowd show DAG [--rev REV] [--dot | --json]`: one DAG's settings and tasks.

Tasks print in topological order (file order among equals) with kind, trigger rule,
retries, timeout and dependencies; `--dot` prints the graph for Graphviz
(`gitflowd show umbrella_demand --dot | dot -Tsvg > dag.svg`).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from gitflowd.commands.common import find_dag, format_duration, format_time, load_snapshot, table
from gitflowd.dag import Dag, Task


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "show", parents=[common], help="show one DAG's tasks in order (or its graph as DOT)",
        description="Show a DAG at the head of the branch (or --rev): settings, then tasks in topological order.",
    )
    parser.add_argument("dag", metavar="DAG", help="DAG id")
    parser.add_argument("--rev", metavar="REV", help="commit, branch or tag (default: head of the branch)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--dot", action="store_true", help="print the task graph as Graphviz DOT")
    output.add_argument("--json", action="store_true", help="print the DAG as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    snapshot = load_snapshot(args, args.rev)
    dag = find_dag(snapshot, args.dag, args.rev)
    if args.dot:
        print(to_dot(dag))
    elif args.json:
        print(json.dumps(dag.to_dict(), indent=2))
    else:
        where = f" at {snapshot.commit.short}" if snapshot.commit else ""
        print(describe(dag, where))
    return 0


def describe(dag: Dag, where: str = "") -> str:
    lines = [f"DAG {dag.id}  ({dag.path}{where})"]
    if dag.description:
        lines.append(f"  {dag.description}")
    settings = _settings(dag)
    split = next(i for i, item in enumerate(settings) if item.startswith("catchup"))
    lines += ["  " + "   ".join(settings[:split]), "  " + "   ".join(settings[split:])]
    lines.append("")
    rows = [_task_row(dag.tasks[task_id]) for task_id in dag.topological_order()]
    lines.append(table(["TASK", "KIND", "TRIGGER", "RETRIES", "TIMEOUT", "DEPS"], rows))
    return "\n".join(lines)


def _settings(dag: Dag) -> list[str]:
    from gitflowd.schedule import next_tick
    upcoming = next_tick(dag, datetime.now(timezone.utc)) if dag.schedule and not dag.paused else None
    items = [f"schedule: {dag.schedule or 'manual'} ({dag.timezone})"]
    if dag.schedule:
        items.append(f"next run: {'paused' if dag.paused else format_time(upcoming, dag.timezone)}")
    if dag.start_date:
        items.append(f"start: {format_time(dag.start_date, dag.timezone)}")
    if dag.end_date:
        items.append(f"end: {format_time(dag.end_date, dag.timezone)}")
    items.append(f"catchup: {'yes' if dag.catchup else 'no'}")
    items.append(f"max active runs/tasks: {dag.max_active_runs}/{dag.max_active_tasks}")
    if dag.tags:
        items.append(f"tags: {', '.join(dag.tags)}")
    return items


def _task_row(task: Task) -> list[str]:
    retries = str(task.retries)
    if task.retries:
        retries += f" ({format_duration(task.retry_delay)}"
        retries += f" x{task.retry_backoff:g})" if task.retry_backoff != 1.0 else ")"
    return [task.id, task.kind, task.trigger_rule.value, retries, format_duration(task.timeout), ", ".join(task.deps) or "-"]


def to_dot(dag: Dag) -> str:
    """The task graph as Graphviz DOT; edges point from a dependency to its dependent."""
    lines = [f"digraph {_quote(dag.id)} {{", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="sans-serif"];']
    for task_id in dag.topological_order():
        lines.append(f"  {_quote(task_id)};")
    for task_id in dag.topological_order():
        for dep in dag.tasks[task_id].deps:
            lines.append(f"  {_quote(dep)} -> {_quote(task_id)};")
    lines.append("}")
    return "\n".join(lines)


def _quote(text: str) -> str:
    return json.dumps(text)
