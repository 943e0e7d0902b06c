"""The daemon's hold on the repository: opened and watched, its branch head read, and a
repository that cannot be read outlived.

Flow: `open()` makes the Repo (its parses cached on disk) and its Watcher, and fixes the
branch followed the first time (a later `git switch` in the work tree changes nothing) ->
`read()` resolves the branch: the head already loaded gives None, a new one (a force-push
is said) its sha and Snapshot -> any failure is `broken(exc)`: said once per problem,
retried every REPO_RETRY seconds (`retry_at`), while the previous Repo still serves the
runs -> `loaded(sha)` once the daemon has recorded the snapshot; `head = None` makes the
next `read()` load the head even if it did not move.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from gitflowd import gitcli
from gitflowd.errors import GitflowdError
from gitflowd.parsecache import ParseCache
from gitflowd.repo import Repo, Snapshot
from gitflowd.watch import Watcher

log = logging.getLogger(__name__)

REPO_RETRY = 5.0  # while the repository cannot be read, try again this often


class Follower:
    """One repository branch, for one daemon; `kept()` says what the daemon keeps meanwhile."""

    def __init__(self, path: Path, branch: str | None, parse_cache: Path, wake: Callable[[str], None],
                 poll: float | None, kept: Callable[[], str]):
        self.path, self.branch = path, branch  # the branch is fixed once the repository is first opened
        self._parse_cache, self._wake, self._poll, self._kept = parse_cache, wake, poll, kept
        self.repo: Repo | None = None
        self.watcher: Watcher | None = None
        self.head: str | None = None
        self.problem: str | None = None  # the last error reading the repository, until a reload works
        self.retry_at: float | None = None

    def open(self, fail: bool = False) -> bool:
        """(Re)open the repository and its watcher; False (logged, retried) when it cannot be read.
        Until a reopen works the previous Repo stays: its objects still serve runs."""
        try:
            repo = Repo(self.path, self.branch, ParseCache(self._parse_cache))
        except (GitflowdError, OSError) as exc:
            if fail:
                raise
            self.broken(exc)
            return False
        self.close()
        # keep following this branch, even if HEAD later names another (the user switched)
        self.repo, self.branch, self.retry_at = repo, self.branch or repo.branch, None
        self.watcher = Watcher(repo.git_dir, repo.branch, None, self._wake, self._poll, repo.common_dir)
        self.watcher.start()
        return True

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.repo is not None:
            self.repo.close()
        self.watcher = self.repo = None

    def due(self, mono: float) -> bool:
        """Time to open the repository again after a failure."""
        return self.retry_at is not None and mono >= self.retry_at

    def read(self) -> tuple[str, Snapshot] | None:
        """The new head and its snapshot; None if the head did not move or Git cannot be read."""
        if self.repo is None:
            return None
        try:
            sha = self.repo.resolve()
            if sha == self.head:
                return None
            self._warn_if_rewritten(sha)
            return sha, self.repo.load(sha)
        except (GitflowdError, ValueError, OSError) as exc:
            self.broken(exc)
        except Exception as exc:  # git output we did not foresee (a repository changing under it): survive, say so
            log.exception("unexpected error reading the repository")
            self.broken(exc)
        return None

    def loaded(self, sha: str) -> None:
        if self.problem is not None:
            log.info("the repository can be read again")
        self.head, self.retry_at, self.problem = sha, None, None

    def broken(self, exc: Exception) -> None:
        """Log a new problem once (not every retry), keep the DAGs, try again in a while."""
        if str(exc) != self.problem:
            log.error("cannot read the repository: %s; keeping %s, retrying every %gs", exc, self._kept(), REPO_RETRY)
        self.problem = str(exc)
        self.retry_later()

    def retry_later(self) -> None:
        self.retry_at = time.monotonic() + REPO_RETRY

    def _warn_if_rewritten(self, sha: str) -> None:
        """A force-push: the new head does not contain the old one. Runs keep their commits."""
        if self.head is None or self.repo is None or self.repo.is_ancestor(self.head, sha):
            return
        log.warning("%s was rewritten (force-push?): %s is not an ancestor of %s; loading the new head",
                    f"branch {self.repo.branch}" if self.repo.branch else "HEAD", self.head[:8], sha[:8])


def no_commits_yet(path: Path) -> bool:
    """A repository made and never committed or pushed to, rather than a wrong path or branch."""
    try:
        branches = gitcli.run(["for-each-ref", "--count=1", "refs/heads"], path)
        head = gitcli.run(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], path)
    except gitcli.GitFailed:  # no such directory, no git: the error already raised says it
        return False
    return branches.returncode == 0 and not branches.stdout.strip() and head.returncode != 0
