"""The systemd notification protocol (sd_notify), in the standard library.

Flow: `Notifier.from_env()` reads `NOTIFY_SOCKET` (a path, or `@name` for an abstract
socket) and `WATCHDOG_USEC` / `WATCHDOG_PID`, then removes them from the environment so
no task process inherits them -> the daemon calls `ready()`, `status(text)`, `watchdog()`
(every `watchdog_interval` seconds: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
advises), `extend_timeout(seconds)` while a long start makes progress, and `stopping()`. Each call sends one datagram of `KEY=VALUE` lines. Without
`NOTIFY_SOCKET` every call does nothing, so the daemon runs the same outside systemd.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    """Sends state changes to the service manager, if there is one."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None):
        self.address = _socket_address(address) if address else None
        self.watchdog_interval = watchdog_usec / 2_000_000 if watchdog_usec else None
        self._socket: socket.socket | None = None

    @classmethod
    def from_env(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """A notifier for this process's service manager; clears the variables from `environ`."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec = _watchdog_usec(env)
        for key in ENV_KEYS:
            env.pop(key, None)
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}")

    def status(self, text: str) -> None:
        self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        if self.watchdog_interval is not None:
            self.send("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> None:
        """Before READY=1: the start is slow but making progress; allow `seconds` more."""
        self.send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def stopping(self, status: str = "") -> None:
        self.send("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def send(self, *lines: str) -> bool:
        """Send one datagram; False (logged once per failure) when the manager is unreachable."""
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto("\n".join(lines).encode(), self.address)
            return True
        except OSError as exc:
            log.warning("cannot notify the service manager at %s: %s", self.address, exc)
            return False

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _socket_address(value: str) -> str | bytes:
    """`@name` is a Linux abstract socket: a leading NUL byte instead of the @."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def _watchdog_usec(env: MutableMapping[str, str]) -> int | None:
    """WATCHDOG_USEC, if it is meant for this process (WATCHDOG_PID unset or ours)."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None


def _one_line(text: str) -> str:
    return " ".join(text.split())
