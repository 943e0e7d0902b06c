"""Helpers shared by the benchmarks: timing whole processes, making Git repos, reporting."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def gitflowd_cmd() -> list[str]:
    """The installed console script next to this interpreter, else `python -m gitflowd`."""
    compile_package()
    script = Path(sys.executable).parent / "gitflowd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gitflowd"]


@functools.cache
def compile_package() -> None:
    """Byte-compile gitflowd, as `pip install` does. Without it, an environment that sets
    PYTHONDONTWRITEBYTECODE (this one does) or an editable checkout never written to makes
    every measured process compile its modules from source: 50 ms of a 140 ms start."""
    import compileall

    import gitflowd

    compileall.compile_dir(Path(gitflowd.__file__).parent, quiet=1)


def timed(cmd: Sequence[object], **kwargs: object) -> float:
    """Wall seconds of one whole process; raises if it fails."""
    start = time.perf_counter()
    subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - start


def best_of(repeats: int, fn, *args: object) -> float:
    """Median of `repeats` runs: robust to one noisy neighbour, honest about typical cost."""
    return statistics.median(fn(*args) for _ in range(repeats))


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(root: Path, files: Mapping[str, str], message: str = "initial") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    commit(root, files, message)
    return root


def commit(repo: Path, files: Mapping[str, str], message: str = "change") -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def scratch(name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"gitflowd-bench-{name}-"))
    return path


TRASH = "GITFLOWD_BENCH_TRASH"  # set by run_all.py: where clean-ups put trees until the end


def cleanup(path: Path) -> None:
    """Remove a scratch tree, or with $GITFLOWD_BENCH_TRASH set, move it there to be deleted at
    the end: deleting thousands of files makes this VM's next file creations 6-40x slower for
    tens of seconds (ext4 with discard), which the next measurement would pay."""
    trash = os.environ.get(TRASH)
    if trash and Path(path).exists():
        try:
            os.rename(path, tempfile.mkdtemp(prefix="t", dir=trash) + "/tree")
            return
        except OSError:  # another filesystem: delete now
            pass
    shutil.rmtree(path, ignore_errors=True)


def file_creation_us(directory: Path, count: int = 200) -> float:
    """CPU microseconds to create one empty file in a new folder under `directory` (kept:
    deleting them would slow the next creations down)."""
    folder = Path(tempfile.mkdtemp(prefix="probe-", dir=directory))
    start = time.process_time()
    for i in range(count):
        os.close(os.open(folder / f"t{i}.1.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644))
    return (time.process_time() - start) / count * 1e6


QUIET_DISK_US = 40.0  # an empty file costs 13-20 us on this VM's ext4 when nothing was deleted nearby


def wait_for_quiet_disk(directory: Path, timeout: float = 240.0) -> float:
    """Wait until creating a file under `directory` costs what it normally does, and return
    that cost in microseconds. On this VM's ext4 (mounted with `discard`), files deleted
    in the same block group make every creation cost 0.15-0.8 ms of kernel CPU for a minute
    or two: workload 1 creates a log file per task and would measure that instead of
    gitflowd. Gives up after `timeout` seconds and returns the cost it saw (reported)."""
    end = time.monotonic() + timeout
    while (cost := file_creation_us(directory)) > QUIET_DISK_US and time.monotonic() < end:
        time.sleep(10)
    return cost


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"


@dataclass(frozen=True)
class Figure:
    """One measured figure, beside its budget (an upper bound) or a reference such as a floor."""

    workload: str  # e.g. "3 reload"
    name: str
    value: float
    unit: str  # s, ms, MB, x (a ratio)
    budget: float | None = None
    reference: str = ""  # what the figure is compared with, when not a budget

    @property
    def verdict(self) -> str:
        if self.budget is None:
            return ""
        return "PASS" if self.value <= self.budget else "MISS"

    def row(self) -> str:
        budget = f"<= {fmt(self.budget, self.unit)}" if self.budget is not None else self.reference or "-"
        return f"| {self.workload} | {self.name} | {fmt(self.value, self.unit)} | {budget} | {self.verdict or 'info'} |"


TABLE_HEAD = ["| workload | figure | measured | budget / floor | verdict |", "|---|---|---:|---|---|"]


def fmt(value: float, unit: str) -> str:
    digits = 3 if abs(value) < 1 else 2 if abs(value) < 100 else 0
    return f"{value:,.{digits}f} {unit}".strip()


def print_figures(figures: Sequence[Figure]) -> None:
    print("\n".join([*TABLE_HEAD, *(f.row() for f in figures)]), flush=True)


def median_time(repeats: int, fn: Callable[[], object]) -> float:
    """Median wall seconds of `fn()` over `repeats` calls (in this process)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile(fn: Callable[[], object], limit: int = 25) -> str:
    """Where `fn()` spends its time: the top functions by cumulative time (cProfile)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(fn)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def main(figures: Callable[[bool], Sequence[Figure]], profiles: Callable[[bool], None] | None = None) -> None:
    """A benchmark script's command line: `[--quick] [--profile]`."""
    quick = "--quick" in sys.argv
    if profiles is not None and "--profile" in sys.argv:
        profiles(quick)
    else:
        print_figures(figures(quick))
