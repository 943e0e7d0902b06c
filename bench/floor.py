#!/usr/bin/env python3
"""The floor: the thinnest runner of a DAG of shell commands.

Starts every task's command through the same shell (`/bin/sh -c`), in dependency order, at most
`parallelism` at a time, and nothing else: no journal, no logs, no templating. gitflowd's overhead
is measured against this.

    python3 floor.py {chain|fan} N PARALLELISM [CMD]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import SHAPES  # noqa: E402


def run(deps: dict[str, list[str]], parallelism: int, cmd: str) -> None:
    waiting = {task: len(d) for task, d in deps.items()}
    children: dict[str, list[str]] = {task: [] for task in deps}
    for task, task_deps in deps.items():
        for dep in task_deps:
            children[dep].append(task)
    ready = [task for task, count in waiting.items() if count == 0]
    running: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
    while ready or running:
        while ready and len(running) < parallelism:
            task = ready.pop()
            proc = subprocess.Popen(["/bin/sh", "-c", cmd])
            running[proc.pid] = (task, proc)
        pid, status = os.wait()
        task, proc = running.pop(pid)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        for child in children[task]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)


if __name__ == "__main__":
    shape, n, parallelism = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    run(SHAPES[shape](n), parallelism, sys.argv[4] if len(sys.argv) > 4 else "true")
