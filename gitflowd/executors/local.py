"""The local executor: every task attempt is an OS process in its own process group.

Flow: `submit(spec)` opens the attempt's log, starts the process (`cmd` via /bin/sh -c,
`argv` directly, `call` in a fresh Python interpreter: calls.py)
in a new session with stdout and stderr on the log file, and registers a pidfd with a
selector -> `wait()` blocks on the pidfds, a wakeup pipe and the nearest kill deadline
(no polling) -> when a process exits, whatever is left of its group is SIGKILLed (a task
leaves nothing behind), the process is reaped and a `Completion` returned. A timeout or
cancel sends SIGTERM to the group, then SIGKILL after `kill_grace` seconds.

`find_run_processes` / `kill_process_groups` find and stop the orphans of a runner that
died (matched by GITFLOWD_DAG and GITFLOWD_RUN_ID in /proc/<pid>/environ).
"""

from __future__ import annotations

import errno
import functools
import heapq
import itertools
import logging
import os
import select
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gitflowd.executors.base import Completion, Executor, Outcome, Started, TaskSpec
from gitflowd.journal import signal_name
from gitflowd.executors.calls import call_argv

log = logging.getLogger(__name__)

DROPPED_ENV = ("NOTIFY_SOCKET", "GITFLOWD_SECRETS_FILE")
DROPPED_ENV_PREFIXES = ("WATCHDOG_",)
# Python ignores SIGPIPE and SIGXFSZ; a task gets their default actions back, as Popen's
# restore_signals gives them. (glibc's posix_spawn leaves its own two internal signals, 32
# and 33, ignored in the child; it refuses to reset them, and programs never see them.)
_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


def task_base_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The runner's environment minus what must not leak into tasks (systemd's notify socket...)."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k not in DROPPED_ENV and not k.startswith(DROPPED_ENV_PREFIXES)}


@dataclass
class _Live:
    spec: TaskSpec
    pid: int
    pidfd: int
    started: float
    proc: subprocess.Popen[bytes] | None  # None when started with posix_spawn
    token: int
    outcome: Outcome = Outcome.EXITED
    term_sent: bool = field(default=False)
    killed: str | None = None  # why SIGKILL was sent, for the log's last line


