#!/usr/bin/env python3
"""What a `posix_spawn` costs, two tasks at a time, after the process did CPU work or not.

On the 2-core benchmark VM the answer is bistable and set by what came just before the
loop: 0.17 ms per spawn from a process that was idle, ~0.45 ms after 0.1-0.5 s of CPU work
(as loading a big DAG is), 0.17 ms again if a 50 ms sleep follows that work. The spawn
waits (vfork) until the child has called exec, so it includes the wait for a CPU.

    python3 bench/spawn_placement.py BUSY_SECONDS SLEEP_SECONDS [SPAWNS]
"""

from __future__ import annotations

import os
import sys
import time


def spawn_loop(count: int) -> float:
    """Mean seconds per posix_spawn of `sh -c true`, at most two children at once."""
    env, running, spent, started = dict(os.environ), set(), 0.0, 0
    while started < count or running:
        while started < count and len(running) < 2:
            begin = time.perf_counter()
            running.add(os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "true"], env, setsid=True))
            spent += time.perf_counter() - begin
            started += 1
        running.discard(os.wait()[0])
    return spent / count


if __name__ == "__main__":
    busy, nap = float(sys.argv[1]), float(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    end = time.perf_counter() + busy
    while time.perf_counter() < end:
        pass
    time.sleep(nap)
    for _ in range(3):
        print(f"busy {busy} s, sleep {nap} s: {spawn_loop(count) * 1000:.3f} ms per spawn", flush=True)
