"""Wake the daemon when the followed branch may have moved or a request arrived.

Flow: `Watcher(git_dir, branch, inbox, wake)` schedules watchdog handlers (inotify where
present, `PollingObserver(poll)` when `poll` seconds are given) on
- the git directory itself, non-recursively: `HEAD` and `packed-refs`;
- `refs/` recursively: the followed branch's loose ref (git writes `<ref>.lock`, then
  renames it into place, so a rename onto the ref counts);
- in a linked work tree (`git worktree add`), the same two in the main repository's git
  dir (`common_dir`), where its branches' refs live;
- the inbox: a request file renamed into place; in the state directory, the inbox itself
  and the lock file being deleted or moved, and the state directory itself from its
  parent (the daemon then makes them again);
- the directory holding the repository, non-recursively: the repository being moved
  away or deleted (inotify follows a moved directory silently, so only its parent sees it).
Each relevant event calls `wake(kind)` with `GIT` or `INBOX`; the handler does no work
itself (it runs on watchdog's thread). The daemon coalesces: it notes events in a
`Burst`, waits for them to go quiet and then reads the head once, so a burst of ten
commits costs one reload of the newest.

`Waker` is what the daemon sleeps on between deadlines: a self-pipe that the watcher,
the run threads and signals (`signal.set_wakeup_fd`) write to, so nothing busy-polls.
"""

from __future__ import annotations

import logging
import os
import selectors
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

GIT = "git"
INBOX = "inbox"
FALLBACK_POLL = 1.0  # seconds between polls when inotify cannot be used


class _StopRace(logging.Filter):
    """watchdog's inotify emitter may poll once more after stop() closed its inotify and logs
    that as an ERROR (watchdog PR #963): it is the shutdown we asked for, not a fault, and
    a daemon under systemd should not report an error at every few stops."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_StopRace())


def _paths(event: FileSystemEvent) -> list[str]:
    paths = [event.src_path, getattr(event, "dest_path", "") or ""]
    return [os.fsdecode(p) for p in paths if p]


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


class _Handler(FileSystemEventHandler):
    """Calls `wake(kind)` for events whose path passes `wanted`."""

    def __init__(self, kind: str, wanted: Callable[[str], bool], wake: Callable[[str], None], types: tuple[str, ...] = ()):
        self.kind, self.wanted, self.wake, self.types = kind, wanted, wake, types

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write") or (self.types and event.event_type not in self.types):
            return
        if any(self.wanted(path) for path in _paths(event)):
            self.wake(self.kind)


class Watcher:
    """Watchdog observers on a git directory and/or an inbox; `start()` / `stop()`.

    The daemon keeps one for the inbox and one for the repository, so that reopening a
    repository that went away never leaves the inbox unwatched.
    """

    def __init__(self, git_dir: Path | None, branch: str | None, inbox: Path | None, wake: Callable[[str], None],
                 poll: float | None = None, common_dir: Path | None = None, lock: Path | None = None):
        self.git_dir = Path(git_dir).absolute() if git_dir else None
        # In a linked work tree the branch refs live in the main repository's git dir.
        self.common_dir = Path(common_dir).absolute() if common_dir else self.git_dir
        self.branch = branch
        self.inbox = Path(inbox).absolute() if inbox else None
        self.lock = Path(lock).absolute() if lock else None
        self.wake = wake
        self.poll = poll
        self._observer: BaseObserver | None = None
        self._inbox_inode: int | None = None

    def refs_wanted(self, path: str) -> bool:
        """HEAD, packed-refs, or the followed branch's ref (also its `.lock` being renamed)."""
        name = path[:-5] if path.endswith(".lock") else path
        interesting = {str(self.git_dir / "HEAD")}
        for refs_dir in {self.git_dir, self.common_dir}:
            interesting.add(str(refs_dir / "packed-refs"))
            if self.branch:
                interesting.add(str(refs_dir / "refs" / "heads" / self.branch))
        return name in interesting

    @property
    def repo_root(self) -> Path:
        """The work tree (for `.git`) or the bare repository itself."""
        return self.git_dir.parent if self.git_dir.name == ".git" else self.git_dir

    def root_gone(self, path: str) -> bool:
        return path in (str(self.repo_root), str(self.git_dir))

    def inbox_wanted(self, path: str) -> bool:
        name = os.path.basename(path)
        return self.inbox is not None and os.path.dirname(path) == str(self.inbox) and name.endswith(".json") and not name.startswith(".")

    def start(self) -> None:
        try:
            self._start(PollingObserver(timeout=self.poll) if self.poll else Observer())
        except OSError as exc:  # e.g. fs.inotify.max_user_instances reached: degrade, do not die
            if self.poll:
                raise
            log.warning("inotify is not available (%s); polling every %gs instead", exc, FALLBACK_POLL)
            self.poll = FALLBACK_POLL
            self._start(PollingObserver(timeout=FALLBACK_POLL))

    def _start(self, observer: BaseObserver) -> None:
        if self.git_dir is not None:
            self._schedule_git(observer, self.git_dir)
        if self.inbox is not None:
            observer.schedule(_Handler(INBOX, self.inbox_wanted, self.wake), str(self.inbox), recursive=False)
            # The inbox itself deleted or moved away: its watch dies with it (see renew_inbox);
            # the lock file deleted, or the state directory moved away (only its parent sees
            # that): a second daemon could start (see StateLock.lost).
            kept = {str(self.inbox), str(self.lock)}
            observer.schedule(_Handler(INBOX, kept.__contains__, self.wake, ("moved", "deleted")),
                              str(self.inbox.parent), recursive=False)
            if self.lock is not None and os.access(self.lock.parent.parent, os.R_OK | os.X_OK):  # else: the next wake-up sees it
                observer.schedule(_Handler(INBOX, lambda path: path == str(self.lock.parent), self.wake, ("moved", "deleted")),
                                  str(self.lock.parent.parent), recursive=False)
            self._inbox_inode = _inode(self.inbox)
        observer.daemon = True
        try:
            observer.start()
        except OSError:
            observer.stop()  # the emitters that did start
            raise
        self._observer = observer
        log.debug("watching %s (branch %s)%s", self.git_dir, self.branch or "HEAD", f" by polling every {self.poll}s" if self.poll else " with inotify")

    def _schedule_git(self, observer: BaseObserver, git_dir: Path) -> None:
        git_handler = _Handler(GIT, self.refs_wanted, self.wake)
        observer.schedule(_Handler(GIT, self.root_gone, self.wake, ("moved", "deleted")), str(self.repo_root.parent), recursive=False)
        for refs_dir in dict.fromkeys((git_dir, self.common_dir or git_dir)):  # once each, in order
            observer.schedule(git_handler, str(refs_dir), recursive=False)
            if (refs_dir / "refs").is_dir():
                observer.schedule(git_handler, str(refs_dir / "refs"), recursive=True)

    def renew_inbox(self) -> bool:
        """If the inbox was deleted or replaced since `start()`, make it again and watch the new
        one (requests written there would go unseen); True if it did."""
        if self.inbox is None or _inode(self.inbox) == self._inbox_inode:
            return False
        self.stop()
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.start()
        return True

    def stop(self) -> None:
        if self._observer is None:
            return
        self._observer.stop()
        try:
            self._observer.join(timeout=5)
        except RuntimeError:  # never started
            pass
        self._observer = None

    @property
    def alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()


