"""Helpers shared by the commands: open the repository, load a snapshot, format values.

Not a command itself (it is not listed in cli.COMMANDS). Importing it stays cheap:
repo.py and the loader (Jinja2, croniter) are imported only when a repository is opened.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from gitflowd import settings
from gitflowd.errors import DagFileError, DagNotFound, Problem

if TYPE_CHECKING:
    from gitflowd.dag import Dag
    from gitflowd.repo import Repo, Snapshot
    from gitflowd.statedir import StateDir


def open_repo(args: argparse.Namespace) -> Repo:
    """The repository named by --repo / GITFLOWD_REPO / the current directory."""
    from gitflowd.parsecache import ParseCache
    from gitflowd.repo import Repo
    from gitflowd.statedir import StateDir
    where = settings.resolve(args.repo, args.state, args.site)
    # Parses are kept for the next command where a state directory already exists: `validate`
    # and `list` must not create one in a repository that never ran anything.
    cache = ParseCache(StateDir(where.state).parse_cache) if where.state.is_dir() else None
    return Repo(where.repo, parse_cache=cache)


def load_snapshot(args: argparse.Namespace, rev: str | None = None, worktree: bool = False) -> Snapshot:
    """The DAGs of `rev` (default: the branch head), or of the files on disk."""
    if worktree:
        from gitflowd.repo import load_worktree
        return load_worktree(settings.resolve(args.repo, args.state, args.site).repo)
    with open_repo(args) as repo:
        return repo.load(repo.resolve(rev))


def find_dag(snapshot: Snapshot, dag_id: str, rev: str | None = None) -> Dag:
    """The DAG `dag_id`, or its file's problems, or DagNotFound with a suggestion (and the
    --rev it was looked for at: `status` still lists a DAG that a later commit deleted)."""
    if dag_id in snapshot.dags:
        return snapshot.dags[dag_id].dag
    problems = snapshot.problems_of(dag_id)
    if problems:
        raise DagFileError(problems)
    from gitflowd.loader import suggest
    ids = list(snapshot.dags)
    hint = snapshot.defined_in(dag_id) or suggest(dag_id, ids) or (f" (DAGs: {', '.join(ids[:10])})" if ids else " (there are no valid DAGs)")
    raise DagNotFound(dag_id, f" at {rev}{hint}" if rev else hint)


def problem_dict(problem: Problem) -> dict[str, object]:
    return {"path": problem.path, "line": problem.line, "message": problem.message}


def format_duration(seconds: float | None) -> str:
    """90 -> '1m30s', 5400 -> '1h30m', None -> '-'."""
    if seconds is None:
        return "-"
    whole, rest = divmod(seconds, 1)
    whole = int(whole)
    if rest:
        return f"{seconds:g}s"
    parts = [(whole // 86400, "d"), (whole % 86400 // 3600, "h"), (whole % 3600 // 60, "m"), (whole % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def format_time(moment: datetime | None, timezone: str) -> str:
    """An instant in a DAG's timezone, e.g. '2026-11-26 00:00 KST'."""
    if moment is None:
        return "-"
    local = moment.astimezone(ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d %H:%M %Z")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned with two spaces; the last column is not padded."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [str(cell).ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def report_broken(state: StateDir) -> bool:
    """One error line per journal the last `state.runs()` could not read; True if any."""
    for _path, error in state.broken:
        print(f"gitflowd: error: {error}", file=sys.stderr)
    return bool(state.broken)
