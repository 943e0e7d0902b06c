"""A real `gitflowd daemon` process for the benchmarks, and what /proc says about it.

`DaemonProcess(repo, root)` starts `gitflowd daemon` (INFO logs) on its own state and site
directories with stderr piped to a reader thread that stamps every log line with
`time.monotonic()` on arrival; `wait_for(text)` blocks until a line containing `text`
arrives (its arrival time is the moment the daemon said it). `usage()` reads CPU seconds
and resident memory from /proc for the daemon and for its live child processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common import gitflowd_cmd

READY = "daemon ready"
TICKS = os.sysconf("SC_CLK_TCK")


class DaemonExited(RuntimeError):
    pass


class DaemonProcess:
    def __init__(self, repo: Path, root: Path, *extra: str):
        cmd = [*gitflowd_cmd(), "daemon", "--repo", str(repo), "--state", str(root / "state"),
               "--site", str(root / "site"), *extra]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 60.0, after: int = 0) -> float:
        """Arrival time of the first line from index `after` on that contains `text`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for stamp, line in self.lines[after:]:
                    if text in line:
                        return stamp
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise DaemonExited(f"gitflowd daemon exited ({self.proc.returncode}) before {text!r}: {self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {text!r} from gitflowd daemon within {timeout:g}s: {self.tail()}")
                self._cond.wait(min(left, 0.5))

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def tail(self, count: int = 5) -> str:
        with self._cond:
            return " | ".join(line for _, line in self.lines[-count:]) or "(no output)"

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Usage:
    cpu: float  # user + system seconds
    rss_mb: float
    peak_rss_mb: float


def usage(pid: int) -> Usage:
    """CPU seconds (utime + stime, /proc/<pid>/stat) and VmRSS / VmHWM of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of proc(5)
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return Usage(cpu, _kb(status.get("VmRSS")) / 1024, _kb(status.get("VmHWM")) / 1024)


def _kb(value: str | None) -> float:
    return float(value.split()[0]) if value else 0.0


def descendants(pid: int) -> list[int]:
    """Live processes below `pid` (e.g. the Repo's `git cat-file --batch` process)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def tree_usage(pid: int) -> Usage:
    """The daemon and its live descendants together."""
    total = usage(pid)
    for child in descendants(pid):
        try:
            part = usage(child)
        except (OSError, IndexError, ValueError):
            continue
        total = Usage(total.cpu + part.cpu, total.rss_mb + part.rss_mb, total.peak_rss_mb + part.peak_rss_mb)
    return total