class Burst:
    """Coalesces a burst of events: due `quiet` seconds after the last one, or at the
    latest `limit` seconds after the first. Pure bookkeeping: the caller passes the time.
    """

    def __init__(self, quiet: float = 0.02, limit: float = 0.25):
        self.quiet, self.limit = quiet, limit
        self._first: float | None = None
        self._last = 0.0
        self.count = 0

    def note(self, now: float) -> None:
        if self._first is None:
            self._first = now
        self._last = now
        self.count += 1

    def deadline(self) -> float | None:
        """When the burst is over (None: no burst in progress)."""
        if self._first is None:
            return None
        return min(self._last + self.quiet, self._first + self.limit)

    def take(self, now: float) -> int:
        """The number of events absorbed if the burst is over at `now` (then reset), else 0."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return 0
        count, self.count, self._first = self.count, 0, None
        return count


class Waker:
    """A self-pipe the main loop sleeps on; any thread (and any signal) can wake it."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._read, selectors.EVENT_READ)
        self._reasons: list[str] = []
        self._lock = threading.Lock()

    def wake(self, reason: str) -> None:
        """Record why, then poke the pipe (thread-safe)."""
        with self._lock:
            self._reasons.append(reason)
        try:
            os.write(self._write, b"!")
        except BlockingIOError:  # the pipe is full: a wake-up is pending anyway
            pass

    def signal_fd(self) -> int:
        """For `signal.set_wakeup_fd`: a signal then wakes `sleep` too."""
        return self._write

    def sleep(self, timeout: float | None) -> None:
        """Block until woken or `timeout` seconds passed (None: until woken)."""
        if self._selector.select(timeout):
            try:
                while os.read(self._read, 4096):
                    pass
            except BlockingIOError:
                pass

    def drain(self) -> list[str]:
        """The reasons recorded since the last call."""
        with self._lock:
            reasons, self._reasons = self._reasons, []
        return reasons

    def close(self) -> None:
        self._selector.close()
        os.close(self._read)
        os.close(self._write)
