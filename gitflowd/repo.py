"""The Git side of gitflowd: branch head, DAG files at a commit, checkouts per commit.

Flow: `Repo(path, branch)` opens a work tree or a bare repository and checks that it has
commits (repoopen.py: `git rev-parse`, `git for-each-ref`) -> `resolve(rev)` names a commit
(None = head of the followed branch) -> `dag_files(sha)` lists `dags/**/*.toml` from the commit's tree ->
`load(sha)` parses each file through the loader, reusing results cached by (path, blob sha),
in memory and, when given a ParseCache, on disk for the next process (parsecache.py),
so a commit that changes one file of a thousand parses one -> a frozen `Snapshot` of valid
DAGs by id plus every problem. Revisions, commits, trees and blobs all come from the Repo's
one `git cat-file --batch` process (objects parsed in gitobjects.py).
`checkout(sha, root)` materialises a commit's tree (`git checkout-index`), read-only, at
`root/<sha>` for the runs pinned to it.

Everything is read from Git objects, never from the work tree; only `load_worktree`
reads files on disk (for `validate --worktree`, a pre-commit hook). Git is run as the `git`
command (gitcli.py), not through a library: see docs/repo.md for why.
"""

from __future__ import annotations

import codecs
import logging
import posixpath
import subprocess
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from gitflowd import checkouts, gitcli, gitobjects, repoopen
from gitflowd.dag import Dag
from gitflowd.errors import DagFileError, Problem, RepoError
from gitflowd.loader import declared_id, load_dag
from gitflowd.parsecache import ParseCache
from gitflowd.toml_lines import locate

log = logging.getLogger(__name__)

DAGS_DIR = "dags"
CACHE_SIZE = 4096  # parsed files kept; a reload re-parses only what is not in here


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

    def for_run(self) -> dict[str, str]:
        """What a run's `run_created` record keeps of its commit (the site shows it)."""
        return {"subject": self.subject, "author": self.author, "time": self.time.isoformat()}


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
    declared: dict[str, str] = field(default_factory=dict)  # path -> DAG id of each file not loaded

    @property
    def valid(self) -> bool:
        return not self.problems

    def problems_for(self, path: str) -> list[Problem]:
        return [p for p in self.problems if p.path == path]

    def problems_of(self, dag_id: str) -> list[Problem]:
        """The problems of the files that did not load and mean DAG `dag_id` (by their
        `[dag] id`, or named so): what `run ID` or `show ID` says instead of 'unknown DAG'."""
        return [p for p in self.problems if dag_id in (self.declared.get(p.path), PurePosixPath(p.path).stem)]

    def defined_in(self, stem: str) -> str:
        """' (dags/x.toml defines DAG 'y')' for a DAG asked for by the stem of a file that sets
        another id; else ''."""
        found = [(d.path, i) for i, d in self.dags.items() if PurePosixPath(d.path).stem == stem != i]
        return "".join(f" ({path} defines DAG {dag_id!r})" for path, dag_id in found[:1])


# Result of parsing one file: the DAG or its problems.
_Parsed = tuple[Dag | None, tuple[Problem, ...]]


