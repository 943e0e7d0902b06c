"""The Git side of gitflowd: branch head, DAG files at a commit, checkouts per commit.

Flow: `Repo(path, branch)` opens a work tree or a bare repository (GitPython) and checks
that it has commits -> `resolve(rev)` names a commit (None = head of the followed branch)
-> `dag_files(sha)` lists `dags/**/*.toml` from the commit's tree -> `load(sha)` parses
each file through the loader, reusing results cached by (path, blob sha), so a commit
that changes one file of a thousand parses one -> a frozen `Snapshot` of valid DAGs by
id plus every problem. `checkout(sha, root)` materialises a commit's tree, read-only, at
`root/<sha>` for the runs pinned to it.

Everything is read from Git objects, never from the work tree; only `load_worktree`
reads files on disk (for `validate --worktree`, a pre-commit hook).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

import git
from gitdb.exc import BadName, BadObject

from gitflowd.atomic import fsync_dir
from gitflowd.dag import Dag
from gitflowd.errors import DagFileError, Problem, RepoError
from gitflowd.loader import load_dag, suggest
from gitflowd.toml_lines import locate

log = logging.getLogger(__name__)

DAGS_DIR = "dags"
_SYMLINK = 0o120000
CACHE_SIZE = 4096  # parsed files kept; a reload re-parses only what is not in here
STALE_TEMP_SECONDS = 3600


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    subject: str
    author: str
    email: str
    time: datetime  # author time, aware (as `git log` shows it)

    @property
    def short(self) -> str:
        return self.sha[:8]


@dataclass(frozen=True)
class LoadedDag:
    """A valid DAG and where it came from."""

    dag: Dag
    path: str  # repo-relative, e.g. dags/umbrella.toml
    blob: str  # blob sha ('' for a work-tree file)
    source: str  # the TOML text


@dataclass(frozen=True)
class Snapshot:
    """Every DAG file of one commit (or of the work tree when `commit` is None)."""

    commit: CommitInfo | None
    dags: dict[str, LoadedDag] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    paths: tuple[str, ...] = ()  # every DAG file looked at, valid or not

    @property
    def valid(self) -> bool:
        return not self.problems

    def problems_for(self, path: str) -> list[Problem]:
        return [p for p in self.problems if p.path == path]


# Result of parsing one file: the DAG or its problems.
_Parsed = tuple[Dag | None, tuple[Problem, ...]]


class Repo:
    """One Git repository, following one branch. Not thread-safe: one Repo per thread."""

    def __init__(self, path: Path, branch: str | None = None):
        self.path = Path(path)
        self._git = _open(self.path)
        self.bare = self._git.bare
        self.git_dir = Path(self._git.git_dir)
        self.branch = _pick_branch(self._git, self.path, branch)
        self._cache: OrderedDict[tuple[str, str], tuple[str, _Parsed]] = OrderedDict()
        self.parsed = 0  # files parsed so far (the blob cache's misses)

    def close(self) -> None:
        """Stop GitPython's helper processes."""
        self._git.close()

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commits --------------------------------------------------------------------

    def resolve(self, rev: str | None = None) -> str:
        """The full sha of `rev` (None = head of the followed branch); RepoError naming it."""
        return self._commit(rev).hexsha

    def _commit(self, rev: str | None) -> git.Commit:
        target = f"refs/heads/{self.branch}" if rev is None and self.branch else rev or "HEAD"
        try:
            return self._git.commit(target)
        except (BadName, BadObject, ValueError, IndexError, git.GitCommandError):
            what = f"branch {self.branch!r}" if rev is None else f"revision {rev!r}"
            raise RepoError(f"unknown {what} in {self.path}") from None

    def is_ancestor(self, old: str, new: str) -> bool:
        """True when commit `old` is contained in `new`; False after a force-push (or if `old` is gone)."""
        try:
            return bool(self._git.is_ancestor(old, new))
        except (git.GitCommandError, ValueError):
            return False

    def commit_info(self, sha: str) -> CommitInfo:
        commit = self._commit(sha)
        summary = commit.summary
        return CommitInfo(
            sha=commit.hexsha,
            subject=summary if isinstance(summary, str) else summary.decode(errors="replace"),
            author=commit.author.name or "",
            email=commit.author.email or "",
            time=commit.authored_datetime,
        )

    # -- DAG files ------------------------------------------------------------------

    def dag_files(self, sha: str) -> dict[str, str]:
        """`dags/**/*.toml` regular files at commit `sha`: repo path -> blob sha, sorted by path."""
        return {path: blob for path, (blob, mode) in self._toml_blobs(sha).items() if mode != _SYMLINK}

    def _toml_blobs(self, sha: str) -> dict[str, tuple[str, int]]:
        try:
            tree = self._commit(sha).tree / DAGS_DIR
        except KeyError:
            return {}
        if tree.type != "tree":
            return {}
        found = {item.path: (item.hexsha, item.mode) for item in tree.traverse() if item.type == "blob" and item.path.endswith(".toml")}
        return dict(sorted(found.items()))

    def read_blob(self, blob_sha: str) -> str:
        """The text of a blob (UTF-8); RepoError naming the blob when it is not text."""
        data = self._git.odb.stream(bytes.fromhex(blob_sha)).read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RepoError(f"blob {blob_sha[:8]} is not UTF-8 text (byte {exc.start})") from None

    def load(self, sha: str) -> Snapshot:
        """Parse every DAG file of commit `sha` (cached by path and blob)."""
        results = {}
        for path, (blob, mode) in self._toml_blobs(sha).items():
            if mode == _SYMLINK:  # Git stores the link target as the blob: not a DAG
                results[path] = (blob, "", (None, (_link_problem(path),)))
                continue
            source, parsed = self._parse_cached(path, blob)
            results[path] = (blob, source, parsed)
        return _snapshot(self.commit_info(sha), results)

    def _parse_cached(self, path: str, blob: str) -> tuple[str, _Parsed]:
        key = (path, blob)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        self.parsed += 1
        try:
            source = self.read_blob(blob)
            entry = source, _parse(path, source)
        except RepoError:
            entry = "", _not_text(path)
        self._cache[key] = entry
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return entry

    # -- checkouts ------------------------------------------------------------------

    def checkout(self, sha: str, root: Path) -> Path:
        """A read-only tree of commit `sha` at `root/<sha>`; built once, safe if processes race."""
        sha, root = self.resolve(sha), Path(root)
        target = root / sha
        if target.is_dir():
            return target
        try:
            self._build_checkout(sha, root, target)
        except OSError as exc:
            raise RepoError(f"cannot check out {sha[:8]} into {root}: {exc.strerror or exc}") from None
        return target

    def _build_checkout(self, sha: str, root: Path, target: Path) -> None:
        """Extract into a private temporary tree, then rename it into place (the commit point)."""
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(root, sha)
        temp = Path(tempfile.mkdtemp(prefix=f".{sha}.", dir=root))
        try:
            self._archive_into(sha, temp)
            _make_read_only(temp)
            os.rename(temp, target)
        except BaseException:
            _remove_tree(temp)
            if target.is_dir():  # another process won the race: its tree is the same
                return
            raise
        fsync_dir(root)
        log.info("checked out %s at %s", sha[:8], target)

    def _archive_into(self, sha: str, dest: Path) -> None:
        command = ["git", f"--git-dir={self.git_dir}", "archive", "--format=tar", sha]
        unreadable = ""
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            try:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                    archive.extractall(dest, filter="tar")
            except tarfile.TarError as exc:
                unreadable = str(exc)
                proc.stdout.read()  # let git finish, so its own error (if any) is the one reported
            error = proc.stderr.read().decode(errors="replace").strip()
        if proc.returncode != 0:
            raise RepoError(f"git archive {sha[:8]} failed: {error.splitlines()[-1] if error else proc.returncode}")
        if unreadable:
            raise RepoError(f"cannot extract commit {sha[:8]}: {unreadable}")


