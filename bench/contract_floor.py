#!/usr/bin/env python3
"""The contract floor: floor.py plus only the per-task I/O that DESIGN.md requires of a run.

What gitflowd must do for every task, done as thinly as Python allows, with nothing else
(no engine, no state, no progress lines, no Git, no checkout):
- a log file per attempt, created before the spawn, on the task's stdout and stderr;
- the task spawned with posix_spawn in its own session with the GITFLOWD_* variables;
- a `task_started` and a `task_finished` journal line each, JSON with a CRC-32 of its
  bytes, the lines of one round in one write;
- group commit: an fsync before a task starts whose upstream's record is not yet durable,
  done ahead, while every slot is busy, when it can be, and at least every 50 ms
  (LISTENER_LAG), as the engine does.
The gap between this and floor.py is what the durability and logging contract costs on the
machine; the gap between gitflowd and this is gitflowd's own.

    python3 contract_floor.py {chain|fan} N PARALLELISM STATE_DIR
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
import zlib
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import SHAPES  # noqa: E402

LAG = 0.05


class Journal:
    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.lines: list[bytes] = []
        self.seq = self.durable = -1
        self.synced_at = time.monotonic()

    def record(self, **fields: object) -> int:
        self.seq += 1
        body = json.dumps({**fields, "seq": self.seq, "v": 1}, sort_keys=True, separators=(",", ":")).encode()
        self.lines.append(b'%s,"crc":%d}\n' % (body[:-1], zlib.crc32(body)))
        return self.seq

    def write(self, sync: bool = False) -> None:
        if self.lines:
            os.write(self.fd, b"".join(self.lines))
            self.lines = []
        if sync or time.monotonic() - self.synced_at >= LAG:
            os.fsync(self.fd)
            self.durable, self.synced_at = self.seq, time.monotonic()


def run(deps: dict[str, list[str]], parallelism: int, state: Path) -> None:
    waiting = {task: len(d) for task, d in deps.items()}
    children: dict[str, list[str]] = {task: [] for task in deps}
    for task, task_deps in deps.items():
        for dep in task_deps:
            children[dep].append(task)
    logs = state / "logs"
    logs.mkdir(parents=True)
    journal = Journal(state / "run.jsonl")
    env = {**os.environ, "GITFLOWD_DAG": "bench", "GITFLOWD_RUN_ID": "manual__bench", "GITFLOWD_WORKSPACE": str(state)}
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    poller = select.epoll()
    # (task, seq it depends on), first ready first launched, as the engine does: launching the
    # newest first would make nearly every chain launch wait for an fsync of its upstream.
    ready = deque((task, -1) for task, count in waiting.items() if count == 0)
    running: dict[int, tuple[str, int, float]] = {}
    while ready or running:
        while ready and len(running) < parallelism:
            task, needs = ready.popleft()
            if needs > journal.durable:
                journal.write(sync=True)
            log = os.open(logs / f"{task}.1.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)]
            pid = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "true"], {**env, "GITFLOWD_TASK": task, "GITFLOWD_ATTEMPT": "1"},
                                 file_actions=actions, setsid=True)
            os.close(log)
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.EPOLLIN)
            running[pidfd] = (task, pid, time.monotonic())
            journal.record(event="task_started", task=task, attempt=1, pid=pid)
        # every slot busy: make the next launches' records durable while the tasks run (sync ahead)
        journal.write(sync=bool(ready) and ready[0][1] > journal.durable)  # the next to launch
        for pidfd, _ in poller.poll():
            task, pid, started = running.pop(pidfd)
            poller.unregister(pidfd)
            os.close(pidfd)
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            seq = journal.record(event="task_finished", task=task, attempt=1, exit_code=code,
                                 duration=round(time.monotonic() - started, 6))
            for child in children[task]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append((child, seq))
        journal.write()
    journal.write(sync=True)


if __name__ == "__main__":
    shape, n, parallelism, state_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    run(SHAPES[shape](n), parallelism, state_dir)
