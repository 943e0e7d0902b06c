"""Requests from the CLI to a running daemon, as files in STATE/inbox/.

Flow: the CLI calls `submit(state, Request(...))`: the JSON is written to a hidden
temporary name, fsynced, renamed to `<time>-<id>.json` and the directory fsynced, so the
daemon never sees half a request -> the daemon's watcher wakes on the rename ->
`pending(state)` lists requests oldest first -> the daemon `claim`s one (renames it to a
hidden name), handles it and calls `answer(state, request, Reply(...))`, which writes
`replies/<id>.json` the same atomic way and deletes the request -> the CLI's `wait_reply`
sees the reply and reads it. A CLI that gives up waiting (the daemon stopped or hung) first
withdraws its request: only one of the withdrawal and the claim can win the file, so a
request the CLI reported as not done is never carried out later by a daemon's next start.

A request that cannot be parsed is answered (when its id can be read) and moved aside to
`inbox/bad/`, never retried forever.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitflowd.atomic import fsync_dir, write_atomic
from gitflowd.errors import StateError

log = logging.getLogger(__name__)

KINDS = ("run", "resume", "clear", "backfill", "stop")
CLAIMED = ".claimed-"  # prefix of a request the daemon has taken (hidden: not pending any more)


@dataclass(frozen=True)
class Request:
    """One thing the CLI asks a running daemon to do; `args` are the command's options."""

    kind: str
    args: dict[str, Any]
    id: str = field(default_factory=lambda: os.urandom(16).hex())  # not uuid: it imports platform
    pid: int = field(default_factory=os.getpid)


@dataclass(frozen=True)
class Reply:
    """The daemon's answer: the runs it started or resumed, or the error it hit."""

    ok: bool
    runs: list[tuple[str, str]] = field(default_factory=list)  # (dag id, run id)
    error: str = ""
    message: str = ""
    exit_code: int = 0  # what the command exits with when `ok` is False (a GitflowdError's code)


def inbox_dir(state: Path) -> Path:
    return Path(state) / "inbox"


def replies_dir(state: Path) -> Path:
    return inbox_dir(state) / "replies"


def submit(state: Path, request: Request) -> Path:
    """Hand `request` to the daemon; returns the request file's path."""
    if request.kind not in KINDS:
        raise ValueError(f"unknown request kind {request.kind!r}")
    path = inbox_dir(state) / f"{time.time_ns():020d}-{request.id}.json"
    try:
        write_atomic(path, json.dumps(asdict(request)), durable=True)
    except OSError as exc:
        raise StateError(f"cannot write a request into {path.parent}: {exc.strerror or exc}") from None
    return path


def pending(state: Path) -> list[Path]:
    """Request files waiting in the inbox, oldest first."""
    folder = inbox_dir(state)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith(".") and p.is_file())


def claim(path: Path) -> Path | None:
    """Take a pending request before handling it; None when its command withdrew it first."""
    claimed = path.with_name(CLAIMED + path.name)
    try:
        os.rename(path, claimed)
    except FileNotFoundError:
        return None
    return claimed


def read(path: Path) -> Request:
    """Parse a request file; ValueError naming the file when it is not a request."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        request = Request(kind=data["kind"], args=dict(data["args"]), id=str(data["id"]), pid=int(data.get("pid", 0)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path.name.removeprefix(CLAIMED)}: not a gitflowd request ({exc})") from None
    if request.kind not in KINDS:
        raise ValueError(f"{path.name.removeprefix(CLAIMED)}: unknown request kind {request.kind!r}")
    return request


def answer(state: Path, path: Path, request_id: str | None, reply: Reply) -> None:
    """Write the reply (when the request had an id) and remove the request from the inbox."""
    if request_id:
        write_atomic(replies_dir(state) / f"{request_id}.json", json.dumps(asdict(reply)), durable=True)
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def set_aside(state: Path, path: Path, reason: str) -> None:
    """Move an unreadable request to inbox/bad/ so it is not read again."""
    name = path.name.removeprefix(CLAIMED)
    log.error("bad request %s: %s (moved to %s)", name, reason, inbox_dir(state) / "bad")
    bad = inbox_dir(state) / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    os.replace(path, bad / name)


def drop_stale_claims(state: Path) -> list[str]:
    """At a daemon's start: requests a previous daemon took and died before answering. They
    are not carried out again (their command was told the daemon may have done them; a run
    they created is in the state and resumed like any other); returns their file names."""
    folder = inbox_dir(state)
    dropped = []
    for path in sorted(folder.glob(f"{CLAIMED}*.json")) if folder.is_dir() else ():
        path.unlink(missing_ok=True)
        dropped.append(path.name.removeprefix(CLAIMED))
    if dropped:
        fsync_dir(folder)
    return dropped


def prune_replies(state: Path, older_than: float = 86400.0) -> int:
    """Delete replies nobody collected (their command died); returns how many."""
    folder, removed = replies_dir(state), 0
    cutoff = time.time() - older_than
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def wait_reply(state: Path, request_id: str, timeout: float, alive: Any = None) -> Reply:
    """Wait for the daemon's reply to `request_id`; `alive()` False means the daemon went away.
    Giving up withdraws the request if the daemon has not claimed it."""
    path = replies_dir(state) / f"{request_id}.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        gone = alive is not None and not alive()
        if gone or time.monotonic() > deadline:
            if path.exists():  # answered just now
                break
            raise StateError(_no_answer(state, request_id, gone))
        time.sleep(0.05)
    data = json.loads(path.read_text(encoding="utf-8"))
    path.unlink(missing_ok=True)
    return Reply(ok=bool(data["ok"]), runs=[tuple(r) for r in data.get("runs", [])], error=data.get("error", ""),
                 message=data.get("message", ""), exit_code=int(data.get("exit_code", 0)))


def withdraw(state: Path, request_id: str) -> bool:
    """Take back a request the daemon has not claimed; True when it never will carry it out
    (withdrawn now, or never submitted), False when the daemon took it (it may be done)."""
    for path in pending(state):
        if path.name.endswith(f"-{request_id}.json"):
            try:
                path.unlink()
            except FileNotFoundError:  # claimed this instant
                return False
            fsync_dir(path.parent)
            return True
    folder = inbox_dir(state)
    taken = any(folder.glob(f"{CLAIMED}*-{request_id}.json")) if folder.is_dir() else False
    return not taken and not (replies_dir(state) / f"{request_id}.json").exists()


def _no_answer(state: Path, request_id: str, gone: bool) -> str:
    """Why there is no reply (`gone`: the daemon exited, else it is silent), once the request
    is withdrawn if it still can be."""
    if withdraw(state, request_id):
        if gone:
            return f"the daemon exited before it took request {request_id} (see its log): request withdrawn, nothing done"
        return f"the daemon did not answer request {request_id} nor take it (is it stopping or hung? see its log): request withdrawn, nothing done"
    if gone:
        return f"the daemon exited after it took request {request_id}, before answering (see its log): it may have done it, see gitflowd status"
    return f"the daemon did not answer request {request_id} although it took it (see its log): it may have done it, see gitflowd status"
