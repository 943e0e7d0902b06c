"""The record of which DAGs are loaded, kept in the state directory for the site to read.

Flow: the daemon (on every commit) and `run` call `record_snapshot(state, snapshot)` ->
under `STATE/registry.lock`, `apply_snapshot(old, snapshot)` decides per DAG what changed
(DESIGN.md section 2: an invalid file keeps its DAG's last valid version and records the
error; a deleted file retires the DAG; a file moved unchanged is `moved`, by blob SHA, with
no re-parse; nothing is forgotten) -> versions seen for the first
time are written to `STATE/dag_versions/` (dagversions.py: source and task graph, one file
per version, written once) -> a reload that changed anything is appended to
`STATE/reloads.jsonl` -> `STATE/dags.json` (the small index: per DAG its path, blob,
version key, commits, errors) is replaced atomically.
Readers: `read_registry(state)` (the current picture; an entry reads its version file when
its source or graph is first asked for) and `dag_history(state, dag_id)` (the versions of
one DAG, newest first). The site reads these and never opens Git.
A `dags.json` of format 1 (sources inline) is read as well; the next record rewrites it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from gitflowd.atomic import fsync_dir, write_atomic
from gitflowd.dag import Dag
from gitflowd.dagversions import DagVersion, VersionRef, VersionStore
from gitflowd.errors import Problem, StateError

log = logging.getLogger(__name__)

REGISTRY_FILE = "dags.json"
RELOADS_FILE = "reloads.jsonl"
LOCK_FILE = "registry.lock"
FORMAT = 2  # of dags.json; 1 kept each DAG's source and graph inline
RELOADS_FORMAT = 1


class ChangeKind(str, Enum):
    ADDED = "added"  # new, or back after being retired
    CHANGED = "changed"  # a new valid version of the file
    FIXED = "fixed"  # valid again after errors, same version as before them
    INVALID = "invalid"  # the file has errors (new or different ones); the last valid version stays
    MOVED = "moved"  # the same file (same blob) at another path: no new version of the DAG, its path changed
    REMOVED = "removed"  # the file is gone: the DAG is retired


@dataclass(frozen=True)
class CommitRef:
    sha: str
    subject: str = ""
    author: str = ""
    email: str = ""
    time: str = ""  # ISO 8601, the author time

    @property
    def short(self) -> str:
        return self.sha[:8]

    @classmethod
    def of(cls, info: Any) -> CommitRef:
        """From repo.CommitInfo (or anything with its attributes)."""
        when = info.time.isoformat() if isinstance(info.time, datetime) else str(info.time or "")
        return cls(info.sha, info.subject, info.author, getattr(info, "email", ""), when)


@dataclass(frozen=True)
class DagEntry:
    """One DAG as the registry knows it: its current valid version and its health."""

    id: str
    path: str
    blob: str
    version: VersionRef  # the current version: its file is read when first needed
    commit: CommitRef  # newest commit it was loaded from (Flux's lastAppliedRevision)
    since: CommitRef  # the commit that brought the current version
    retired: bool = False
    errors: tuple[Problem, ...] = ()

    @property
    def source(self) -> str:
        """The TOML text of the current version (StateError if its file is unreadable)."""
        return self.version.get().source

    @property
    def dag(self) -> dict[str, Any]:
        """Dag.to_dict() of the current version."""
        return self.version.get().dag

    def load(self) -> Dag:
        """The Dag, built once per version: an unchanged file's entry keeps it across reloads."""
        return self.version.build()


@dataclass(frozen=True)
class Registry:
    attempted: CommitRef | None = None  # newest commit tried (Flux's lastAttemptedRevision)
    dags: dict[str, DagEntry] = field(default_factory=dict)
    errors: tuple[Problem, ...] = ()  # every problem at the attempted commit


@dataclass(frozen=True)
class DagChange:
    dag_id: str
    change: ChangeKind
    path: str
    blob: str = ""
    errors: tuple[Problem, ...] = ()
    old_path: str = ""  # where the file was before this commit, when it moved (moved, or changed/fixed on the way)

    def describe(self) -> str:
        """`c moved (dags/c.toml -> dags/sub/c.toml)`, `one changed`: for log lines."""
        moved = f" ({self.old_path} -> {self.path})" if self.old_path else ""
        return f"{self.dag_id} {self.change.value}{moved}"


