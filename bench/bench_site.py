#!/usr/bin/env python3
"""Workload 5: the static site over a state directory of 1,000 runs of a 20-task DAG.

Makes the state fast and real: the DAG is loaded from a real Git commit and recorded in
the registry as the daemon does; its runs are real journals and logs written with
journal.JournalWriter by tests/runfactory.py (what the engine would write; every tenth run
has a task that failed once and then succeeded), not 1,000 executions. Then times,
median of REPEATS:
  full           Site(state, fresh site dir).render_all()
  incremental    one more run is written, then the warm Site (as the daemon keeps it)
                 renders it: render_run(dag, run)
  cold incr.     the same with a new Site object, as a `gitflowd run` process does (info)
Budgets: incremental <= 100 ms, full <= 15 s.

    python3 bench/bench_site.py [--quick] [--profile]
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from common import BENCH, Figure, cleanup, main, make_repo, median_time, profile, scratch
from shapes import pipeline

from gitflowd import registry
from gitflowd.dag import Dag
from gitflowd.repo import Repo
from gitflowd.runs import run_id_for
from gitflowd.site import Site

sys.path.insert(0, str(BENCH.parent / "tests"))
from runfactory import write_run  # noqa: E402  (the test suite's journal writer, reused)

RUNS, QUICK_RUNS = 1000, 100
TASKS = 20
REPEATS = 3
FULL_BUDGET, INCREMENTAL_BUDGET_MS = 15.0, 100.0
DAG_ID = "site_bench"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_state(root: Path, runs: int) -> tuple[Path, Dag]:
    """A state directory with `runs` finished runs of DAG_ID, which its registry knows
    (loaded from a real commit)."""
    repo_path = make_repo(root / "repo", {f"dags/{DAG_ID}.toml": pipeline(DAG_ID, TASKS)})
    state = root / "state"
    with Repo(repo_path) as repo:
        snapshot = repo.load(repo.resolve())
    registry.record_snapshot(state, snapshot)
    dag = snapshot.dags[DAG_ID].dag
    for index in range(runs):
        add_run(state, dag, index)
    return state, dag


def add_run(state: Path, dag: Dag, index: int) -> str:
    logical = T0 + timedelta(days=index)
    run_id = run_id_for("scheduled", logical)
    outcomes = {t: (["failed", "success"] if index % 10 == 0 and t == "t3" else ["success"]) for t in dag.tasks}
    write_run(state, dag, run_id, logical, outcomes)
    return run_id


def full_render(state: Path, site: Path) -> None:
    cleanup(site)
    Site(state, site).render_all()


def timed_incremental(site: Site, state: Path, dag: Dag, index: int) -> float:
    run_id = add_run(state, dag, index)
    start = time.perf_counter()
    site.render_run(DAG_ID, run_id)
    return time.perf_counter() - start


def median_of(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def figures(quick: bool = False) -> list[Figure]:
    runs = QUICK_RUNS if quick else RUNS
    root = scratch("site")
    try:
        state, dag = make_state(root, runs)
        full = median_time(REPEATS, lambda: full_render(state, root / "site"))
        warm = Site(state, root / "site")
        warm.render_all()
        incremental = median_of([timed_incremental(warm, state, dag, runs + k) for k in range(REPEATS)])
        cold = median_of([timed_incremental(Site(state, root / "site"), state, dag, runs + REPEATS + k) for k in range(REPEATS)])
        pages = sum(1 for _ in (root / "site").rglob("*.html"))
    finally:
        cleanup(root)
    w = "5 site"
    return [
        Figure(w, f"full render, {runs:,} runs x {TASKS} tasks ({pages:,} pages)", full, "s", FULL_BUDGET),
        Figure(w, "incremental render after one more run (warm Site)", incremental * 1000, "ms", INCREMENTAL_BUDGET_MS),
        Figure(w, "incremental render, new Site object (templates compiled)", cold * 1000, "ms", reference="info"),
    ]


def profiles(quick: bool = False) -> None:
    runs = QUICK_RUNS if quick else RUNS
    root = scratch("site-profile")
    try:
        state, dag = make_state(root, runs)
        print("## full render\n" + profile(lambda: full_render(state, root / "site")))
        warm = Site(state, root / "site")
        warm.render_all()
        run_id = add_run(state, dag, runs)
        print("## incremental render\n" + profile(lambda: warm.render_run(DAG_ID, run_id)))
    finally:
        cleanup(root)


if __name__ == "__main__":
    main(figures, profiles)
