"""Shared fixtures: real Git repositories and the real `gitflowd` CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its stdout (raises on failure)."""
    env = {**os.environ, **GIT_ENV, "HOME": str(repo)}
    done = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


class GitRepo:
    """A real Git work tree in a temporary directory, on branch `main`."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", "main")

    def write(self, files: Mapping[str, str]) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit(self, files: Mapping[str, str] | None = None, message: str = "change", remove: tuple[str, ...] = ()) -> str:
        """Write `files`, delete `remove`, commit everything, return the new commit sha."""
        self.write(files or {})
        for name in remove:
            git(self.path, "rm", "-q", name)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.path, "rev-parse", "HEAD")

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD")


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., GitRepo]:
    """`make_repo({"dags/a.toml": "..."})` -> a repo with one commit of those files."""
    counter = iter(range(1000))

    def _make(files: Mapping[str, str] | None = None, name: str | None = None) -> GitRepo:
        repo = GitRepo(tmp_path / (name or f"repo{next(counter)}"))
        if files is not None:
            repo.commit(files, message="initial")
        return repo

    return _make


def run_cli(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m gitflowd ARGS` as a real process; returns the completed process."""
    full_env = {**os.environ, **GIT_ENV, **(env or {})}
    for key in ("GITFLOWD_REPO", "GITFLOWD_STATE", "GITFLOWD_SITE"):
        if env is None or key not in env:
            full_env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "gitflowd", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


def hang_up_terminal(args: list[str], cwd: Path, started: Callable[[], bool], then: Callable[[], None] = lambda: None) -> int:
    """Run `python -m gitflowd ARGS` on a pseudo-terminal; once `started()`, close the terminal
    (its next write gets EIO) and send SIGHUP, as a closed window or a dropped ssh session
    does; call `then()` and return the exit code. The process never outlives the call."""
    import pty
    import signal
    import time

    main, child = pty.openpty()
    env = {k: v for k, v in {**os.environ, **GIT_ENV}.items() if not k.startswith("GITFLOWD_")}
    proc = subprocess.Popen([sys.executable, "-m", "gitflowd", *args], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=child, stderr=child)
    os.close(child)
    try:
        deadline = time.monotonic() + 60
        while not started():
            assert time.monotonic() < deadline and proc.poll() is None, f"never started: {args}"
            time.sleep(0.05)
        os.close(main)
        main = -1
        proc.send_signal(signal.SIGHUP)
        then()
        return proc.wait(60)
    finally:
        if main >= 0:
            os.close(main)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
