"""The watcher wakes on real commits, pushes and inbox renames (real inotify, real git)."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import GitRepo, git
from gitflowd.repo import Repo
from gitflowd.watch import FALLBACK_POLL, GIT, INBOX, Burst, Watcher

WAIT = 20.0  # generous: the machine is shared


class Wakes:
    """Records wake-ups; `wait_for(kind)` blocks until one of that kind arrives."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.cond = threading.Condition()

    def __call__(self, kind: str) -> None:
        with self.cond:
            self.kinds.append(kind)
            self.cond.notify_all()

    def wait_for(self, kind: str, timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: kind in self.kinds, timeout)

    def clear(self) -> None:
        with self.cond:
            self.kinds.clear()


def watching(repo_git_dir: Path, branch: str | None, inbox: Path | None, poll: float | None = None) -> tuple[Watcher, Wakes]:
    wakes = Wakes()
    watcher = Watcher(repo_git_dir, branch, inbox, wakes, poll=poll)
    watcher.start()
    return watcher, wakes


@pytest.mark.parametrize("poll", [None, 0.1])
def test_a_commit_on_the_followed_branch_wakes(make_repo: Callable[..., GitRepo], poll: float | None) -> None:
    repo = make_repo({"a.txt": "1"})
    watcher, wakes = watching(repo.path / ".git", "main", None, poll)
    try:
        assert watcher.alive
        repo.commit({"a.txt": "2"})
        assert wakes.wait_for(GIT)
    finally:
        watcher.stop()
    assert not watcher.alive


def test_other_branches_and_work_tree_edits_do_not_wake(make_repo: Callable[..., GitRepo]) -> None:
    repo = make_repo({"a.txt": "1"})
    git(repo.path, "branch", "other")
    watcher, wakes = watching(repo.path / ".git", "main", None)
    try:
        (repo.path / "a.txt").write_text("uncommitted")
        git(repo.path, "update-ref", "refs/heads/other", "HEAD")
        git(repo.path, "tag", "v1")
        # a sentinel we know wakes: everything before it was delivered first, in order
        repo.commit({"a.txt": "2"})
        assert wakes.wait_for(GIT)
        time.sleep(0.3)
        assert set(wakes.kinds) == {GIT}
    finally:
        watcher.stop()


def test_a_push_to_a_bare_repository_wakes(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    work = make_repo({"a.txt": "1"})
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(work.path), str(bare))
    git(work.path, "remote", "add", "origin", str(bare))
    watcher, wakes = watching(bare, "main", None)
    try:
        for i in range(10):
            work.commit({"a.txt": str(i)})
        git(work.path, "push", "-q", "origin", "main")
        assert wakes.wait_for(GIT)
    finally:
        watcher.stop()


def test_packed_refs_rewrite_wakes(make_repo: Callable[..., GitRepo]) -> None:
    repo = make_repo({"a.txt": "1"})
    watcher, wakes = watching(repo.path / ".git", "main", None)
    try:
        git(repo.path, "pack-refs", "--all")
        assert wakes.wait_for(GIT)
    finally:
        watcher.stop()


