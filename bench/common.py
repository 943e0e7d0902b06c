"""Helpers shared by the benchmarks: timing whole processes, making Git repos, reporting."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def gitflowd_cmd() -> list[str]:
    """The installed console script next to this interpreter, else `python -m gitflowd`."""
    script = Path(sys.executable).parent / "gitflowd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gitflowd"]


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


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"
