"""Parsed DAG files kept on disk between processes, by file path and blob.

A `Repo` keeps parsed files in memory for the life of one process (the daemon's reloads).
Every CLI command is a new process, and in a repository of many DAGs parsing was most of
what `run`, `show` or `list` cost (1,000 files of 20 tasks: about a second, every time).
So a Repo handed a `ParseCache` (STATE/cache/dags/) looks a file up there before parsing
it: one small JSON file per (path, blob, gitflowd code) with the Dag's snapshot, or the
file's problems.

Flow: `get(path, blob)` -> the entry's JSON -> `Dag.from_dict` / `Problem`s, or None (a
miss: absent, unreadable or damaged) -> the Repo parses and calls `put`, which writes the
entry atomically (no fsync: a lost entry is only a miss) and, once per process, prunes the
oldest entries beyond MAX_ENTRIES.

The key includes a fingerprint of gitflowd's own modules (name, size, mtime), so neither an
upgrade nor a local change to the loader is ever answered with a parse made by other code.
A cache that cannot be read or written never fails a command: it is a cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path

from gitflowd.atomic import write_atomic
from gitflowd.dag import Dag
from gitflowd.errors import Problem

log = logging.getLogger(__name__)

MAX_ENTRIES = 20_000  # about one entry per DAG file version; ~5 KB each for 20 tasks
_PACKAGE = Path(__file__).resolve().parent

Parsed = tuple[Dag | None, tuple[Problem, ...]]


class ParseCache:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._pruned = False

    def get(self, path: str, blob: str) -> Parsed | None:
        """The cached parse of `path` at `blob`, or None."""
        try:
            data = json.loads(self._entry(path, blob).read_bytes())
            problems = tuple(Problem(str(p), int(line), str(message)) for p, line, message in data["problems"])
            return (Dag.from_dict(data["dag"]) if data["dag"] is not None else None), problems
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:  # damaged: parse again, then overwrite
            log.debug("parse cache entry of %s unusable: %s", path, exc)
            return None

    def put(self, path: str, blob: str, parsed: Parsed) -> None:
        dag, problems = parsed
        data = {"dag": dag.to_dict() if dag is not None else None,
                "problems": [[p.path, p.line, p.message] for p in problems]}
        try:
            write_atomic(self._entry(path, blob), json.dumps(data, separators=(",", ":")))
            if not self._pruned:
                self._pruned = True
                prune(self.directory, MAX_ENTRIES)
        except OSError as exc:  # a read-only or full state directory: no cache, same results
            log.debug("parse cache not written for %s: %s", path, exc)

    def _entry(self, path: str, blob: str) -> Path:
        key = hashlib.sha256(f"{code_fingerprint()}\0{path}\0{blob}".encode()).hexdigest()
        return self.directory / f"{key}.json"


def prune(directory: Path, keep: int) -> None:
    """Delete the least recently written entries beyond `keep` (down to 90 % of it)."""
    with os.scandir(directory) as scan:
        entries = [entry for entry in scan if entry.name.endswith(".json")]
    if len(entries) <= keep:
        return
    entries.sort(key=lambda entry: entry.stat().st_mtime_ns)
    for entry in entries[:len(entries) - keep * 9 // 10]:
        Path(entry.path).unlink(missing_ok=True)


@functools.cache
def code_fingerprint() -> str:
    """Changes whenever any module of gitflowd does (installed or edited in place)."""
    digest = hashlib.sha256()
    for file in sorted(_PACKAGE.rglob("*.py")):
        stat = file.stat()
        digest.update(f"{file.relative_to(_PACKAGE)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]