def test_a_request_renamed_into_the_inbox_wakes(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    repo = make_repo({"a.txt": "1"})
    inbox = tmp_path / "state" / "inbox"
    inbox.mkdir(parents=True)
    watcher, wakes = watching(repo.path / ".git", "main", inbox)
    try:
        (inbox / ".x.json.tmp").write_text("{}")
        (inbox / ".x.json.tmp").rename(inbox / "1-x.json")
        assert wakes.wait_for(INBOX)
        assert GIT not in wakes.kinds
    finally:
        watcher.stop()


def test_burst_waits_for_quiet_and_absorbs_the_burst() -> None:
    burst = Burst(quiet=0.05, limit=1.0)
    assert burst.deadline() is None and burst.take(100.0) == 0
    for i in range(10):
        burst.note(i * 0.01)
    assert burst.deadline() == pytest.approx(0.14)
    assert burst.take(0.1) == 0  # still inside the burst
    assert burst.take(0.14) == 10
    assert burst.deadline() is None and burst.take(5.0) == 0


def test_burst_is_due_at_the_limit_even_if_events_keep_coming() -> None:
    burst = Burst(quiet=0.05, limit=0.2)
    now = 0.0
    while burst.take(now) == 0:
        burst.note(now)
        now += 0.01
        assert now < 1.0
    assert 0.19 < now < 0.22  # the limit, not the quiet period, ended it


def test_the_repository_moved_away_or_deleted_wakes(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    import shutil

    repo = make_repo({"a.txt": "1"})
    watcher, wakes = watching(repo.path / ".git", "main", None)
    try:
        repo.path.rename(tmp_path / "moved")
        assert wakes.wait_for(GIT)
    finally:
        watcher.stop()
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "moved"), str(bare))
    watcher, wakes = watching(bare, "main", None)
    try:
        shutil.rmtree(bare)
        assert wakes.wait_for(GIT)
    finally:
        watcher.stop()


def test_when_inotify_runs_out_it_polls_instead(make_repo: Callable[..., GitRepo], caplog: pytest.LogCaptureFixture) -> None:
    # Real exhaustion: take every inotify instance this user may have (fs.inotify.
    # max_user_instances), start the watcher, and give them back once it has started.
    repo = make_repo({"a.txt": "1"})
    held = _take_all_inotify_instances()
    try:
        with caplog.at_level(logging.WARNING):
            watcher, wakes = watching(repo.path / ".git", "main", None)
    finally:
        for fd in held:
            os.close(fd)
    try:
        assert "inotify is not available" in caplog.text and watcher.poll == FALLBACK_POLL
        repo.commit({"a.txt": "2"})
        assert wakes.wait_for(GIT)  # found by polling
    finally:
        watcher.stop()


def _take_all_inotify_instances() -> list[int]:
    libc = ctypes.CDLL(None, use_errno=True)
    held: list[int] = []
    while len(held) < 100_000:
        fd = libc.inotify_init1(os.O_CLOEXEC)
        if fd < 0:
            assert ctypes.get_errno() == errno.EMFILE, os.strerror(ctypes.get_errno())
            return held
        held.append(fd)
    raise AssertionError("no inotify limit was reached")


def test_a_commit_in_a_linked_work_tree_wakes(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    # `git worktree add`: the work tree's git dir holds only its HEAD; the branch's ref is
    # written in the main repository's git dir, which must be watched too.
    main = make_repo({"a.txt": "1"})
    git(main.path, "worktree", "add", "-q", "-b", "feature", str(tmp_path / "wt"))
    tree = GitRepo.__new__(GitRepo)
    tree.path = tmp_path / "wt"
    with Repo(tree.path) as repo:
        assert repo.branch == "feature" and repo.common_dir == (main.path / ".git").resolve()
        watcher = Watcher(repo.git_dir, repo.branch, None, wakes := Wakes(), common_dir=repo.common_dir)
    watcher.start()
    try:
        sha = main.commit({"a.txt": "2"})  # another branch: not ours
        assert not wakes.wait_for(GIT, timeout=1.0)
        git(main.path, "update-ref", "refs/heads/feature", sha)  # as a push or fetch moves it
        assert wakes.wait_for(GIT)
        wakes.clear()
        tree.commit({"a.txt": "3"})
        assert wakes.wait_for(GIT)
    finally:
        watcher.stop()


def test_watchdogs_stop_race_is_not_logged_as_an_error(caplog):
    """Seen at one daemon stop in six: watchdog's emitter polls once more after stop()."""
    import logging

    import gitflowd.watch  # noqa: F401 - installs the filter

    watchdog_log = logging.getLogger("watchdog.observers.inotify")
    with caplog.at_level(logging.DEBUG):
        watchdog_log.error("InotifyEmitter.queue_events() called when the thread is inactive")
        watchdog_log.error("a real problem")
    assert [r.getMessage() for r in caplog.records if r.name == watchdog_log.name] == ["a real problem"]