class LocalExecutor(Executor):
    def __init__(self, kill_grace: float = 10.0, environ: Mapping[str, str] | None = None):
        self.kill_grace = kill_grace
        self._base_env = task_base_env(environ)
        self._host = os.uname().nodename  # gethostname(), without importing socket
        # epoll itself rather than `selectors`: a task registers and unregisters one fd, and
        # the wrapper's bookkeeping was a measurable part of the runner's cost per task.
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._by_pidfd: dict[int, str] = {}  # pidfd -> task key
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._live: dict[str, _Live] = {}
        self._done: list[Completion] = []
        self._deadlines: list[tuple[float, int, str, str]] = []  # (when, token, key, action)
        self._tokens = itertools.count()
        self._log_dirs: set[str] = set()
        self._is_cwd: dict[str, bool] = {}  # a task cwd -> whether it is ours (nothing chdirs while tasks run)

    @property
    def running(self) -> int:
        return len(self._live)

    # -- starting ---------------------------------------------------------------------

    def submit(self, spec: TaskSpec) -> Started:
        if spec.key in self._live:
            raise ValueError(f"task {spec.key!r} is already running")
        try:
            log_fd = self._open_log(spec.log_path)
        except OSError as exc:
            return self._not_started(spec, f"cannot open log file {spec.log_path}: {exc.strerror or exc}")
        try:
            pid, proc = self._start(spec, log_fd)
            pidfd = os.pidfd_open(pid)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the command, an argument or the environment
            reason = f"{exc} (a NUL character in the command, its arguments or environment)" if isinstance(exc, ValueError) else f"{exc}{_start_hint(exc, spec)}"
            os.write(log_fd, f"gitflowd: cannot start task: {reason}\n".encode())
            return self._not_started(spec, reason)
        finally:
            os.close(log_fd)
        live = _Live(spec, pid, pidfd, time.monotonic(), proc, next(self._tokens))
        self._live[spec.key] = live
        self._by_pidfd[pidfd] = spec.key
        self._epoll.register(pidfd, select.EPOLLIN)
        if spec.timeout is not None:
            heapq.heappush(self._deadlines, (live.started + spec.timeout, live.token, spec.key, "timeout"))
        return Started(spec.key, pid, pid, self._host)

    def _open_log(self, path: str) -> int:
        folder = os.path.dirname(path)
        if folder not in self._log_dirs:
            os.makedirs(folder, exist_ok=True)
            self._log_dirs.add(folder)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)

    def _start(self, spec: TaskSpec, log_fd: int) -> tuple[int, subprocess.Popen[bytes] | None]:
        env = {**self._base_env, **spec.env} if spec.env else self._base_env
        if spec.cmd is not None:
            args = ["/bin/sh", "-c", spec.cmd]
        elif spec.argv is not None:
            args = list(spec.argv)
        else:
            args = call_argv(spec.call or "", spec.sys_path)
        if spec.cwd not in self._is_cwd:
            self._is_cwd[spec.cwd] = _is_cwd(spec.cwd)
        if spec.call is None and self._is_cwd[spec.cwd]:
            return self._spawn(args, env, log_fd), None
        proc = subprocess.Popen(
            args, stdin=self._devnull, stdout=log_fd, stderr=log_fd, cwd=spec.cwd, env=env,
            start_new_session=True, close_fds=True,
        )
        return proc.pid, proc

    def _spawn(self, args: list[str], env: Mapping[str, str], log_fd: int) -> int:
        """posix_spawn: glibc starts the child with vfork semantics, as Popen does, minus
        Popen's Python wrapper (docs/engine.md). It has no working-directory action before
        Python 3.13, hence only when the task's cwd is already ours (`gitflowd run` chdirs to
        the checkout); every fd of ours is close-on-exec (PEP 446), the log is dup2'ed in."""
        actions = [(os.POSIX_SPAWN_DUP2, self._devnull, 0), (os.POSIX_SPAWN_DUP2, log_fd, 1),
                   (os.POSIX_SPAWN_DUP2, log_fd, 2)]
        return os.posix_spawn(_executable(args[0], env.get("PATH")), args, env, file_actions=actions, setsid=True,
                              setsigdef=_RESTORED_SIGNALS)

    def _not_started(self, spec: TaskSpec, error: str) -> Started:
        self._done.append(Completion(spec.key, Outcome.ERROR, None, 0.0, error))
        return Started(spec.key, None, None, self._host)

    # -- waiting ----------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> list[Completion]:
        end = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while True:
            if self._done:
                return self._take_done()
            if end is None and not self._live:
                return []
            now = time.monotonic()
            self._fire_deadlines(now)
            woke = self._poll(self._delay(now, end))
            if self._done or woke or (end is not None and time.monotonic() >= end):
                return self._take_done()

    def _delay(self, now: float, end: float | None) -> float | None:
        candidates = [t for t in (end, self._deadlines[0][0] if self._deadlines else None) if t is not None]
        return max(min(candidates) - now, 0.0) if candidates else None

    def _poll(self, delay: float | None) -> bool:
        """Handle ready fds; True if woken through the wakeup pipe."""
        woke = False
        for fd, _ in self._epoll.poll(-1 if delay is None else delay):
            if fd == self._wake_r:
                _drain(self._wake_r)
                woke = True
            else:
                self._reap(self._live[self._by_pidfd[fd]])
        return woke

    def _reap(self, live: _Live) -> None:
        # The leader is a zombie until reaped, so its pgid cannot have been reused yet:
        # kill whatever it left in its group, then reap.
        _signal_group(live.pid, signal.SIGKILL)
        self._epoll.unregister(live.pidfd)
        del self._by_pidfd[live.pidfd]
        os.close(live.pidfd)
        code = os.waitstatus_to_exitcode(os.waitpid(live.pid, 0)[1])
        if live.proc is not None:
            live.proc.returncode = code  # reaped here; Popen must not wait for it again
        del self._live[live.spec.key]
        if live.term_sent or live.killed is not None or code < 0:
            self._note_end(live, code)
        self._done.append(Completion(live.spec.key, live.outcome, code, time.monotonic() - live.started))

    def _note_end(self, live: _Live, code: int) -> None:
        """Say in the log why the attempt ended, when gitflowd or a signal ended it: the log
        of a timed-out task otherwise just stops (Airflow's says 'Task timed out' too)."""
        append_note(live.spec.log_path, _end_note(live, code))

    def _take_done(self) -> list[Completion]:
        done, self._done = self._done, []
        return done

    def _fire_deadlines(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            _, token, key, action = heapq.heappop(self._deadlines)
            live = self._live.get(key)
            if live is None or live.token != token:
                continue
            if action == "kill":
                log.warning("task %s%s ignored SIGTERM for %gs: SIGKILL", key, _of_run(live.spec), self.kill_grace)
                live.killed = f"{self.kill_grace:g}s later: it was still running"
                _signal_group(live.pid, signal.SIGKILL)
            else:
                self._terminate(live, Outcome.TIMEOUT if action == "timeout" else Outcome.CANCELLED)

    def _terminate(self, live: _Live, outcome: Outcome) -> None:
        if live.term_sent:
            return
        live.outcome, live.term_sent = outcome, True
        _signal_group(live.pid, signal.SIGTERM)
        heapq.heappush(self._deadlines, (time.monotonic() + self.kill_grace, live.token, live.spec.key, "kill"))

    # -- stopping ---------------------------------------------------------------------

    def cancel(self, key: str) -> None:
        live = self._live.get(key)
        if live is not None:
            self._terminate(live, Outcome.CANCELLED)

    def kill(self, key: str) -> None:
        """SIGKILL a task's group now (a second Ctrl-C)."""
        live = self._live.get(key)
        if live is not None:
            live.outcome = live.outcome if live.term_sent else Outcome.CANCELLED
            live.killed = "at once (stopped a second time, as by a second Ctrl-C)"
            _signal_group(live.pid, signal.SIGKILL)

    def wakeup(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: a wakeup is pending anyway

    def shutdown(self) -> list[Completion]:
        """Cancel and reap everything; idempotent."""
        if self._devnull < 0:
            return []
        for key in list(self._live):
            self.cancel(key)
        done: list[Completion] = []
        while self._live or self._done:
            done.extend(self.wait())
        self._epoll.close()
        for fd in (self._wake_r, self._wake_w, self._devnull):
            os.close(fd)
        self._devnull = -1
        return done


def append_note(log_path: str | Path, text: str) -> None:
    """Append a `gitflowd: ...` line to a task's log, on a line of its own; best effort (a
    full disk or a missing log: the journal still says how the attempt ended)."""
    try:
        fd = os.open(log_path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    except OSError:
        return
    try:
        size = os.fstat(fd).st_size
        start = b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
        os.write(fd, start + f"gitflowd: {text}\n".encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def _end_note(live: _Live, code: int) -> str:
    """The line added to the log of an attempt that gitflowd or a signal ended."""
    if live.outcome is Outcome.TIMEOUT:
        why = f"timeout: the attempt ran longer than {live.spec.timeout:g}s"
    elif live.outcome is Outcome.CANCELLED:
        why = "stopped with its run"
    else:
        return f"the task's process was killed by {signal_name(code)}"
    if live.term_sent:
        why += "; its process group got SIGTERM"
    if live.killed:
        why += f", then SIGKILL {live.killed}" if live.term_sent else f"; its process group got SIGKILL {live.killed}"
    return why


def _of_run(spec: TaskSpec) -> str:
    """' of run R of DAG D' from the task's environment (the engine sets both), else ''."""
    env = spec.env or {}
    run, dag = env.get("GITFLOWD_RUN_ID"), env.get("GITFLOWD_DAG")
    return f" of run {run} of DAG {dag}" if run and dag else ""


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _signal_group(pid: int, sig: int, group_only: bool = False) -> None:
    """Signal a task's process group; before the child called setsid, just the child. An
    orphan's group is `group_only`: its leader may be long gone and its pid reused."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        try:
            if not group_only:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass
    except PermissionError:
        log.warning("not allowed to signal process group %d", pid)


# -- starting helpers ----------------------------------------------------------------------


def _start_hint(exc: OSError, spec: TaskSpec) -> str:
    """Why an argv program could not be executed, in the terms of a repository: the kernel's
    ENOENT for a script whose #! interpreter is missing reads as if the script were."""
    program = spec.argv[0] if spec.argv else None
    if program is None:
        return ""
    path = os.path.join(spec.cwd, program)  # an absolute program stays itself
    if exc.errno == errno.ENOENT:
        if "/" not in program:
            return " (not found on the task's PATH)"
        if os.path.isfile(path):
            return " (the interpreter its #! line names does not exist)"
        return "" if os.path.isabs(program) else " (no such file in the checkout of the run's commit)"
    if exc.errno == errno.EACCES and os.path.isfile(path) and not os.access(path, os.X_OK):
        return (" (the file is not executable: `git update-index --chmod=+x` it and commit, or put its "
                "interpreter first in argv)")
    if exc.errno == errno.ENOEXEC:
        return " (a script needs a #! line such as #!/bin/sh, or its interpreter first in argv)"
    return ""


def _is_cwd(path: str) -> bool:
    try:
        return os.path.samestat(os.stat(path), os.stat("."))
    except OSError:
        return False


@functools.lru_cache(maxsize=256)
def _executable(name: str, search_path: str | None) -> str:
    """`name` looked up in the task's PATH, as execvpe would (Popen does the same)."""
    if "/" in name:
        return name
    found = shutil.which(name, path=search_path if search_path is not None else os.defpath)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, f"No such file or directory: {name!r}")
    return found


# -- orphans of a runner that died --------------------------------------------------------


def find_run_processes(dag_id: str, run_id: str) -> dict[int, list[int]]:
    """Process groups (pgid -> pids) of live processes started for this run."""
    wanted = (f"\0GITFLOWD_DAG={dag_id}\0".encode(), f"\0GITFLOWD_RUN_ID={run_id}\0".encode())
    mine = {os.getpid(), os.getpgrp()}
    groups: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            environ = b"\0" + Path(entry.path, "environ").read_bytes()
            if not all(w in environ for w in wanted):
                continue
            stat = Path(entry.path, "stat").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        pgid = int(stat[stat.rindex(b")") + 2:].split()[2])
        if pgid not in mine:
            groups.setdefault(pgid, []).append(int(entry.name))
    return groups


def kill_process_groups(groups: Mapping[int, Iterable[int]], grace: float) -> None:
    """SIGTERM each group, wait up to `grace` for its processes to exit, SIGKILL the rest and
    see them gone (so that a search right after finds none of them still dying)."""
    pidfds = []
    for pgid, pids in groups.items():
        log.warning("killing orphaned process group %d (pids %s)", pgid, ", ".join(map(str, pids)))
        for pid in pids:
            try:
                pidfds.append(os.pidfd_open(pid))
            except OSError:
                pass
        _signal_group(pgid, signal.SIGTERM, group_only=True)
    try:
        alive = _wait_all(pidfds, grace)
        for pgid in groups:  # also what joined a group during the grace
            _signal_group(pgid, signal.SIGKILL, group_only=True)
        _wait_all(alive, KILLED_WAIT)
    finally:
        for fd in pidfds:
            os.close(fd)


KILLED_WAIT = 5.0  # a SIGKILLed process ends at once; only one in uninterruptible I/O takes longer


def _wait_all(pidfds: list[int], grace: float) -> list[int]:
    """Wait up to `grace` for every process to exit; the pidfds of those still alive."""
    end = time.monotonic() + grace
    alive = set(pidfds)
    with selectors.DefaultSelector() as selector:
        for fd in pidfds:
            selector.register(fd, selectors.EVENT_READ)
        while alive and time.monotonic() < end:
            for key, _ in selector.select(max(end - time.monotonic(), 0)):
                selector.unregister(key.fd)
                alive.discard(key.fd)
    return [fd for fd in pidfds if fd in alive]
