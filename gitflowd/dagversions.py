"""DAG versions: the bulky, immutable part of each DAG version (its TOML source and task
graph), one file per version, so that a reload rewrites only what changed.

Flow: the registry wraps each version it meets in a `VersionRef`: `VersionRef.of(version)`
for one held in memory (a new commit's file, or a registry file of format 1 that kept
sources inline), `VersionStore.ref(key)` for one named by the registry file ->
`VersionStore.save(refs)` writes the unsaved ones to `STATE/dag_versions/<key>.json`
(temporary file, fsync, rename, one fsync of the directory; a file already there with the
same bytes is left alone) before the registry file that names them is replaced ->
readers ask `ref.get()` (the file is read on first use and checked against its name) or
`ref.build()` (the Dag, built once per version in a process).

The key is the SHA-256 of the file's bytes: the same version is written once however many
commits, paths or reloads it outlives, and a damaged file is told from a good one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitflowd.atomic import fsync_dir, write_atomic
from gitflowd.dag import Dag
from gitflowd.errors import StateError

log = logging.getLogger(__name__)

VERSIONS_DIR = "dag_versions"
FORMAT = 1
_KEY = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class DagVersion:
    source: str  # the TOML text of the file
    dag: dict[str, Any]  # Dag.to_dict() of it


class VersionRef:
    """One DAG version by its key. Compared by key; what it loads is a cache, not state."""

    __slots__ = ("key", "_store", "_version", "_raw", "_dag")

    def __init__(self, key: str, store: VersionStore | None = None, version: DagVersion | None = None, raw: bytes | None = None):
        self.key, self._store, self._version, self._raw, self._dag = key, store, version, raw, None

    @classmethod
    def of(cls, version: DagVersion) -> VersionRef:
        """A version held in memory and not yet saved."""
        raw = _encode(version)
        return cls(hashlib.sha256(raw).hexdigest(), None, version, raw)

    @property
    def saved(self) -> bool:
        return self._raw is None

    def get(self) -> DagVersion:
        if self._version is None:
            assert self._store is not None, "a ref without a version has a store"
            self._version = self._store.read(self.key)
        return self._version

    def build(self) -> Dag:
        """The Dag, built once (for 1,000 DAGs Dag.from_dict costs 0.4 s: the daemon's loop and
        the site's index ask for every DAG each time)."""
        if self._dag is None:
            self._dag = Dag.from_dict(self.get().dag)
        return self._dag

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VersionRef) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"VersionRef({self.key[:12]})"


class VersionStore:
    """The version files of one state directory."""

    def __init__(self, state_root: Path):
        self.state_root = Path(state_root)
        self.dir = self.state_root / VERSIONS_DIR

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def ref(self, key: str) -> VersionRef:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"bad DAG version key {key!r}")
        return VersionRef(key, self)

    def read(self, key: str) -> DagVersion:
        """The version named `key`; a StateError naming the file when it is missing or damaged."""
        path = self.path(key)
        try:
            raw = path.read_bytes()
            if hashlib.sha256(raw).hexdigest() != key:
                raise ValueError("its content does not match its name")
            data = json.loads(raw)
            return DagVersion(data["source"], data["dag"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StateError(f"{path}: unreadable DAG version ({reason}); "
                             f"delete {self.state_root / 'dags.json'} and let the daemon reload") from None

    def save(self, refs: Iterable[VersionRef]) -> int:
        """Make every unsaved ref durable (OSError on failure); returns how many files were written."""
        pending = [ref for ref in refs if not ref.saved]
        if not pending:
            return 0
        self._make_dir()
        written = sum(self._write(ref) for ref in {ref.key: ref for ref in pending}.values())
        if written:
            fsync_dir(self.dir)  # once for the batch: each file was fsynced before its rename
        for ref in pending:
            ref._store, ref._raw = self, None
        return written

    def _make_dir(self) -> None:
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True)
            fsync_dir(self.state_root)

    def _write(self, ref: VersionRef) -> bool:
        """Write one version unless its file is already there, whole (written once)."""
        path, raw = self.path(ref.key), ref._raw
        assert raw is not None
        try:
            if path.read_bytes() == raw:
                return False
            log.warning("%s: damaged DAG version file, writing it again", path)
        except FileNotFoundError:
            pass
        write_atomic(path, raw, durable=True, sync_dir=False)
        return True


def _encode(version: DagVersion) -> bytes:
    # compact: json's C encoder (indent= falls back to Python, 4x slower)
    return json.dumps({"v": FORMAT, "source": version.source, "dag": version.dag}, separators=(",", ":")).encode("utf-8")
