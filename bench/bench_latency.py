#!/usr/bin/env python3
"""Workload 4: commit-to-reload latency of a running, watching `gitflowd daemon`.

A repository of DAGS manual-only pipelines (20 tasks each, so nothing runs); a real
daemon follows it (inotify). COMMITS times: change one DAG file, `git add`, then
`git commit`; the clock starts when `git commit` returns and stops when the daemon's
stderr line `reloaded <sha>` arrives (logged once the new head is loaded and recorded in
the registry). Commits are SPACING seconds apart, so the site render that follows each
reload is not counted in the next one. Reports p50 and p95; then, for information, the
p50 of BIG_COMMITS commits in a repository of BIG_DAGS files (the reload of a big registry).
Budgets: p50 <= 100 ms, p95 <= 300 ms.

    python3 bench/bench_latency.py [--quick]
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

from common import Figure, cleanup, git, main, make_repo, scratch
from daemon_process import READY, DaemonProcess
from shapes import pipeline

DAGS = 10
TASKS = 20
COMMITS, QUICK_COMMITS = 50, 10
BIG_DAGS, BIG_COMMITS, BIG_SPACING = 1000, 10, 1.5  # its site render after a reload takes ~0.5 s
SPACING = 0.3
P50_BUDGET_MS, P95_BUDGET_MS = 100.0, 300.0


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def dag_name(index: int, dags: int) -> str:
    return f"p{index % dags:04d}"


def commit_and_wait(daemon: DaemonProcess, repo: Path, number: int, dags: int) -> float:
    """Seconds from `git commit` returning to the daemon's reload line for that commit."""
    name = dag_name(number, dags)
    (repo / "dags" / f"{name}.toml").write_text(pipeline(name, TASKS, schedule=None, variant=number))
    git(repo, "add", "-A")
    mark = daemon.mark()
    git(repo, "commit", "-q", "-m", f"change {number}")
    committed = time.monotonic()
    sha = git(repo, "rev-parse", "HEAD")
    return daemon.wait_for(f"reloaded {sha}", timeout=30, after=mark) - committed


def measure(commits: int, dags: int = DAGS, spacing: float = SPACING) -> list[float]:
    root = scratch("latency")
    try:
        files = {f"dags/{dag_name(i, dags)}.toml": pipeline(dag_name(i, dags), TASKS, schedule=None) for i in range(dags)}
        repo = make_repo(root / "repo", files)
        with DaemonProcess(repo, root) as daemon:
            daemon.wait_for(READY, timeout=300)
            latencies = []
            for number in range(1, commits + 1):
                time.sleep(spacing)
                latencies.append(commit_and_wait(daemon, repo, number, dags))
    finally:
        cleanup(root)
    return latencies


def figures(quick: bool = False) -> list[Figure]:
    commits = QUICK_COMMITS if quick else COMMITS
    latencies = [s * 1000 for s in measure(commits)]
    w = "4 latency"
    found = [
        Figure(w, f"commit to reload, p50 of {commits} commits ({DAGS} DAGs)", percentile(latencies, 0.50), "ms", P50_BUDGET_MS),
        Figure(w, f"commit to reload, p95 of {commits} commits", percentile(latencies, 0.95), "ms", P95_BUDGET_MS),
        Figure(w, "commit to reload, mean / max", statistics.mean(latencies), "ms", reference=f"max {max(latencies):.0f} ms"),
    ]
    if not quick:
        big = [s * 1000 for s in measure(BIG_COMMITS, BIG_DAGS, BIG_SPACING)]
        found.append(Figure(w, f"commit to reload with {BIG_DAGS:,} DAGs, p50 of {BIG_COMMITS}", percentile(big, 0.50), "ms", reference="info"))
    return found


if __name__ == "__main__":
    main(figures)
