"""The state directory (DESIGN.md section 4): its layout, and read access to its runs.

Flow: `StateDir(path)` names every path (journals, logs, checkouts, workspaces, inbox,
lock) -> `run_ids` / `runs()` list a DAG's runs, each replayed afresh by state.py's
`read_run`, a damaged journal set aside in `broken` -> `run_heads()` gives what each run's
first record says (kind, logical date), read once per journal, for the scheduler ->
`LiveRun` follows one run as its runner writes it. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gitflowd import journal
from gitflowd.dag import is_valid_id
from gitflowd.errors import DagNotFound, EmptyJournal, JournalCorrupt, RunNotFound, StateError
from gitflowd.state import RunState, read_run


def _run_id_key(run_id: str) -> tuple[str, int, str]:
    """Sort key of `kind__YYYYmmddTHHMMSSZ[-N]`: by time, then counter (newest last)."""
    stamp = run_id.split("__", 1)[-1]
    base, _, counter = stamp.partition("-")
    return base, int(counter) if counter.isdigit() else 1, run_id


def log_name(task_id: str, attempt: int) -> str:
    """The file name of one attempt's log, in its run's log directory."""
    return f"{task_id}.{attempt}.log"


@dataclass(frozen=True)
class RunHead:
    """What a run's first record says of it: enough to schedule by, without replaying it."""

    run_id: str
    kind: str
    logical_date: datetime


class StateDir:
    """The layout of a state directory (DESIGN.md section 4) and read access to its runs."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.logs_dir = self.root / "logs"
        self.checkouts = self.root / "checkouts"
        self.workspaces = self.root / "workspaces"
        self.inbox = self.root / "inbox"
        self.parse_cache = self.root / "cache" / "dags"  # parsed DAG files by path and blob (parsecache.py)
        self.lock_path = self.root / "daemon.lock"
        self.broken: list[tuple[str, str]] = []  # (journal path, error) from the last runs() or run_heads()
        self._heads: dict[Path, tuple[int, RunHead]] = {}  # journal -> (inode, its head): a first record never changes

    def journal_path(self, dag_id: str, run_id: str) -> Path:
        return self.runs_dir / dag_id / f"{run_id}.jsonl"

    def log_dir(self, dag_id: str, run_id: str) -> Path:
        return self.logs_dir / dag_id / run_id

    def log_path(self, dag_id: str, run_id: str, task_id: str, attempt: int) -> Path:
        return self.log_dir(dag_id, run_id) / log_name(task_id, attempt)

    def workspace(self, dag_id: str, run_id: str) -> Path:
        return self.workspaces / dag_id / run_id

    def dag_ids(self) -> list[str]:
        """DAGs that have at least one run journal, sorted."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir() if p.is_dir() and any(p.glob("*.jsonl")))

    def run_ids(self, dag_id: str) -> list[str]:
        """Run ids of a DAG, newest first."""
        folder = self.runs_dir / dag_id
        ids = [p.name[:-6] for p in folder.glob("*.jsonl")] if folder.is_dir() else []
        return sorted(ids, key=_run_id_key, reverse=True)

    def load_run(self, dag_id: str, run_id: str) -> RunState:
        """Replay one run's journal (always fresh from disk)."""
        if not is_valid_id(dag_id):  # ids name files: '../x' would reach another DAG's runs
            raise DagNotFound(dag_id, f": no runs of it in {self.root} (see `gitflowd status`)")
        if not is_valid_id(run_id):
            raise RunNotFound(dag_id, run_id)
        path = self.journal_path(dag_id, run_id)
        if not path.is_file():
            if not path.parent.is_dir():
                raise DagNotFound(dag_id, f": no runs of it in {self.root} (see `gitflowd status`)")
            raise RunNotFound(dag_id, run_id)
        try:
            return read_run(path)
        except EmptyJournal:
            raise RunNotFound(dag_id, run_id, " (its journal holds no record: the run's creation never completed)") from None

    def runs(self, dag_id: str | None = None) -> list[RunState]:
        """Every run (of one DAG or all), newest first; a damaged journal is listed in
        `self.broken` and skipped so that the others still load. The caller reports it, once,
        to its own audience (the CLI on stderr, the daemon in its log): logging it here too
        showed every damaged journal twice.

        Read afresh at every call and kept by nobody here: a long-lived daemon holding every
        run it ever listed grew by ~27 kB a run. What the scheduler asks again and again is
        in `run_heads`.
        """
        self.broken = []
        result = []
        for dag in [dag_id] if dag_id else self.dag_ids():
            for run_id in self.run_ids(dag):
                run = self._read(self.journal_path(dag, run_id))
                if run is not None:
                    result.append(run)
        return sorted(result, key=lambda r: (r.logical_date, _run_id_key(r.run_id)), reverse=True)

    def _read(self, path: Path) -> RunState | None:
        try:
            return read_run(path)
        except EmptyJournal:
            return None  # no run was created: nothing to list, nothing damaged
        except (OSError, JournalCorrupt, StateError) as exc:
            self.broken.append((str(path), str(exc)))
            return None

    def run_heads(self, dag_id: str) -> list[RunHead]:
        """Each run of a DAG as its first record tells it (kind, logical date), newest first:
        read once per journal and kept, since that record never changes. A journal whose first
        record cannot be read is in `self.broken`; one with no whole record is no run."""
        self.broken = []
        heads = []
        for run_id in self.run_ids(dag_id):
            head = self._head(self.journal_path(dag_id, run_id))
            if head is not None:
                heads.append(head)
        return heads

    def _head(self, path: Path) -> RunHead | None:
        try:
            inode = path.stat().st_ino
            kept = self._heads.get(path)
            if kept and kept[0] == inode:
                return kept[1]
            first = journal.read_first(path)
            if first is None:
                return None  # not kept: the creation may still be written, or be made again
            if first.get("event") != journal.RUN_CREATED:
                raise StateError(f"{path}: does not start with a run_created record")
            head = RunHead(first["run_id"], first["kind"], datetime.fromisoformat(first["logical_date"]))
        except journal.CorruptRecord as exc:
            self.broken.append((str(path), str(JournalCorrupt(exc.path, exc.line, exc.reason))))
            return None
        except (OSError, StateError, KeyError, TypeError, ValueError) as exc:
            self.broken.append((str(path), str(exc)))
            return None
        self._heads[path] = (inode, head)
        return head


class LiveRun:
    """A run followed as its runner writes it (`logs -f`, `stop`): replayed again only when
    its journal grew, so polling an idle run reads nothing."""

    def __init__(self, state: StateDir, dag_id: str, run_id: str):
        self.state, self._path = state, state.journal_path(dag_id, run_id)
        self._size = self._path.stat().st_size  # before reading: a record written meanwhile is read again
        self.run = state.load_run(dag_id, run_id)

    def refresh(self) -> RunState:
        size = self._path.stat().st_size
        if size != self._size:
            self.run, self._size = self.state.load_run(self.run.dag_id, self.run.run_id), size
        return self.run
