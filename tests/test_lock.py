"""The state lock: exclusive across processes, names its holder, released on exit or death."""

from __future__ import annotations

import fcntl
import os
import pwd
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from gitflowd.errors import LockHeld
from gitflowd.lock import StateLock, holder, is_locked


def _hold_in_child(path: Path, role: str) -> subprocess.Popen[str]:
    script = textwrap.dedent(f"""
        import sys, time
        from gitflowd.lock import StateLock
        lock = StateLock({str(path)!r}, {role!r}).acquire()
        print("held", flush=True)
        sys.stdin.read()
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_holder_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    path = tmp_path / "state" / "daemon.lock"
    child = _hold_in_child(path, "daemon")
    try:
        assert is_locked(path)
        with pytest.raises(LockHeld) as info:
            StateLock(path, "run").acquire()
        assert str(info.value) == (f"{path} is held by pid {child.pid} (daemon): another gitflowd daemon or run "
                                   "uses this state directory")
    finally:
        child.kill()
        child.wait()
    assert not is_locked(path) and path.exists()  # released by death, never deleted
    with StateLock(path, "run") as lock:
        assert lock.held and holder(path).endswith("(run)")
    assert not is_locked(path)


def test_holder_of_a_missing_or_foreign_file(tmp_path: Path) -> None:
    assert holder(tmp_path / "none") is None
    (tmp_path / "odd").write_text("garbage")
    assert holder(tmp_path / "odd") is None
    assert not is_locked(tmp_path / "none")


def test_a_probe_at_the_same_instant_does_not_refuse_the_lock(tmp_path: Path) -> None:
    """`is_locked` (status, render) holds a shared lock for an instant; a run or daemon
    taking the lock right then failed with 'is held by pid ...' naming a previous holder."""
    path = tmp_path / "daemon.lock"
    path.write_text("pid=1 role=run\n")
    probe = os.open(path, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a probe caught in the middle
    release = threading.Timer(0.1, os.close, (probe,))
    release.start()
    try:
        with StateLock(path, "run") as lock:
            assert lock.held and holder(path) == f"{os.getpid()} (run)"
    finally:
        release.join()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: only root is refused another user's state")
def test_root_may_use_a_state_directory_of_a_uid_unknown_here(tmp_path: Path) -> None:
    """Root is refused a state directory of a user of this system (`sudo gitflowd run`
    without -u leaves root's files to the service), but a uid with no user here is a bind
    mount in a container run as root, where there is no one to `sudo -u` to."""
    uid = next(n for n in range(54321, 60000) if not _user_exists(n))
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, uid, uid)
    with StateLock(state / "daemon.lock", "daemon") as lock:
        assert lock.held


def _user_exists(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False
