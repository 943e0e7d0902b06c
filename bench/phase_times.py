#!/usr/bin/env python3
"""Where a whole `gitflowd run` spends its wall time, phase by phase, without a profiler.

Wraps the engine's, executor's and journal's methods with a perf_counter and runs the CLI
in this process; prints, per method, total seconds, calls and microseconds a call, and the
process's own CPU time. (cProfile roughly doubles the cost of this loop and hides where
the wall time goes: the spawn is mostly waiting.)

    python3 bench/phase_times.py --repo R --state S run DAG --no-render --parallelism 2
"""

from __future__ import annotations

import atexit
import collections
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from gitflowd import engine, journal, progress
from gitflowd.executors import local

WRAPPED = {
    engine.Engine: ("_launch", "_complete", "_emit", "_spec", "_deliver", "_make_durable", "_sync_ahead"),
    local.LocalExecutor: ("submit", "wait", "_open_log", "_spawn", "_reap", "_start"),
    journal.JournalWriter: ("append", "sync"),
    progress.Progress: ("on_record",),
}
seconds: dict[str, float] = collections.defaultdict(float)
calls: collections.Counter[str] = collections.Counter()


def timed(label: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - start
            calls[label] += 1
    return wrapper


def report(started: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"wall {time.perf_counter() - started:.2f} s, own CPU {usage.ru_utime + usage.ru_stime:.2f} s",
          file=sys.stderr)
    for label, total in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"  {label:32s} {total:7.3f} s {calls[label]:7d} calls {total / calls[label] * 1e6:8.1f} us",
              file=sys.stderr)


if __name__ == "__main__":
    for cls, names in WRAPPED.items():
        for name in names:
            if hasattr(cls, name):
                setattr(cls, name, timed(f"{cls.__name__}.{name}", getattr(cls, name)))
    atexit.register(report, time.perf_counter())
    from gitflowd.cli import main
    sys.exit(main(sys.argv[1:]))