class Repo:
    """One Git repository, following one branch. Not thread-safe: one Repo per thread."""

    def __init__(self, path: Path, branch: str | None = None, parse_cache: ParseCache | None = None):
        self.path = Path(path)
        self.parse_cache = parse_cache
        self.bare, self.git_dir, self.common_dir = repoopen.open_repository(self.path)
        self.branch = repoopen.pick_branch(self._run, self.path, branch)
        self._objects = gitcli.ObjectReader(self.git_dir)  # started by the first blob read
        self._cache: OrderedDict[tuple[str, str], tuple[str, _Parsed]] = OrderedDict()
        self.parsed = 0  # files parsed so far (the blob cache's misses)

    def close(self) -> None:
        """Stop the `git cat-file` process."""
        self._objects.close()

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commits --------------------------------------------------------------------

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """`git ARGS` on this repository; RepoError when git cannot start."""
        try:
            return gitcli.run([f"--git-dir={self.git_dir}", *args], self.git_dir)
        except gitcli.GitFailed as exc:
            raise self._broken(str(exc)) from None

    def _broken(self, message: str) -> RepoError:
        if not self.path.exists():  # worded as a reopen says it, so that the daemon's retries log it once
            return RepoError(f"repository {self.path} does not exist")
        if not self.git_dir.is_dir():  # moved or deleted under us (the daemon retries)
            return RepoError(f"repository {self.path} does not exist any more")
        return RepoError(f"cannot read repository {self.path}: {message}")

    def resolve(self, rev: str | None = None) -> str:
        """The full sha of `rev` (None = head of the followed branch); RepoError naming it."""
        target = f"refs/heads/{self.branch}" if rev is None and self.branch else rev or "HEAD"
        found = None if target.startswith("-") else self._lookup(f"{self._safe_name(target)}^{{commit}}")
        if found is None:
            raise self._unknown(rev)
        return found[0]

    def _safe_name(self, rev: str) -> str:
        """`rev`, or for `NAME@{...}` (upstream, push, reflog) the sha of its commit: cat-file dies
        on such a revision that fails (no upstream, a reflog too short), so rev-parse reads it; and
        for `:/message`, whose search would swallow the `^{commit}` added to it."""
        if "@{" not in rev and not rev.startswith(":/"):
            return rev
        name = rev if rev.startswith(":/") else f"{rev}^{{commit}}"  # a message search names a commit
        done = self._run("rev-parse", "--verify", "--quiet", "--end-of-options", name)
        if done.returncode != 0:
            reason = gitcli.message(done.stderr)
            raise RepoError(f"unknown revision {rev!r} in {self.path}" + (f": {reason}" if reason else ""))
        return done.stdout.decode().strip()

    def _lookup(self, name: str) -> tuple[str, str, bytes] | None:
        """(sha, type, content) of the object `name` names, from the cat-file process."""
        try:
            return self._objects.lookup(name)
        except gitcli.GitFailed as exc:
            raise self._broken(str(exc)) from None

    def _unknown(self, rev: str | None) -> RepoError:
        if not self.git_dir.is_dir():
            return self._broken("")
        what = f"branch {self.branch!r}" if rev is None else f"revision {rev!r}"
        # why cat-file found no commit: a tag of a tree or a blob (peeled), `HEAD:dags`, a short sha of several
        kind = None if rev is None or rev.startswith("-") else self._objects.kind(f"{rev}^{{}}") or self._objects.kind(rev)
        if kind == "ambiguous":
            return RepoError(f"{what} is ambiguous in {self.path}: several objects' shas start with it (give more digits)")
        if kind is not None:
            return RepoError(f"{what} in {self.path} names a {kind}, not a commit")
        if rev is not None and (self.common_dir / "shallow").is_file():  # HEAD~5 beyond a --depth clone
            return RepoError(f"unknown {what} in {self.path}: a shallow clone, whose history stops short "
                             "(git fetch --unshallow fetches the rest)")
        return RepoError(f"unknown {what} in {self.path}")

    def is_ancestor(self, old: str, new: str) -> bool:
        """True when commit `old` is contained in `new`; False after a force-push (or if `old` is gone)."""
        if old.startswith("-") or new.startswith("-"):
            return False
        try:
            return self._run("merge-base", "--is-ancestor", old, new).returncode == 0
        except RepoError:
            return False

    def commit_info(self, sha: str) -> CommitInfo:
        return _commit_info(*self._commit(sha))

    def _commit(self, sha: str) -> tuple[str, gitobjects.Commit]:
        """The full sha and the parsed object of the commit `sha` names."""
        found = self._lookup(f"{self._safe_name(sha)}^{{commit}}")  # any revision: cat-file resolves it
        if found is None:
            raise self._unknown(sha)
        try:
            return found[0], gitobjects.parse_commit(found[2])
        except ValueError as exc:
            raise self._broken(f"commit {found[0][:8]}: {exc}") from None

    # -- DAG files ------------------------------------------------------------------

    def dag_files(self, sha: str) -> dict[str, str]:
        """`dags/**/*.toml` regular files at commit `sha`: repo path -> blob sha, sorted by path."""
        blobs = self._toml_blobs(*self._commit(sha))
        return {path: blob for path, (blob, mode) in blobs.items() if mode != gitobjects.SYMLINK}

    def _toml_blobs(self, sha: str, commit: gitobjects.Commit) -> dict[str, tuple[str, int]]:
        """Every blob under dags/ named *.toml, and every symbolic link (to a directory, maybe):
        path -> (blob sha, mode); symlinks have mode 0o120000."""
        found: dict[str, tuple[str, int]] = {}
        top = self._dags_entry(sha, commit)
        pending = [(DAGS_DIR, top.sha)] if top is not None and top.mode == gitobjects.TREE else []
        while pending:
            folder, tree = pending.pop()
            for entry in self._tree(tree, len(sha) // 2):
                path = f"{folder}/{entry.name}"
                if entry.mode == gitobjects.TREE:
                    pending.append((path, entry.sha))
                elif entry.mode == gitobjects.SYMLINK or entry.mode != gitobjects.SUBMODULE and path.endswith(".toml"):
                    found[path] = (entry.sha, entry.mode)
        return dict(sorted(found.items()))

    def _dags_entry(self, sha: str, commit: gitobjects.Commit) -> gitobjects.TreeEntry | None:
        """The commit's top-level `dags` entry (a tree; or a link or a submodule, which hold no DAGs)."""
        return {entry.name: entry for entry in self._tree(commit.tree, len(sha) // 2)}.get(DAGS_DIR)

    def _dags_problems(self, sha: str, commit: gitobjects.Commit) -> list[Problem]:
        """Why a `dags` link or submodule yields no DAG files (else 'no DAG files' puzzles a
        user whose work tree shows them through the link or the submodule's checkout)."""
        top = self._dags_entry(sha, commit)
        if top is not None and top.mode == gitobjects.SYMLINK:
            target = self._blob_bytes(top.sha).decode(errors="replace")
            return [Problem(DAGS_DIR, 1, f"is a symbolic link (to {target}); gitflowd reads DAG files "
                                         "from a real dags/ directory in the commit")]
        if top is not None and top.mode == gitobjects.SUBMODULE:
            return [Problem(DAGS_DIR, 1, "is a submodule; gitflowd reads DAG files from a dags/ directory "
                                         "of the repository itself")]
        return []  # a directory, none, or a plain file named dags (not meant as DAGs: it stays valid)

    def _tree(self, tree_sha: str, id_bytes: int) -> list[gitobjects.TreeEntry]:
        found = self._lookup(tree_sha)
        if found is None or found[1] != "tree":
            raise self._broken(f"tree {tree_sha[:8]} is missing")
        try:
            return gitobjects.tree_entries(found[2], id_bytes)
        except ValueError as exc:
            raise self._broken(f"tree {tree_sha[:8]}: {exc}") from None

    def read_blob(self, blob_sha: str) -> str:
        """The text of a blob (UTF-8); RepoError naming the blob when it is not text."""
        try:
            return self._blob_bytes(blob_sha).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RepoError(f"blob {blob_sha[:8]} is not UTF-8 text (byte {exc.start})") from None

    def _blob_bytes(self, blob_sha: str) -> bytes:
        try:
            data = self._objects.read(blob_sha)
        except gitcli.GitFailed as exc:
            raise self._broken(str(exc)) from None
        if data is None:
            raise RepoError(f"blob {blob_sha[:8]} is missing from {self.path}")
        return data

    def load(self, sha: str) -> Snapshot:
        """Parse every DAG file of commit `sha` (cached by path and blob)."""
        full, commit = self._commit(sha)  # one commit for the files and the commit info
        results = {}
        for path, (blob, mode) in self._toml_blobs(full, commit).items():
            if mode == gitobjects.SYMLINK:  # Git stores the link target as the blob: not a DAG
                problem = _link_problem(path) if path.endswith(".toml") else self._dir_link_problem(full, path, blob)
                if problem is not None:
                    results[path] = (blob, "", (None, (problem,)))
                continue
            source, parsed = self._parse_cached(path, blob)
            results[path] = (blob, source, parsed)
        return _snapshot(_commit_info(full, commit), results, self._dags_problems(full, commit))

    def _dir_link_problem(self, sha: str, path: str, blob: str) -> Problem | None:
        """A link under dags/ to a directory of the commit: the DAG files the work tree shows
        through it are not read (Git objects hold the link, not the files)."""
        target = self._blob_bytes(blob).decode(errors="replace")
        inside = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if target.startswith("/") or inside.startswith("../") or inside == "..":
            return None  # outside the repository: nothing to check it against
        found = self._lookup(f"{sha}:{inside}")
        if found is None or found[1] != "tree" or not self._holds_toml(found[0], len(sha) // 2):
            return None  # a link to scripts or data, not to DAGs
        return Problem(path, 1, f"is a symbolic link to the directory {inside}/; gitflowd does not follow links, "
                                "so no DAG file under it is read")

    def _holds_toml(self, tree_sha: str, id_bytes: int) -> bool:
        pending = [tree_sha]
        while pending:
            for entry in self._tree(pending.pop(), id_bytes):
                if entry.mode == gitobjects.TREE:
                    pending.append(entry.sha)
                elif entry.name.endswith(".toml"):
                    return True
        return False

    def _parse_cached(self, path: str, blob: str) -> tuple[str, _Parsed]:
        key = (path, blob)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        data = self._blob_bytes(blob)  # a missing blob is a broken repository, not a bad file
        try:
            source = data.decode("utf-8")
            entry = source, self._parse_or_reuse(path, blob, source)
        except UnicodeDecodeError:
            entry = "", _not_text(path, data)
        self._cache[key] = entry
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return entry

    def _parse_or_reuse(self, path: str, blob: str, source: str) -> _Parsed:
        """The parse another process left in the on-disk cache, else a fresh one (kept there)."""
        cached = self.parse_cache.get(path, blob) if self.parse_cache is not None else None
        if cached is not None:
            return cached
        self.parsed += 1
        parsed = _parse(path, source)
        if self.parse_cache is not None:
            self.parse_cache.put(path, blob, parsed)
        return parsed

    # -- checkouts ------------------------------------------------------------------

    def checkout(self, sha: str, root: Path) -> Path:
        """A read-only tree of commit `sha` at `root/<sha>`; built once, safe if processes race."""
        return checkouts.materialise(self.git_dir, self.resolve(sha), Path(root))


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
        data = file.read_bytes()
        try:
            source = data.decode("utf-8")
            results[rel] = ("", source, _parse(rel, source))
        except UnicodeDecodeError:
            results[rel] = ("", "", _not_text(rel, data))
    return _snapshot(None, results)


# -- helpers ----------------------------------------------------------------------------


def _commit_info(sha: str, commit: gitobjects.Commit) -> CommitInfo:
    return CommitInfo(sha=sha, subject=commit.message.split("\n", 1)[0], author=commit.author, email=commit.email,
                      time=commit.time)


def _parse(path: str, source: str) -> _Parsed:
    """One file's DAG or problems. A crash of the loader is a problem of that file only (and
    logged once: results are cached by blob), so one file can never make the repository unreadable."""
    try:
        return load_dag(source, path), ()
    except DagFileError as exc:
        return None, tuple(exc.problems)
    except Exception as exc:
        log.warning("loading %s failed unexpectedly", path, exc_info=True)
        return None, (Problem(path, 1, f"cannot load {path}: {type(exc).__name__}: {_one_line(exc)} "
                                       "(a bug in gitflowd: please report it)"),)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or "no message"


def _link_problem(path: str) -> Problem:
    return Problem(path, 1, "is a symbolic link; DAG files must be regular files")


def _not_text(path: str, data: bytes) -> _Parsed:
    if _utf16(data):  # what Notepad or PowerShell's > may write
        return None, (Problem(path, 1, "is UTF-16 text; DAG files must be UTF-8 (save it as UTF-8)"),)
    return None, (Problem(path, 1, "not a UTF-8 text file"),)


def _utf16(data: bytes) -> bool:
    """UTF-16 with a BOM whose text is mostly ASCII, as TOML is (not binary that starts with FF FE)."""
    if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    try:
        text = data.decode("utf-16")
    except UnicodeDecodeError:
        return False
    return sum(ch < "\x80" for ch in text) * 2 > len(text)


def _snapshot(commit: CommitInfo | None, results: dict[str, tuple[str, str, _Parsed]],
              problems: list[Problem] | None = None) -> Snapshot:
    """Assemble valid DAGs by id; a DAG id defined by several files is a problem in each.
    `problems` are the commit's own (a `dags` that is not a directory)."""
    by_id: dict[str, list[LoadedDag]] = {}
    problems = list(problems or ())
    declared: dict[str, str] = {}
    for path, (blob, source, (dag, file_problems)) in results.items():
        problems.extend(file_problems)
        if dag is not None:
            by_id.setdefault(dag.id, []).append(LoadedDag(dag=dag, path=path, blob=blob, source=source))
        else:  # read again for its id only: invalid files are few, and not cached by id
            declared[path] = declared_id(source, path)
    dags = {}
    for dag_id, loaded in by_id.items():
        if len(loaded) == 1:
            dags[dag_id] = loaded[0]
            continue
        for item in loaded:
            declared[item.path] = dag_id
            others = ", ".join(other.path for other in loaded if other is not item)
            line = locate(item.source).line("dag", "id") if PurePosixPath(item.path).stem != dag_id else 1
            problems.append(Problem(item.path, line, f"DAG id {dag_id!r} is also defined in {others}; DAG ids must be unique"))
    problems.sort(key=lambda p: (p.path, p.line))
    return Snapshot(commit=commit, dags=dict(sorted(dags.items())), problems=problems, paths=tuple(results),
                    declared=declared)
