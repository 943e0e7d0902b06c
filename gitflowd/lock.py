"""The state directory lock: one daemon, or one foreground run, per state directory.

Flow: `StateLock(path, role).acquire()` takes `flock(LOCK_EX | LOCK_NB)` on
STATE/daemon.lock (created if needed, never deleted) and writes `pid=<pid> role=<role>`
into it for the error message of the next process that tries; `LockHeld` names that
holder. Only the lock is trusted, never the pid in the file. Closing the descriptor (or
dying) releases the lock. A holder that lives long (the daemon) checks `lost()`: a deleted
lock file no longer keeps a second process out, so it `retake`s it at once.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import time
from pathlib import Path

from gitflowd.errors import LockHeld, StateError

PROBE_GRACE = 1.0  # seconds a held lock is tried again before it counts as another process's


class StateLock:
    def __init__(self, path: str | os.PathLike[str], role: str = "run"):
        self.path = Path(path)
        self.role = role
        self._fd = -1

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def acquire(self) -> StateLock:
        """Take the lock or raise LockHeld naming the current holder."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _refuse_root_in_anothers_state(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StateError(f"cannot open lock file {self.path}: {exc.strerror or exc}") from None
        if not _lock_within(fd, PROBE_GRACE):
            os.close(fd)
            raise LockHeld(str(self.path), holder(self.path))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()} role={self.role}\n".encode(), 0)
        self._fd = fd
        return self

    def lost(self) -> bool:
        """True when the lock file was deleted or replaced while held (an `rm` of a lock that
        looked stale, a wiped state directory): the lock then keeps nobody out any more."""
        if self._fd < 0:
            return False
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return True
        except OSError:  # cannot tell (e.g. a permission change): keep what we have
            return False
        held = os.fstat(self._fd)
        return (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino)

    def retake(self) -> StateLock:
        """After `lost()`: lock the file now at the path (made again if missing); LockHeld
        when another process took it first."""
        self.release()
        return self.acquire()

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_within(fd: int, seconds: float) -> bool:
    """flock(LOCK_EX) without blocking, tried again for a moment: `is_locked` (status,
    render) holds a shared lock for microseconds, which must not make a run or a daemon
    starting at that instant fail as if another process held the state."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def _refuse_root_in_anothers_state(state: Path) -> None:
    """`sudo gitflowd run` (without `-u gitflowd`) while the service is stopped wrote root's
    journals, logs and directories into the service's state directory: the daemon could not
    append to them or add runs beside them afterwards. Root may still read (status, logs)."""
    if os.geteuid() != 0:
        return  # anyone else cannot write another user's files anyway
    owner = state.stat().st_uid
    if owner == 0:
        return
    try:
        name = pwd.getpwuid(owner).pw_name
    except KeyError:  # no such user here: a bind mount in a container run as root, not `sudo` on the host
        return
    raise StateError(f"{state} belongs to user {name}; as root, this would leave files there that {name} cannot "
                     f"write (the daemon's later runs would fail): run it as that user (sudo -u {name} gitflowd ...)")


def holder(path: str | os.PathLike[str]) -> str | None:
    """`123 (daemon)` from the lock file's text, or None if unreadable."""
    try:
        fields = dict(part.split("=", 1) for part in Path(path).read_text().split() if "=" in part)
    except (OSError, ValueError):
        return None
    if "pid" not in fields:
        return None
    return f"{fields['pid']} ({fields['role']})" if "role" in fields else fields["pid"]


def is_locked(path: str | os.PathLike[str]) -> bool:
    """True if some process holds the lock now (probes without keeping it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
