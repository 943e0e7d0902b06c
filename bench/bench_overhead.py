#!/usr/bin/env python3
"""Workloads 1 and 2: orchestration overhead of whole `gitflowd run` processes against the floor.

For each shape (chain, fan) and N, times (medians; floor and gitflowd in REPEATS adjacent pairs,
the ratio and the overhead per task taken per pair):
  floor   bench/floor.py: same commands, same shell, same order, same parallelism, nothing else
  contract bench/contract_floor.py: the floor plus only the per-task I/O DESIGN.md requires (a log
           file per attempt, two checksummed journal lines, group fsync): what the contract costs
  xargs   `xargs -P2` running the same N commands (no dependencies): the machine's limit
  gitflowd `gitflowd run --no-render` of the same DAG from a Git repo, journal durable as in
           production: the orchestration overhead the budget is about
  +site    `gitflowd run` as a user runs it, rendering the site while and after it runs
           (every attempt's log page, the run page, the DAG page, the index): reported beside it
and reports ratios and per-task overhead in ms. Before timing, it waits until creating a file in
its scratch tree costs what it normally does (common.wait_for_quiet_disk) and reports that cost.

    python3 bench/bench_overhead.py [N ...]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

from common import BENCH, best_of, cleanup, gitflowd_cmd, make_repo, scratch, timed, wait_for_quiet_disk
from shapes import SHAPES, to_toml

PARALLELISM = 2
REPEATS = 5  # pairs of (floor, gitflowd); the medians are reported
SIDE_REPEATS = 3  # xargs and the run with the site, reported for information
TIMEOUT = 600  # seconds for one `gitflowd run`: a pathological slowdown ends the benchmark, not the session


def time_xargs(n: int) -> float:
    import time

    start = time.perf_counter()
    subprocess.run(f"seq {n} | xargs -P{PARALLELISM} -I{{}} /bin/sh -c true", shell=True, check=True)
    return time.perf_counter() - start


def time_gitflowd(repo: Path, root: Path, dag_id: str, *extra: str) -> float:
    state, site = root / "state", root / "site"
    cleanup(state)  # a fresh state (and site) each time: every run does the full work
    cleanup(site)
    return timed([*gitflowd_cmd(), "--repo", repo, "--state", state, "--site", site,
                  "run", dag_id, "--parallelism", PARALLELISM, *extra], timeout=TIMEOUT)


def time_contract(shape: str, n: int, root: Path) -> float:
    state = root / "contract"
    cleanup(state)
    return timed([sys.executable, BENCH / "contract_floor.py", shape, n, PARALLELISM, state])


def measure(shape: str, n: int) -> dict[str, float]:
    """Floor, contract floor and gitflowd timed one after the other, REPEATS times, the ratios
    taken per triple: this VM's speed drifts over tens of seconds (disk, scheduler), and
    adjacent runs see the same conditions."""
    root = scratch(f"{shape}{n}")
    try:
        deps = SHAPES[shape](n)
        repo = make_repo(root / "repo", {f"dags/{shape}.toml": to_toml(shape, deps)})
        create_us = wait_for_quiet_disk(root)
        runs = [(timed([sys.executable, BENCH / "floor.py", shape, n, PARALLELISM]), time_contract(shape, n, root),
                 time_gitflowd(repo, root, shape, "--no-render")) for _ in range(REPEATS)]
        xargs = best_of(SIDE_REPEATS, time_xargs, n)
        with_site = best_of(SIDE_REPEATS, time_gitflowd, repo, root, shape)
    finally:
        cleanup(root)
    return {"floor": statistics.median(f for f, _, _ in runs), "xargs": xargs,
            "contract": statistics.median(c for _, c, _ in runs), "gitflowd": statistics.median(g for _, _, g in runs),
            "gitflowd_site": with_site, "ratio": statistics.median(g / f for f, _, g in runs),
            "contract_ratio": statistics.median(c / f for f, c, _ in runs),
            "over_contract": statistics.median(g / c for _, c, g in runs),
            "per_task_ms": statistics.median((g - f) / n * 1000 for f, _, g in runs), "create_us": create_us}


def report(sizes: list[int]) -> list[str]:
    rows = ["| shape | N | floor s | xargs -P2 s | contract floor s | gitflowd s | ratio to floor | overhead ms/task | with site s | file creation us |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for shape in SHAPES:
        for n in sizes:
            m = measure(shape, n)
            ratio, per_task = m["ratio"], m["per_task_ms"]
            rows.append(f"| {shape} | {n:,} | {m['floor']:.2f} | {m['xargs']:.2f} | {m['contract']:.2f} | {m['gitflowd']:.2f} | "
                        f"{ratio:.2f} | {per_task:.3f} | {m['gitflowd_site']:.2f} | {m['create_us']:.0f} |")
            print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    report([int(a) for a in sys.argv[1:]] or [100, 1000, 10000])
