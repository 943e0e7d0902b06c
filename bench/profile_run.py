#!/usr/bin/env python3
"""Where a whole `gitflowd run` process spends its time: workload 1 under cProfile.

Builds the same repository as bench_overhead.py (shape, N no-op tasks), runs
`python -m cProfile -m gitflowd run` once at parallelism 2 and prints the top functions
by cumulative time. cProfile sees the main thread only (the engine, and the final site
render it waits for); the site's timer thread shows up as time the main thread waits.

    python3 bench/profile_run.py {chain|fan} N [LINES [RUN OPTIONS...]]   e.g. 40 --no-render
"""

from __future__ import annotations

import pstats
import sys

from common import cleanup, make_repo, scratch, timed
from shapes import SHAPES, to_toml


def profile_run(shape: str, n: int, lines: int, *options: str) -> None:
    root = scratch(f"profile-{shape}{n}")
    try:
        repo = make_repo(root / "repo", {f"dags/{shape}.toml": to_toml(shape, SHAPES[shape](n))})
        out = root / "run.prof"
        seconds = timed([sys.executable, "-m", "cProfile", "-o", out, "-m", "gitflowd", "--repo", repo, "--state", root / "state",
                         "--site", root / "site", "run", shape, "--parallelism", 2, *options], cwd=root)
        print(f"{shape} N={n:,}: {seconds:.2f} s under cProfile")
        pstats.Stats(str(out)).strip_dirs().sort_stats("cumulative").print_stats(lines)
    finally:
        cleanup(root)


if __name__ == "__main__":
    profile_run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 40, *sys.argv[4:])
