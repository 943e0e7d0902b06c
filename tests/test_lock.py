"""The state lock: exclusive across processes, names its holder, released on exit or death."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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
