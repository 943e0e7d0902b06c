"""Running the `git` command: one-shot commands and one persistent object reader.

Flow: `run(args, cwd)` runs one git command in `environment()` (no GIT_DIR, GIT_WORK_TREE or
the other variables that would point git at another repository; `LC_ALL=C` for parsable
messages) and returns the completed process; `output(...)` returns its stdout or raises
`GitFailed` with git's reason -> `ObjectReader(git_dir)` keeps one
`git cat-file --batch` process: `lookup(name)` writes an object name (a sha, or any
revision expression such as `refs/heads/main^{commit}` or `SHA:dags`), reads the header
`<sha> <type> <size>` (or `<name> missing`), then exactly size bytes and a newline, and
returns (sha, type, content); `read(sha)` returns just the content; `kind(name)` says why a
lookup found nothing (the name is of a tree or a blob, or an ambiguous short sha). A process
that died (killed, crashed) is replaced once, at the next lookup; `close()` ends it.
`run(..., index=F)` gives git a private index file (checkouts.py builds each checkout with one).

repo.py turns every `GitFailed` into a `RepoError` with a message for the user.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

# What `git rev-parse --local-env-vars` lists: each makes git use another repository,
# index, object store or configuration than the one named on its command line. A hook, a
# test or a shell can leave them set; gitflowd names its repository itself.
LOCAL_ENV = (
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY", "GIT_DIR", "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE", "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_PREFIX",
    "GIT_SHALLOW_FILE", "GIT_COMMON_DIR",
)
CLOSE_TIMEOUT = 5.0


class GitFailed(Exception):
    """A git command exited non-zero or could not start; str() is git's reason, one line."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def environment() -> dict[str, str]:
    """This process's environment without repository pointers, with C messages, never prompting."""
    env = {key: value for key, value in os.environ.items() if key not in LOCAL_ENV}
    env.update(LC_ALL="C", LANGUAGE="C", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
    return env


def run(args: Sequence[str], cwd: Path, index: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run `git ARGS` in `cwd` (with the index file `index`, if given); GitFailed only when it cannot start."""
    env = environment() if index is None else {**environment(), "GIT_INDEX_FILE": str(index)}
    try:
        return subprocess.run(["git", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    except OSError as exc:
        raise GitFailed(-1, _start_error(exc)) from None


def output(args: Sequence[str], cwd: Path) -> bytes:
    """The stdout of `git ARGS`; GitFailed when it exits non-zero."""
    done = run(args, cwd)
    if done.returncode != 0:
        raise GitFailed(done.returncode, message(done.stderr) or f"git {args[-1]} exited {done.returncode}")
    return done.stdout


def message(stderr: bytes) -> str:
    """git's reason: its first `fatal:` line without the prefix (hints follow it), else its last line."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    fatal = next((line for line in lines if line.startswith("fatal: ")), None)
    return fatal.removeprefix("fatal: ") if fatal else lines[-1] if lines else ""


def _start_error(exc: OSError) -> str:
    if exc.filename == "git":
        return "the git command is not installed (gitflowd needs it on PATH)"
    return f"{exc.strerror}: {exc.filename}"


class ObjectReader:
    """Object contents from one long-lived `git cat-file --batch` (one caller at a time)."""

    def __init__(self, git_dir: Path):
        self.git_dir = git_dir
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The cat-file process's id while one runs (started by the first read)."""
        return self._proc.pid if self._proc is not None else None

    def read(self, sha: str) -> bytes | None:
        """The content of object `sha`; None when the repository does not have it."""
        found = self.lookup(sha)
        return None if found is None else found[2]

    def lookup(self, name: str) -> tuple[str, str, bytes] | None:
        """(sha, type, content) of the object `name` names; None when it names none."""
        if not name or "\n" in name or "\r" in name:  # one line per request (`HEAD^{/fix bug}` has spaces)
            return None
        try:
            return self._ask(name)
        except (OSError, EOFError):  # the process died since the last read: one fresh one
            log.info("git cat-file for %s stopped; starting another", self.git_dir)
            self.close()
        try:
            return self._ask(name)
        except (OSError, EOFError) as exc:
            self.close()
            raise GitFailed(-1, f"git cat-file stopped: {exc}") from None

    def kind(self, name: str) -> str | None:
        """The type of the object `name` names ('blob', 'tree'...), 'ambiguous' for a sha prefix
        that several objects share, None for none: why a lookup of `name^{commit}` found nothing."""
        if not name or "\n" in name or "\r" in name:
            return None
        try:
            fields = self._header(name)
            if len(fields) == 3:
                assert self._proc is not None and self._proc.stdout is not None
                _read_exactly(self._proc.stdout, int(fields[2]) + 1)
            return fields[1].decode() if len(fields) == 3 or fields[-1] == b"ambiguous" else None
        except (OSError, EOFError):
            return None

    def _ask(self, name: str) -> tuple[str, str, bytes] | None:
        fields = self._header(name)
        if len(fields) != 3:  # `<name> missing` (or ambiguous): nothing follows the header
            return None
        assert self._proc is not None and self._proc.stdout is not None
        data = _read_exactly(self._proc.stdout, int(fields[2]) + 1)
        return fields[0].decode(), fields[1].decode(), data[:-1]

    def _header(self, name: str) -> list[bytes]:
        proc = self._process()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(name.encode(errors="surrogateescape") + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline()
        if not header.endswith(b"\n"):
            raise EOFError("no answer")
        if header.endswith((b" missing\n", b" ambiguous\n")):  # the name may hold spaces
            return header[:-1].rsplit(b" ", 1)
        return header.split()

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            try:
                self._proc = subprocess.Popen(
                    ["git", f"--git-dir={self.git_dir}", "cat-file", "--batch"], cwd=self.git_dir, env=environment(),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            except OSError as exc:
                raise GitFailed(-1, _start_error(exc)) from None
        return self._proc

    def close(self) -> None:
        """End the process (end of input makes cat-file exit) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:  # a broken pipe while flushing: the process is gone anyway
                pass
        try:
            proc.wait(timeout=CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"object cut short ({len(data)} of {size} bytes)")
    return data
