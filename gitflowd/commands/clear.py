"""`gitflowd clear DAG RUN_ID --task T [--task T2] [--downstream]`.

Resets chosen tasks (succeeded ones too) to pending by writing `tasks_cleared`, so that
`gitflowd resume` runs them again (with everything downstream of them).
"""

from __future__ import annotations

import argparse

from gitflowd import settings
from gitflowd.commands.handoff import daemon_holder, hand_over
from gitflowd.lock import StateLock
from gitflowd.statedir import StateDir


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "clear", parents=[common], help="reset tasks of a run so that resume runs them again",
        description="Reset tasks of a run (succeeded ones too) so that `gitflowd resume` runs them again.",
    )
    parser.add_argument("dag", metavar="DAG", help="DAG id")
    parser.add_argument("run_id", metavar="RUN_ID", help="run id")
    parser.add_argument("--task", action="append", required=True, metavar="TASK", help="task to reset (repeatable)")
    parser.add_argument("--downstream", action="store_true", help="also reset every task downstream of them")
    parser.add_argument("--no-render", action="store_true",
                        help="do not update the run's pages on the site (`gitflowd render` catches up later)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitflowd.runs import clear_tasks, open_run, tasks_to_clear
    from gitflowd.site_listener import render_once

    where = settings.resolve(args.repo, args.state, args.site)
    state = StateDir(where.state)
    if daemon_holder(state):
        return hand_over(state, "clear", {"dag": args.dag, "run_id": args.run_id, "tasks": args.task, "downstream": args.downstream})
    with StateLock(state.lock_path, "run"):
        current, writer = open_run(state, args.dag, args.run_id)
        with writer:
            tasks = tasks_to_clear(current, args.task, args.downstream)
            clear_tasks(writer, current, tasks)
    if not args.no_render:  # the site says it waits for a resume
        render_once(where.state, where.site, current.dag_id, current.run_id)
    print(f"cleared {len(tasks)} task(s) of run {current.run_id}: {', '.join(tasks)}")
    print(f"run them with: gitflowd resume {current.dag_id} {current.run_id}")
    return 0
