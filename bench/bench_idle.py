#!/usr/bin/env python3
"""Workload 7: an idle daemon with 100 DAGs loaded and nothing due.

A repository of DAGS scheduled pipelines (20 tasks each, `@daily` from a start date years
ahead, so no tick is due); a real `gitflowd daemon` follows it. Once it is ready and has
settled (SETTLE seconds: the first site render), CPU seconds (utime + stime from
/proc/<pid>/stat) are read before and after WINDOW seconds of idling, and the resident
memory (VmRSS from /proc/<pid>/status) at the end; also the same for the daemon together
with its child processes (the Repo's `git cat-file --batch` process), for information.
Budgets: CPU <= 0.3 s over 30 s, RSS <= 80 MB.

    python3 bench/bench_idle.py [--quick]
"""

from __future__ import annotations

import time

from common import Figure, cleanup, main, make_repo, scratch
from daemon_process import READY, DaemonProcess, tree_usage, usage
from shapes import pipeline

DAGS = 100
TASKS = 20
WINDOW, QUICK_WINDOW = 30.0, 5.0
SETTLE = 2.0
CPU_BUDGET, RSS_BUDGET_MB = 0.3, 80.0  # CPU: per 30 s
FUTURE = "2031-01-01"


def figures(quick: bool = False) -> list[Figure]:
    window = QUICK_WINDOW if quick else WINDOW
    root = scratch("idle")
    try:
        files = {f"dags/d{i:03d}.toml": pipeline(f"d{i:03d}", TASKS, start=FUTURE) for i in range(DAGS)}
        repo = make_repo(root / "repo", files)
        with DaemonProcess(repo, root) as daemon:
            daemon.wait_for(READY)
            time.sleep(SETTLE)
            before, tree_before = usage(daemon.pid), tree_usage(daemon.pid)
            time.sleep(window)
            after, tree_after = usage(daemon.pid), tree_usage(daemon.pid)
            if daemon.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited while idle: {daemon.tail()}")
            loaded = [line for _, line in daemon.lines if "reloaded" in line]
    finally:
        cleanup(root)
    if not loaded or f"{DAGS} DAG" not in loaded[-1]:
        raise RuntimeError(f"the daemon did not report {DAGS} DAGs loaded: {loaded[-1:] or 'no reload line'}")
    w = "7 idle"
    return [
        Figure(w, f"CPU over {window:g} s idle, {DAGS} DAGs loaded", after.cpu - before.cpu, "s", CPU_BUDGET * window / WINDOW),
        Figure(w, "resident memory (VmRSS) of the daemon", after.rss_mb, "MB", RSS_BUDGET_MB),
        Figure(w, "peak resident memory (VmHWM), start-up included", after.peak_rss_mb, "MB", reference="info"),
        Figure(w, "CPU of daemon + child processes over the window", tree_after.cpu - tree_before.cpu, "s", reference="info"),
        Figure(w, "RSS of daemon + child processes", tree_after.rss_mb, "MB", reference="info"),
    ]


if __name__ == "__main__":
    main(figures)