@dataclass(frozen=True)
class Reload:
    """One reload that changed something; `dag_history` yields these filtered to one DAG."""

    ts: str
    commit: CommitRef
    changes: tuple[DagChange, ...]
    errors: tuple[Problem, ...] = ()


class SnapshotLike(Protocol):
    """What record_snapshot needs of repo.Snapshot."""

    commit: Any
    dags: dict[str, Any]
    problems: list[Problem]
    declared: dict[str, str]  # path -> the DAG id of each file not loaded


# -- deciding ---------------------------------------------------------------------------


def apply_snapshot(old: Registry, snapshot: SnapshotLike) -> tuple[Registry, list[DagChange]]:
    """The registry after `snapshot` and the per-DAG changes; a pure function."""
    commit = CommitRef.of(snapshot.commit)
    dags: dict[str, DagEntry] = {}
    changes: list[DagChange] = []
    for dag_id, loaded in snapshot.dags.items():
        entry, change = _loaded(old.dags.get(dag_id), loaded, commit)
        dags[dag_id] = entry
        changes += [change] if change else []
    for dag_id, prev in old.dags.items():
        if dag_id not in dags:
            entry, change = _missing(prev, _problems_of(prev, snapshot))
            dags[dag_id] = entry
            changes += [change] if change else []
    return Registry(commit, dict(sorted(dags.items())), tuple(snapshot.problems)), changes


def _loaded(prev: DagEntry | None, loaded: Any, commit: CommitRef) -> tuple[DagEntry, DagChange | None]:
    current = prev if prev is not None and not prev.retired else None
    kind = _kind(current, loaded)
    if current is not None and current.path == loaded.path and _same_text(current, loaded):
        # unchanged: no to_dict (it was most of a reload of 1,000 DAGs), its Dag kept
        version, since = current.version, current.since
    else:  # a moved file is a new version too (the Dag knows its path), from the commit that moved it
        version, since = VersionRef.of(DagVersion(loaded.source, loaded.dag.to_dict())), commit
    entry = DagEntry(loaded.dag.id, loaded.path, loaded.blob, version, commit, since)
    old_path = current.path if current is not None and current.path != loaded.path else ""
    return entry, DagChange(entry.id, kind, entry.path, entry.blob, old_path=old_path) if kind else None


def _kind(current: DagEntry | None, loaded: Any) -> ChangeKind | None:
    """What a loaded file is to the DAG's entry (`current` is None for a new or retired DAG)."""
    if current is None:
        return ChangeKind.ADDED
    if not _same_text(current, loaded):
        return ChangeKind.CHANGED
    if current.errors:
        return ChangeKind.FIXED  # moved or not: old_path says it
    return ChangeKind.MOVED if current.path != loaded.path else None


def _problems_of(prev: DagEntry, snapshot: SnapshotLike) -> list[Problem]:
    """The problems of the DAG's file, or of a file that declares its id: a commit that renames
    a file setting `[dag] id` and breaks it leaves the DAG invalid, not retired. (Not
    Snapshot.problems_of: a broken file named after the DAG but declaring another id is not it.)"""
    return [p for p in snapshot.problems if p.path == prev.path or snapshot.declared.get(p.path) == prev.id]


def _same_text(prev: DagEntry, loaded: Any) -> bool:
    """The blob SHA names the text; only a work-tree file (no blob) compares the text itself."""
    return prev.blob == loaded.blob and (bool(loaded.blob) or prev.source == loaded.source)


def _missing(prev: DagEntry, problems: list[Problem]) -> tuple[DagEntry, DagChange | None]:
    """A DAG not loaded at this commit: invalid (its file has problems) or gone (retired)."""
    if prev.retired:
        return prev, None
    if problems:
        entry = replace(prev, errors=tuple(problems))
        changed = entry.errors != prev.errors
        return entry, DagChange(prev.id, ChangeKind.INVALID, prev.path, prev.blob, entry.errors) if changed else None
    return replace(prev, retired=True, errors=()), DagChange(prev.id, ChangeKind.REMOVED, prev.path, prev.blob)


# -- recording --------------------------------------------------------------------------


