"""Where the repository, state directory and site are: flags, then environment, then defaults.

Defaults work with no flags for a repository in the current directory: the state and the
site live in `<worktree>/.gitflowd/` (kept out of Git through `.git/info/exclude`), or in
`<bare repo>/gitflowd/` for a bare repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gitflowd.errors import UsageError


@dataclass(frozen=True)
class Settings:
    repo: Path
    state: Path
    site: Path


def looks_like_repository(path: Path) -> bool:
    """A work tree (has `.git`) or a bare repository, judged from files alone (no git run)."""
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _find_repo_root(start: Path) -> Path:
    """The nearest enclosing work tree or bare repository, else `start`."""
    return next((c for c in (start, *start.parents) if looks_like_repository(c)), start)


def _default_home(repo: Path) -> Path:
    if (repo / ".git").exists() or not (repo / "objects").is_dir():
        return repo / ".gitflowd"
    return repo / "gitflowd"  # bare repository


def resolve(repo: str | None, state: str | None, site: str | None) -> Settings:
    """Flags win over GITFLOWD_REPO / GITFLOWD_STATE / GITFLOWD_SITE, which win over defaults."""
    for flag, value in (("--repo", repo), ("--state", state), ("--site", site)):
        if value == "":  # `--site "$SITE"` with SITE unset: not the same as leaving it out
            raise UsageError(f"empty {flag} '': give a directory, or leave {flag} out for the default")
    repo_path = Path(repo or os.environ.get("GITFLOWD_REPO") or _find_repo_root(Path.cwd())).absolute()
    home = _default_home(repo_path)
    state_path = Path(state or os.environ.get("GITFLOWD_STATE") or home / "state").absolute()
    site_path = Path(site or os.environ.get("GITFLOWD_SITE") or home / "site").absolute()
    if state_path.exists() and not state_path.is_dir():  # else: "no runs", or an odd lock-file error
        raise UsageError(f"state path {state_path} exists and is not a directory (pass --state DIR)")
    check_apart(state_path, site_path)
    return Settings(repo=repo_path, state=state_path, site=site_path)


def check_apart(state_root: Path, site_root: Path) -> None:
    """The site is published and the state is not: a site that is the state directory mixes
    its pages into it, and one around it would publish its journals, workspaces and the logs
    of running tasks, which are not masked yet. A site inside the state directory is fine
    (STATE/site: the state's files are where they were, and nothing of them is published)."""
    state, site = state_root.resolve(), site_root.resolve()
    if site == state:
        raise UsageError(f"site directory {site_root} is the state directory: pass a --site of its own")
    if state.is_relative_to(site):
        raise UsageError(f"site directory {site_root} contains the state directory {state_root}, which would be "
                         "published with it (journals, unmasked logs of running tasks): pass a --site beside it")


def exclude_from_git(settings: Settings) -> None:
    """Keep a default `.gitflowd/` out of `git status` in the user's work tree."""
    info = settings.repo / ".git" / "info"
    home = settings.repo / ".gitflowd"
    if not info.is_dir() or not (settings.state.is_relative_to(home) or settings.site.is_relative_to(home)):
        return
    exclude = info / "exclude"
    text = exclude.read_text() if exclude.exists() else ""
    if "/.gitflowd/" not in text.splitlines():
        with exclude.open("a") as fh:
            fh.write(("" if text.endswith("\n") or not text else "\n") + "/.gitflowd/\n")
