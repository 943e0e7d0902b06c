#!/usr/bin/env python3
"""Workloads 1 and 2: orchestration overhead of whole `gitflowd run` processes against the floor.

For each shape (chain, fan) and N, times (median of REPEATS):
  floor   bench/floor.py: same commands, same shell, same order, same parallelism, nothing else
  xargs   `xargs -P2` running the same N commands (no dependencies): the machine's limit
  gitflowd `gitflowd run` of the same DAG from a Git repo, journal durable as in production
and reports ratios and per-task overhead in ms.

    python3 bench/bench_overhead.py [N ...]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import BENCH, best_of, cleanup, gitflowd_cmd, make_repo, scratch, timed
from shapes import SHAPES, to_toml

PARALLELISM = 2
REPEATS = 3
TIMEOUT = 600  # seconds for one `gitflowd run`: a pathological slowdown ends the benchmark, not the session


def time_xargs(n: int) -> float:
    import time

    start = time.perf_counter()
    subprocess.run(f"seq {n} | xargs -P{PARALLELISM} -I{{}} /bin/sh -c true", shell=True, check=True)
    return time.perf_counter() - start


def time_gitflowd(repo: Path, root: Path, dag_id: str) -> float:
    state = root / "state"
    cleanup(state)  # a fresh state each time: every run does the full work
    return timed([*gitflowd_cmd(), "--repo", repo, "--state", state, "--site", root / "site",
                  "run", dag_id, "--parallelism", PARALLELISM], timeout=TIMEOUT)


def measure(shape: str, n: int) -> dict[str, float]:
    root = scratch(f"{shape}{n}")
    try:
        deps = SHAPES[shape](n)
        repo = make_repo(root / "repo", {f"dags/{shape}.toml": to_toml(shape, deps)})
        floor = best_of(REPEATS, timed, [sys.executable, BENCH / "floor.py", shape, n, PARALLELISM])
        xargs = best_of(REPEATS, time_xargs, n)
        ours = best_of(REPEATS, time_gitflowd, repo, root, shape)
    finally:
        cleanup(root)
    return {"floor": floor, "xargs": xargs, "gitflowd": ours}


def report(sizes: list[int]) -> list[str]:
    rows = ["| shape | N | floor s | xargs -P2 s | gitflowd s | ratio to floor | overhead ms/task |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for shape in SHAPES:
        for n in sizes:
            m = measure(shape, n)
            ratio = m["gitflowd"] / m["floor"]
            per_task = (m["gitflowd"] - m["floor"]) / n * 1000
            rows.append(f"| {shape} | {n:,} | {m['floor']:.2f} | {m['xargs']:.2f} | {m['gitflowd']:.2f} | {ratio:.2f} | {per_task:.3f} |")
            print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    report([int(a) for a in sys.argv[1:]] or [100, 1000, 10000])
