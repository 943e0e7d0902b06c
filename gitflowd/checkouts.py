"""Checkouts: the read-only tree of one commit, shared by the runs pinned to it.

Flow: `materialise(git_dir, sha, root)` returns `root/<sha>` if it exists; else it removes
temporary trees that crashed processes left (older than an hour), writes the commit's files
into a private temporary directory (`git read-tree` into a private index, then
`git checkout-index`, as `git checkout` would write them: not `git archive`, which drops
`export-ignore` files and rewrites `export-subst` ones), makes it read-only and renames it
into place (the commit point: a process that loses the race drops its copy and uses the winner's).
`prune(root, keep)` deletes the checkouts no run needs (the daemon's, now and then).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from gitflowd import gitcli
from gitflowd.atomic import fsync_dir
from gitflowd.errors import RepoError

log = logging.getLogger(__name__)

STALE_TEMP_SECONDS = 3600


def materialise(git_dir: Path, sha: str, root: Path) -> Path:
    """A read-only tree of commit `sha` at `root/<sha>`; built once, safe if processes race."""
    target = root / sha
    if target.is_dir():
        return target
    try:
        _build(git_dir, sha, root, target)
    except OSError as exc:
        raise RepoError(f"cannot check out {sha[:8]} into {root}: {exc.strerror or exc}") from None
    return target


def prune(root: Path, keep: set[str], older_than: float, most: int) -> list[str]:
    """Delete up to `most` of the checkouts made more than `older_than` seconds ago, except
    those of commits in `keep` (a run that needs one again gets it made again from Git);
    returns their shas.
    Each is first renamed to a hidden temporary name, so that a crash mid-delete leaves no
    partial tree under the commit's name."""
    try:
        entries = sorted(root.iterdir())
    except FileNotFoundError:
        return []
    removed, cutoff = [], time.time() - older_than
    for path in entries:
        if path.name.startswith(".") or path.name in keep or not path.is_dir() or path.stat().st_mtime > cutoff:
            continue
        doomed = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=root))
        os.rename(path, doomed / "tree")
        _remove_tree(doomed)
        removed.append(path.name)
        if len(removed) >= most:
            break
    return removed


def _build(git_dir: Path, sha: str, root: Path, target: Path) -> None:
    """Write into a private temporary tree, then rename it into place (the commit point)."""
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root, sha)
    temp = Path(tempfile.mkdtemp(prefix=f".{sha}.", dir=root))  # holds the tree and its index
    tree = temp / "tree"
    try:
        tree.mkdir()
        _check_out_into(git_dir, sha, tree, temp / "index")
        _make_read_only(tree)
        os.rename(tree, target)
    except BaseException:
        _remove_tree(temp)
        if target.is_dir():  # another process won the race: its tree is the same
            return
        raise
    _remove_tree(temp)
    fsync_dir(root)
    log.info("checked out %s at %s", sha[:8], target)


def _check_out_into(git_dir: Path, sha: str, dest: Path, index: Path) -> None:
    """The files of commit `sha` in `dest`, through an index of our own (the repository's
    index and work tree are never touched)."""
    # Not the local configuration of a clone made on Windows or FAT: core.symlinks=false would
    # write links as text files, core.autocrlf=true scripts with CRLF line ends. The commit's own
    # .gitattributes (eol, filters such as LFS) still apply, as they do for every clone.
    where = [f"--git-dir={git_dir}", f"--work-tree={dest}", "-c", "core.symlinks=true", "-c", "core.autocrlf=false",
             "-c", "core.eol=lf"]
    for args in (["read-tree", sha], ["checkout-index", "--all", "--force"]):
        try:
            done = gitcli.run([*where, *args], dest, index=index)
        except gitcli.GitFailed as exc:
            raise RepoError(f"cannot check out {sha[:8]}: {exc}") from None
        if done.returncode != 0:
            reason = gitcli.message(done.stderr) or f"exit {done.returncode}"
            raise RepoError(f"git {args[0]} {sha[:8]} failed: {reason}")


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

