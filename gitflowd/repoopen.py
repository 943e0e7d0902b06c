"""Opening a repository: which directory is its Git directory, and which branch to follow.

Flow: `open_repository(path)` asks `git rev-parse` (in `path`) whether it is bare, where its
Git directory and common directory are, and whether `path` is the top of its work tree;
every way that fails (no such directory, not a repository, a sub-directory, a Git directory
of a work tree elsewhere, a .git file pointing nowhere, another user's repository) is a
one-line RepoError -> `pick_branch(run, path, wanted)` lists the branches
(`git for-each-ref`) and picks `wanted`, else HEAD's branch; None for a detached HEAD.
repo.py's Repo calls both when it opens.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from gitflowd import gitcli
from gitflowd.errors import RepoError, suggest


def open_repository(path: Path) -> tuple[bool, Path, Path]:
    """(bare, absolute git dir, absolute common dir) of the repository whose top (or git dir,
    if bare) is `path`. The common dir holds the refs; it differs from the git dir only in a
    linked work tree (`git worktree add`), whose git dir holds just its own HEAD."""
    if not path.exists():
        raise RepoError(f"repository {path} does not exist")
    if not path.is_dir():
        raise RepoError(f"{path} is not a Git repository (git init it, or pass --repo DIR)")
    try:
        out = gitcli.output(["rev-parse", "--is-bare-repository", "--is-inside-git-dir", "--absolute-git-dir",
                             "--path-format=absolute", "--git-common-dir", "--show-cdup"], path)
    except gitcli.GitFailed as exc:
        raise open_error(path, str(exc)) from None
    bare, inside_git_dir, git_dir, common_dir, *rest = out.decode(errors="surrogateescape").split("\n")
    bare_repo, git_path = bare == "true", Path(git_dir)
    if inside_git_dir == "true":  # bare, or the .git directory of a work tree
        if not bare_repo and git_path.name != ".git":  # `git init --separate-git-dir`: its work tree is elsewhere
            where = "" if git_path.resolve() == path.resolve() else f"inside {git_path}, "
            raise RepoError(f"{path} is {where}the Git directory of a work tree elsewhere: pass --repo that work tree")
        top = git_path if bare_repo else git_path.parent
        if not bare_repo or git_path.resolve() != path.resolve():
            raise RepoError(f"{path} is not the top of a Git repository (its top is {top})")
    elif rest and rest[0]:  # a sub-directory of a work tree: cdup leads to the top
        raise RepoError(f"{path} is not the top of a Git repository (its top is {(path / rest[0]).resolve()})")
    return bare_repo, git_path, Path(common_dir)


def open_error(path: Path, message: str) -> RepoError:
    pointed = message.partition("not a git repository: ")[2]
    if pointed and (path / ".git").is_file():  # a worktree or submodule whose Git directory moved or went
        return RepoError(f"{path}/.git points to {pointed}, which is not a Git directory "
                         "(moved or deleted? `git worktree repair` mends a moved worktree)")
    if "not a git repository" in message:
        return RepoError(f"{path} is not a Git repository (git init it, or pass --repo DIR)")
    if "dubious ownership" in message:
        return RepoError(f"git refuses {path}: it belongs to another user "
                         f"(allow it with: git config --global --add safe.directory {path})")
    return RepoError(f"cannot open repository {path}: {message}")


def pick_branch(run: Callable[..., subprocess.CompletedProcess[bytes]], path: Path, wanted: str | None) -> str | None:
    """The branch to follow: `wanted`, else HEAD's branch; None for a detached HEAD."""
    listed = run("for-each-ref", "--format=%(HEAD)%(refname:strip=2)", "refs/heads").stdout.decode(errors="replace")
    marked = {line[1:]: line[0] == "*" for line in listed.splitlines() if line}
    branches = list(marked)
    if not branches and run("rev-parse", "--verify", "--quiet", "HEAD^{commit}").returncode != 0:
        raise RepoError(f"repository {path} has no commits yet: commit your dags/ first")
    if wanted is not None:
        if wanted not in branches:
            raise RepoError(f"unknown branch {wanted!r} in {path}{suggest(wanted, branches)} (branches: {', '.join(branches)})")
        return wanted
    current = next((name for name, is_head in marked.items() if is_head), None)
    if current is not None:
        return current
    head = run("symbolic-ref", "--quiet", "HEAD")
    if head.returncode != 0:  # detached
        return None
    current = head.stdout.decode(errors="replace").strip().removeprefix("refs/heads/")
    if len(branches) == 1:  # a bare repo whose HEAD names an unborn branch, pushed to another
        return branches[0]
    raise RepoError(f"HEAD of {path} names branch {current!r}, which has no commits (branches: {', '.join(branches)})")