def load_worktree(path: Path) -> Snapshot:
    """Parse the DAG files on disk under `path/dags/` (uncommitted edits included)."""
    base = Path(path)
    if not base.is_dir():
        raise RepoError(f"{base} does not exist")
    if (base / "HEAD").is_file() and (base / "objects").is_dir() and not (base / DAGS_DIR).exists():
        raise RepoError(f"{base} is a bare repository: it has no work tree to validate (drop --worktree)")
    results = {}
    for file in sorted((base / DAGS_DIR).rglob("*.toml")):
        if not file.is_file():
            continue
        rel = file.relative_to(base).as_posix()
        if file.is_symlink():
            results[rel] = ("", "", (None, (_link_problem(rel),)))
            continue
        try:
            source = file.read_text(encoding="utf-8")
            results[rel] = ("", source, _parse(rel, source))
        except UnicodeDecodeError:
            results[rel] = ("", "", _not_text(rel))
    return _snapshot(None, results)


# -- helpers ----------------------------------------------------------------------------


def _open(path: Path) -> git.Repo:
    if not path.exists():
        raise RepoError(f"repository {path} does not exist")
    try:
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RepoError(f"{path} is not a Git repository (git init it, or pass --repo DIR)") from None
    if not repo.bare and Path(repo.working_tree_dir or "").resolve() != path.resolve():
        raise RepoError(f"{path} is not the top of a Git repository (its top is {repo.working_tree_dir})")
    return repo