def record_snapshot(state_root: Path, snapshot: SnapshotLike, now: datetime | None = None) -> list[DagChange]:
    """Apply a loaded commit to the registry; returns what changed (empty: nothing did).

    Work-tree snapshots (no commit) are not recorded: only commits are ever loaded.
    """
    if snapshot.commit is None:
        return []
    state_root = Path(state_root)
    try:
        with _locked(state_root):
            old = read_registry(state_root)
            new, changes = apply_snapshot(old, snapshot)
            unsaved = [e.version for e in (*old.dags.values(), *new.dags.values()) if not e.version.saved]  # new, or format 1's
            VersionStore(state_root).save(unsaved)  # durable before any registry names them
            if changes or set(new.errors) != set(old.errors):
                when = (now or datetime.now(timezone.utc)).isoformat()
                _append_reload(state_root, Reload(when, new.attempted or CommitRef(""), tuple(changes), new.errors))
            if new != old or unsaved:  # compact: json's C encoder (indent= falls back to Python, 4x slower)
                write_atomic(state_root / REGISTRY_FILE, json.dumps(_registry_json(new), separators=(",", ":")), durable=True)
                _remember(state_root / REGISTRY_FILE, new)
    except OSError as exc:  # full disk, read-only state: one line, and the old registry stays whole
        where = exc.filename or state_root / REGISTRY_FILE  # the file that failed, when the error knows it
        raise StateError(f"{where}: cannot record the DAGs of {snapshot.commit.sha[:8]}: {exc.strerror or exc}") from None
    for change in changes:
        log.info("DAG %s at %s", change.describe(), new.attempted.short if new.attempted else "?")
    return changes


@contextmanager
def _locked(state_root: Path) -> Iterator[None]:
    state_root.mkdir(parents=True, exist_ok=True)
    with open(state_root / LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _append_reload(state_root: Path, reload: Reload) -> None:
    path = state_root / RELOADS_FILE
    new_file = not path.exists()
    line = json.dumps(_reload_json(reload), separators=(",", ":")) + "\n"
    with open(path, "ab") as fh:
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    if new_file:
        fsync_dir(state_root)


# -- reading ----------------------------------------------------------------------------


def read_registry(state_root: Path) -> Registry:
    """The current registry; empty when nothing was recorded yet.

    Parsed once per version of the file in each process (its version files once per
    version): callers share the result and must not mutate it.
    """
    path = Path(state_root) / REGISTRY_FILE
    try:
        identity = _identity(path)
        cached = _READ_CACHE.get(path)
        if cached is not None and cached[0] == identity:
            return cached[1]
        registry = _registry(json.loads(path.read_text(encoding="utf-8")), VersionStore(Path(state_root)))
    except FileNotFoundError:
        return Registry()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StateError(f"{path}: unreadable DAG registry ({reason}); delete it and let the daemon reload") from None
    _cache(path, identity, registry)  # a replacement between stat and read only costs a re-read
    return registry


READ_CACHE_SIZE = 4  # state directories whose parsed registry this process keeps
_READ_CACHE: dict[Path, tuple[tuple[int, int, int], Registry]] = {}


def _identity(path: Path) -> tuple[int, int, int]:
    """Changes whenever the file is replaced (write_atomic: a new inode) or rewritten."""
    info = path.stat()
    return info.st_ino, info.st_size, info.st_mtime_ns


def _remember(path: Path, registry: Registry) -> None:
    """After writing (under the registry lock): this process need not parse it again."""
    _cache(path, _identity(path), registry)


def _cache(path: Path, identity: tuple[int, int, int], registry: Registry) -> None:
    _READ_CACHE.pop(path, None)
    _READ_CACHE[path] = (identity, registry)
    while len(_READ_CACHE) > READ_CACHE_SIZE:  # e.g. a test session's many state directories
        del _READ_CACHE[next(iter(_READ_CACHE))]


def read_reloads(state_root: Path) -> list[Reload]:
    """Every recorded reload, oldest first; a torn last line (crash mid-append) is ignored."""
    path = Path(state_root) / RELOADS_FILE
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    reloads = []
    for number, raw in enumerate(lines, 1):
        try:
            reloads.append(_reload(json.loads(raw)))
        except (ValueError, KeyError, TypeError) as exc:
            if number < len(lines):
                log.warning("%s:%d: skipping a damaged reload record (%s)", path, number, exc)
    return reloads


def dag_history(state_root: Path, dag_id: str) -> list[Reload]:
    """The reloads that changed `dag_id`, newest first, each with only that DAG's change."""
    history = []
    for reload in reversed(read_reloads(state_root)):
        mine = tuple(c for c in reload.changes if c.dag_id == dag_id)
        if mine:
            history.append(replace(reload, changes=mine))
    return history


# -- JSON shapes ------------------------------------------------------------------------


def _problem(data: dict[str, Any]) -> Problem:
    return Problem(data["path"], int(data["line"]), data["message"])


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"path": problem.path, "line": problem.line, "message": problem.message}


