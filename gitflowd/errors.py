"""The one exception hierarchy of gitflowd.

Every error a user can cause is a `GitflowdError`; its `str()` is the one line the CLI
prints (naming the file, line, DAG, run or task to fix). Anything else escaping to the
CLI is a bug in gitflowd, not a user mistake.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any


class GitflowdError(Exception):
    """Base of every error caused by input, configuration or the environment."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a DAG file, located at `path:line`."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class DagFileError(GitflowdError):
    """A DAG file (or several) could not be loaded; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RepoError(GitflowdError):
    """The repository, branch or revision cannot be read."""


class DagNotFound(GitflowdError, LookupError):
    def __init__(self, dag_id: str, hint: str = ""):
        self.dag_id = dag_id
        super().__init__(f"unknown DAG {dag_id!r}{hint}")


class RunNotFound(GitflowdError, LookupError):
    def __init__(self, dag_id: str, run_id: str, hint: str = ""):
        self.dag_id, self.run_id = dag_id, run_id
        super().__init__(f"unknown run {run_id!r} of DAG {dag_id!r}{hint}")


class TaskNotFound(GitflowdError, LookupError):
    def __init__(self, dag_id: str, task_id: str, hint: str = ""):
        self.dag_id, self.task_id = dag_id, task_id
        super().__init__(f"unknown task {task_id!r} in DAG {dag_id!r}{hint}")


class JournalCorrupt(GitflowdError):
    """A record in the middle of a journal is damaged (not a torn tail)."""

    def __init__(self, path: str, line: int, reason: str):
        self.path, self.line = path, line
        super().__init__(f"{path}:{line}: corrupt journal record: {reason}")


class StateError(GitflowdError):
    """The state directory cannot be used (locked, unwritable, inconsistent)."""


class EmptyJournal(StateError):
    """A journal without one whole record: its run_created was never acknowledged (a runner
    killed, or a write failing, between creating the file and writing it), so no run exists."""

    def __init__(self, path: str):
        self.path = path
        super().__init__(f"{path}: holds no record (a run whose creation never completed)")


class LockHeld(StateError):
    def __init__(self, lock_path: str, pid: str | None):
        holder = f"pid {pid}" if pid else "another process"
        hint = ("; to run several at once, start `gitflowd daemon`: run, resume and backfill then hand their work to it"
                if pid and pid.endswith("(run)") else "")
        super().__init__(f"{lock_path} is held by {holder}: another gitflowd daemon or run uses this state directory{hint}")


class SiteError(GitflowdError):
    """The status site cannot be written (full disk, a file where a directory should be)."""


class RunError(GitflowdError):
    """A run cannot be started or resumed as asked (e.g. it is still running)."""


class UsageError(GitflowdError):
    """A command-line value is wrong in a way argparse cannot see."""

    exit_code = 2


def suggest(word: str, choices: Any) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
