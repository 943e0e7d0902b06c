"""`gitflowd validate [--rev REV | --worktree] [--json]`: are the DAG files valid?

Reads the DAG files of a commit from Git objects (default: the head of the branch), or
with --worktree the files on disk (for a pre-commit hook). Exit 0 when every file is
valid; exit 1 with one `path:line: message` line per problem on stdout otherwise.
"""

from __future__ import annotations

import argparse
import functools
import json
import posixpath
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gitflowd import settings
from gitflowd.commands.common import load_snapshot, problem_dict

if TYPE_CHECKING:
    from gitflowd.repo import Snapshot


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "validate", parents=[common], help="check every DAG file of a commit (or of the work tree)",
        description="Check the DAG files under dags/ at a commit (default: the branch head). "
        "Exit 0 when all are valid, 1 with one 'path:line: message' per problem otherwise.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--rev", metavar="REV", help="commit, branch or tag to check (default: head of the branch)")
    source.add_argument("--worktree", action="store_true", help="check the files on disk, uncommitted edits included")
    parser.add_argument("--json", action="store_true", help="print a JSON report instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    snapshot = load_snapshot(args, args.rev, worktree=args.worktree)
    warnings = program_warnings(settings.resolve(args.repo, args.state, args.site).repo, snapshot)
    if args.json:
        print(json.dumps(report(snapshot, warnings), indent=2))
    else:
        print_text(snapshot, args)
        for path, line, message in warnings:
            print(f"{path}:{line}: warning: {message}", file=sys.stderr)
    return 0 if snapshot.valid else 1


def report(snapshot: Snapshot, warnings: list[tuple[str, int, str]] = ()) -> dict[str, object]:
    return {
        "commit": snapshot.commit.sha if snapshot.commit else None,
        "valid": snapshot.valid,
        "dags": [
            {"id": dag_id, "path": loaded.path, "tasks": len(loaded.dag.tasks), "schedule": loaded.dag.schedule}
            for dag_id, loaded in snapshot.dags.items()
        ],
        "errors": [problem_dict(p) for p in snapshot.problems],
        "warnings": [{"path": path, "line": line, "message": message} for path, line, message in warnings],
    }


def print_text(snapshot: Snapshot, args: argparse.Namespace) -> None:
    where = f"at {snapshot.commit.short}" if snapshot.commit else "in the work tree"
    for problem in snapshot.problems:
        print(problem)
    if not snapshot.paths:
        print(f"no DAG files (dags/*.toml) {where}{_other_files(args, snapshot)}")
    elif snapshot.valid:
        print(f"{len(snapshot.dags)} DAG(s) valid {where}: {', '.join(snapshot.dags)}")
    else:
        bad = len({p.path for p in snapshot.problems})
        print(f"gitflowd: {len(snapshot.problems)} problem(s) in {bad} of {len(snapshot.paths)} DAG file(s) {where}", file=sys.stderr)


def _other_files(args: argparse.Namespace, snapshot: Snapshot) -> str:
    """'; found dags/hello.yaml, but DAG files are TOML ...' when dags/ has files but none is a DAG
    file (a dagu user's YAML, an Airflow user's .py): else 'no DAG files' leaves them guessing."""
    from gitflowd import gitcli

    top = settings.resolve(args.repo, args.state, args.site).repo
    try:
        if snapshot.commit is None:
            names = [str(p.relative_to(top)) for p in sorted((top / "dags").rglob("*")) if p.is_file()]
        else:
            listed = gitcli.output(["ls-tree", "-r", "--name-only", snapshot.commit.sha, "--", "dags/"], top)
            names = listed.decode(errors="replace").splitlines()
    except (OSError, gitcli.GitFailed):
        return ""
    if not names:
        return ""
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"; found {shown}, but DAG files are TOML files named *.toml"


def program_warnings(top: Path, snapshot: Snapshot) -> list[tuple[str, int, str]]:
    """What a run's checkout will not hold for a task to start: an argv program given as a
    path in the repository that is not an executable file there (committed without +x, never
    committed), or the module of a `call` that is neither there nor installed. The loader
    cannot see the tree, and every attempt of such a task fails to start; warnings (stderr,
    the exit code unchanged), since the DAG itself loads and runs."""
    programs: dict[str, list[tuple[str, int, str]]] = {}
    modules: dict[str, list[tuple[str, int, str]]] = {}
    for loaded in snapshot.dags.values():
        for task in loaded.dag.tasks.values():
            path = _repository_program(task.argv[0] if task.argv else "")
            if path:
                programs.setdefault(path, []).append((loaded.path, task.line, task.id))
            if task.call:
                modules.setdefault(task.call.partition(":")[0], []).append((loaded.path, task.line, task.id))
    if not programs and not modules:
        return []
    modes = _modes(top, snapshot, sorted({*programs, *(p for m in modules for p in _module_paths(m))}))
    if modes is None:
        return []
    found = []
    for wanted, problem in ((programs, _program_problem), (modules, _module_problem)):
        for name, users in wanted.items():
            why = problem(name, modes, snapshot)
            found += [(path, line, f"task {task_id!r}: {why}") for path, line, task_id in users if why]
    return sorted(found)


def _module_paths(module: str) -> tuple[str, ...]:
    """Where a module and its top-level package would be: a/b.py, a/b/ (and a.py, a/)."""
    top, path = module.partition(".")[0], module.replace(".", "/")
    return (f"{top}.py", top, f"{path}.py", path)


def _module_problem(module: str, modes: dict[str, str], snapshot: Snapshot) -> str:
    def present(path: str) -> bool:
        return path in modes or any(other.startswith(path + "/") for other in modes)

    where = f"commit {snapshot.commit.short}" if snapshot.commit else "the index"
    top, path = module.partition(".")[0], module.replace(".", "/")
    if not (present(f"{top}.py") or present(top)):
        import importlib.util

        if importlib.util.find_spec(top) is None:
            return (f"call module {top!r} is neither in {where} nor installed for {sys.executable}: "
                    "the task cannot start")
        return ""
    if top in sys.stdlib_module_names and top in _preloaded():  # `types`, `site`: the task's Python has its own
        return (f"call module {top!r} in {where} has the name of a module Python loads before the task starts, "
                "so the repository's is never imported: rename it")
    if present(f"{path}.py") or present(path):
        return ""
    return f"call module {module!r} is not in {where} (no {path}.py): the task cannot start"


@functools.cache
def _preloaded() -> frozenset[str]:
    """The modules a fresh interpreter (a call task's) has loaded before any task code runs."""
    import subprocess

    try:
        listed = subprocess.run([sys.executable, "-c", "import sys; print(*sys.modules)"], capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(listed.split())


def _repository_program(program: str) -> str | None:
    """The repository path of an argv program given as a relative path without templates."""
    if "/" not in program or program.startswith("/") or "{{" in program or "{%" in program:
        return None
    path = posixpath.normpath(program)
    return None if path == ".." or path.startswith("../") else path


def _modes(top: Path, snapshot: Snapshot, paths: list[str]) -> dict[str, str] | None:
    """path -> Git mode of each path (and of the files under it) at the commit, or in the
    index for --worktree (what the next commit holds); None if Git cannot tell."""
    from gitflowd import gitcli

    if snapshot.commit is None:
        command = ["ls-files", "-s", "-z", "--", *paths]
    else:
        command = ["ls-tree", "-r", "--full-tree", "-z", snapshot.commit.sha, "--", *paths]
    try:
        listed = gitcli.output(command, top).decode(errors="replace")
    except (OSError, gitcli.GitFailed):
        return None
    modes = {}
    for entry in filter(None, listed.split("\0")):
        info, _, path = entry.partition("\t")
        modes[path] = info.split()[0]
    return modes


def _program_problem(path: str, modes: dict[str, str], snapshot: Snapshot) -> str:
    where = f"commit {snapshot.commit.short}" if snapshot.commit else "the index"
    mode = modes.get(path)
    if mode == "100644":
        return (f"argv program {path} is not executable in {where}: the task cannot start "
                f"(git update-index --chmod=+x {path}, then commit)")
    if mode is not None:
        return ""
    if any(other.startswith(path + "/") for other in modes):
        return f"argv program {path} is a directory in {where}: the task cannot start"
    add = "" if snapshot.commit else "; git add it"
    return f"argv program {path} is not in {where}: the task cannot start (runs see committed files only{add})"