def _commit(data: dict[str, Any]) -> CommitRef:
    return CommitRef(**{k: data.get(k, "") for k in ("sha", "subject", "author", "email", "time")})


def _commit_json(commit: CommitRef) -> dict[str, Any]:
    return {"sha": commit.sha, "subject": commit.subject, "author": commit.author, "email": commit.email, "time": commit.time}


def _registry(data: dict[str, Any], store: VersionStore) -> Registry:
    if data.get("v") not in (1, FORMAT):
        raise ValueError(f"format {data.get('v')!r}, this gitflowd reads 1 and {FORMAT}")
    commits = {sha: _commit({**c, "sha": sha}) for sha, c in data.get("commits", {}).items()}
    return Registry(
        attempted=_commit(data["attempted"]) if data.get("attempted") else None,
        dags={d["id"]: _entry(d, _version(d, store, data["v"]), commits) for d in data["dags"]},
        errors=tuple(_problem(p) for p in data.get("errors", ())),
    )


def _version(data: dict[str, Any], store: VersionStore, form: int) -> VersionRef:
    """Format 1 kept the version inline: it becomes an unsaved ref (written at the next record)."""
    return store.ref(data["version"]) if form == FORMAT else VersionRef.of(DagVersion(data["source"], data["dag"]))


def _entry(data: dict[str, Any], version: VersionRef, commits: dict[str, CommitRef]) -> DagEntry:
    """Format 2 names an entry's commits by SHA in the file's `commits` table; format 1 inlined them."""
    commit, since = (commits[c] if isinstance(c, str) else _commit(c) for c in (data["commit"], data["since"]))
    return DagEntry(
        id=data["id"], path=data["path"], blob=data["blob"], version=version, commit=commit, since=since,
        retired=bool(data["retired"]), errors=tuple(_problem(p) for p in data["errors"]),
    )


def _entry_json(entry: DagEntry) -> dict[str, Any]:
    return {
        "id": entry.id, "path": entry.path, "blob": entry.blob, "version": entry.version.key,
        "commit": entry.commit.sha, "since": entry.since.sha, "retired": entry.retired,
        "errors": [_problem_json(p) for p in entry.errors],
    }


def _registry_json(registry: Registry) -> dict[str, Any]:
    """Each commit once (1,000 DAGs share a few): the file is a third of the size."""
    commits = {c.sha: c for e in registry.dags.values() for c in (e.commit, e.since)}
    return {
        "v": FORMAT,
        "attempted": _commit_json(registry.attempted) if registry.attempted else None,
        "errors": [_problem_json(p) for p in registry.errors],
        "commits": {sha: {k: v for k, v in _commit_json(c).items() if k != "sha"} for sha, c in commits.items()},
        "dags": [_entry_json(e) for e in registry.dags.values()],
    }


def _change(data: dict[str, Any]) -> DagChange:
    errors = tuple(_problem(p) for p in data.get("errors", ()))
    return DagChange(data["dag"], ChangeKind(data["change"]), data["path"], data.get("blob", ""), errors,
                     data.get("old_path", ""))


def _reload(data: dict[str, Any]) -> Reload:
    changes = tuple(_change(c) for c in data["changes"])
    return Reload(data["ts"], _commit(data["commit"]), changes, tuple(_problem(p) for p in data.get("errors", ())))


def _reload_json(reload: Reload) -> dict[str, Any]:
    changes = [_change_json(c) for c in reload.changes]
    return {"v": RELOADS_FORMAT, "ts": reload.ts, "commit": _commit_json(reload.commit), "changes": changes,
            "errors": [_problem_json(p) for p in reload.errors]}


def _change_json(change: DagChange) -> dict[str, Any]:
    """`old_path` only when the file moved: older records and readers stay as they were."""
    data = {"dag": change.dag_id, "change": change.change.value, "path": change.path, "blob": change.blob,
            "errors": [_problem_json(p) for p in change.errors]}
    return {**data, "old_path": change.old_path} if change.old_path else data