def _pick_branch(repo: git.Repo, path: Path, wanted: str | None) -> str | None:
    """The branch to follow: `wanted`, else HEAD's branch; None for a detached HEAD."""
    branches = [head.name for head in repo.heads]
    if not branches and not repo.head.is_valid():
        raise RepoError(f"repository {path} has no commits yet: commit your dags/ first")
    if wanted is not None:
        if wanted not in branches:
            raise RepoError(f"unknown branch {wanted!r} in {path}{suggest(wanted, branches)} (branches: {', '.join(branches)})")
        return wanted
    if repo.head.is_detached:
        return None
    current = repo.head.reference.name
    if current in branches:
        return current
    if len(branches) == 1:  # a bare repo whose HEAD names an unborn branch, pushed to another
        return branches[0]
    raise RepoError(f"HEAD of {path} names branch {current!r}, which has no commits (branches: {', '.join(branches)})")


def _parse(path: str, source: str) -> _Parsed:
    try:
        return load_dag(source, path), ()
    except DagFileError as exc:
        return None, tuple(exc.problems)


def _link_problem(path: str) -> Problem:
    return Problem(path, 1, "is a symbolic link; DAG files must be regular files")


def _not_text(path: str) -> _Parsed:
    return None, (Problem(path, 1, "not a UTF-8 text file"),)


def _snapshot(commit: CommitInfo | None, results: dict[str, tuple[str, str, _Parsed]]) -> Snapshot:
    """Assemble valid DAGs by id; a DAG id defined by several files is a problem in each."""
    by_id: dict[str, list[LoadedDag]] = {}
    problems: list[Problem] = []
    for path, (blob, source, (dag, file_problems)) in results.items():
        problems.extend(file_problems)
        if dag is not None:
            by_id.setdefault(dag.id, []).append(LoadedDag(dag=dag, path=path, blob=blob, source=source))
    dags = {}
    for dag_id, loaded in by_id.items():
        if len(loaded) == 1:
            dags[dag_id] = loaded[0]
            continue
        for item in loaded:
            others = ", ".join(other.path for other in loaded if other is not item)
            line = locate(item.source).line("dag", "id") if PurePosixPath(item.path).stem != dag_id else 1
            problems.append(Problem(item.path, line, f"DAG id {dag_id!r} is also defined in {others}; DAG ids must be unique"))
    problems.sort(key=lambda p: (p.path, p.line))
    return Snapshot(commit=commit, dags=dict(sorted(dags.items())), problems=problems, paths=tuple(results))


def _make_read_only(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            file = Path(dirpath, name)
            if not file.is_symlink():
                file.chmod(file.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        Path(dirpath).chmod(0o555)


def _remove_stale_temps(root: Path, sha: str) -> None:
    """Temporary trees left by a process that died while extracting (an hour is ample)."""
    for stale in root.glob(f".{sha}.*"):
        try:
            if time.time() - stale.stat().st_mtime > STALE_TEMP_SECONDS:
                _remove_tree(stale)
        except OSError:  # another process removed or renamed it first
            continue


def _remove_tree(root: Path) -> None:
    """Delete a (possibly read-only) tree."""
    if not root.exists():
        return
    for dirpath, _dirs, _files in os.walk(root):
        Path(dirpath).chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)

