"""sd_notify: datagrams on a real AF_UNIX socket, path and abstract names, watchdog interval.

The end-to-end check (a real daemon process announcing READY=1 and feeding the watchdog)
is in test_daemon.py, next to the other daemon processes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitflowd.notify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(10)
    yield sock, path
    sock.close()


def receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_status_watchdog_and_stopping_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid()), "OTHER": "x"}
    notifier = Notifier.from_env(env)
    assert env == {"OTHER": "x"}  # tasks must not inherit the socket
    assert notifier.watchdog_interval == 1.5
    notifier.ready("loaded 3 DAGs")
    assert receive(sock) == ["READY=1", "STATUS=loaded 3 DAGs", f"MAINPID={os.getpid()}"]
    notifier.status("running 2 runs\nof umbrella")
    assert receive(sock) == ["STATUS=running 2 runs of umbrella"]
    notifier.watchdog()
    assert receive(sock) == ["WATCHDOG=1"]
    notifier.stopping("waiting for 1 task")
    assert receive(sock) == ["STOPPING=1", "STATUS=waiting for 1 task"]
    notifier.close()


def test_abstract_socket_names(tmp_path: Path) -> None:
    name = f"gitflowd-test-{os.getpid()}-{tmp_path.name}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(10)
    try:
        Notifier.from_env({"NOTIFY_SOCKET": "@" + name}).ready()
        assert receive(sock)[0] == "READY=1"
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert notifier.send("READY=1") is False
    notifier.ready()
    notifier.watchdog()


def test_watchdog_for_another_pid_is_ignored(listener: tuple[socket.socket, str]) -> None:
    _, path = listener
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval is None


@pytest.mark.parametrize("value", ["", "0", "-5", "soon"])
def test_bad_watchdog_usec_disables_the_watchdog(value: str, listener: tuple[socket.socket, str]) -> None:
    assert Notifier.from_env({"NOTIFY_SOCKET": listener[1], "WATCHDOG_USEC": value}).watchdog_interval is None


def test_an_unreachable_socket_is_logged_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.send("READY=1") is False
    assert "cannot notify the service manager" in caplog.text


def test_a_real_daemon_announces_ready_feeds_the_watchdog_and_hides_the_socket_from_tasks(
        listener: tuple[socket.socket, str], make_repo, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from tests.conftest import GIT_ENV

    sock, path = listener
    env_dump = tmp_path / "task-env"
    repo = make_repo({"dags/envdump.toml": f'[tasks.dump]\ncmd = "env > {env_dump}"\n'})
    env = {**os.environ, **GIT_ENV, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    home = tmp_path / "home"
    daemon = subprocess.Popen([sys.executable, "-m", "gitflowd", "daemon", "--repo", str(repo.path), "--state", str(home / "state"),
                               "--site", str(home / "site")], env=env, stderr=subprocess.DEVNULL)
    try:
        seen: list[str] = []
        while "READY=1" not in seen:
            seen += receive(sock)
        assert f"MAINPID={daemon.pid}" in seen
        assert "STATUS=1 DAG(s) at " + repo.head()[:8] + "; 0 run(s) running, 0 queued" in seen
        pings = 0
        while pings < 3:  # every 0.1 s while idle: the loop wakes for the watchdog, nothing else
            pings += receive(sock).count("WATCHDOG=1")
        ran = subprocess.run([sys.executable, "-m", "gitflowd", "run", "envdump", "--repo", str(repo.path), "--state", str(home / "state"),
                              "--site", str(home / "site")], env={**os.environ, **GIT_ENV}, capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
        task_env = env_dump.read_text()
        assert "GITFLOWD_TASK=dump" in task_env
        assert "NOTIFY_SOCKET" not in task_env and "WATCHDOG_USEC" not in task_env
        daemon.send_signal(signal.SIGTERM)
        while not any(line.startswith("STOPPING=1") for line in seen):
            seen += receive(sock)
        assert daemon.wait(60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
