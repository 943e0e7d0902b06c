"""The daemon as a long-lived service meets it: found by the daemon QA pass.

Real daemon processes, real Git, real files; waits are generous and poll for an outcome.
The helpers (DaemonProcess, start, wait_for, toml) are test_daemon.py's.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gitflowd import checkouts, inbox
from gitflowd.daemon import Daemon, Options
from gitflowd.lock import StateLock
from gitflowd.notify import Notifier
from gitflowd.sitecache import SiteCache
from gitflowd.state import RunStatus
from gitflowd.statedir import StateDir
from tests.conftest import GitRepo, git, run_cli
from tests.test_daemon import (DaemonProcess, daemons, in_process, journal_of, settle, start, toml,  # noqa: F401 (fixtures)
                               wait_for)


def test_a_render_that_waits_holds_up_neither_the_start_nor_the_loop(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                                                     daemons: list[DaemonProcess]) -> None:
    """The start rendered the whole site before READY=1, and the loop rendered after each
    reload: a site with years of runs (minutes to render) or another process rendering it
    (`gitflowd render` holds the site's lock) kept the daemon from starting (systemd's start
    timeout), from feeding the watchdog and from answering the CLI. Here another renderer
    holds the site's lock all along."""
    repo = make_repo({"dags/one.toml": toml("echo one")})
    home = tmp_path / "home"
    with SiteCache(home / "site").locked():
        daemon = start(daemons, repo.path, home)  # READY: before the site is rendered
        done = daemon.cli("run", "one", "--repo", str(repo.path), "--no-wait")
        assert done.returncode == 0, done.stderr
        run_id = done.stdout.split()[0]
        wait_for(lambda: journal_of(daemon.state, "one", run_id).state is RunStatus.SUCCESS, what="the run to end")
        sha = repo.commit({"dags/two.toml": toml("echo two")})
        daemon.wait_log(rf"reloaded {sha} 'change': 2 DAG\(s\) active; two added")
        assert not (daemon.site / "index.html").exists()
    index = daemon.site / "index.html"
    wait_for(lambda: index.exists() and 'data-dag="two"' in index.read_text(), what="the site once the lock is free")
    wait_for(lambda: (daemon.site / "dags" / "one" / "runs" / run_id / "index.html").exists(), what="the run's page")


def test_a_lock_file_deleted_under_the_daemon_is_taken_again(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                                             daemons: list[DaemonProcess]) -> None:
    """`rm daemon.lock` (it looked stale) let a second daemon start on the same state
    directory beside the first, and made every CLI command run in the foreground beside it."""
    repo = make_repo({"dags/one.toml": toml("echo one")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    (daemon.state / "daemon.lock").unlink()
    daemon.wait_log(r"daemon\.lock was deleted while this daemon held it: locked again")
    second = daemon.cli("daemon", "--repo", str(repo.path), timeout=60)
    assert second.returncode == 1 and f"is held by pid {daemon.proc.pid} (daemon)" in second.stderr, second.stderr
    done = daemon.cli("run", "one", "--repo", str(repo.path))
    assert done.returncode == 0, done.stderr
    daemon.wait_log(r"request run one from pid \d+: ok manual__")  # handed over, not run beside it


def test_a_wiped_state_directory_is_made_again_and_records_the_dags(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                                                    daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/one.toml": toml("echo one")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    daemon.state.rename(tmp_path / "old-state")  # as a wipe; rm -rf would race with the daemon making it again
    daemon.wait_log(r"daemon\.lock was deleted while this daemon held it: locked again")
    daemon.wait_log(r"reloaded \w+ 'initial': 1 DAG\(s\) active; one added", count=2)
    done = daemon.cli("run", "one", "--repo", str(repo.path))
    assert done.returncode == 0, done.stderr
    daemon.wait_log(r"request run one from pid \d+: ok manual__")
    listed = daemon.cli("status", "one", "--repo", str(repo.path))
    assert listed.returncode == 0 and done.stdout.split()[0] in listed.stdout, listed.stderr


def test_a_daemon_whose_deleted_lock_another_process_took_exits_at_once(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                                                        daemons: list[DaemonProcess]) -> None:
    """Two processes must never write one state directory: if another took the lock before
    the daemon noticed (here: polling, so it notices at its next wake-up), it exits, as a crash."""
    repo = make_repo({"dags/one.toml": toml("echo one")})
    daemon = start(daemons, repo.path, tmp_path / "home", "--poll", "3600")
    (daemon.state / "daemon.lock").unlink()
    with StateLock(daemon.state / "daemon.lock", "run"):
        daemon.signal(signal.SIGHUP)  # wakes its loop
        assert daemon.wait() == 1
    assert re.search(rf"CRITICAL gitflowd.daemon: {re.escape(str(daemon.state))}/daemon\.lock was deleted while this daemon "
                     rf"held it, and another process took it: .* is held by pid {os.getpid()} \(run\).*; exiting at once", daemon.log), daemon.log


def test_a_second_stop_signal_ends_the_grace_period_at_once(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                                            daemons: list[DaemonProcess]) -> None:
    """Ctrl-C on a daemon in a terminal said 'stopping: 1 run(s) get 600s' and ignored every
    further Ctrl-C until then; the only way out was kill -9 (orphaned tasks). A second
    SIGINT or SIGTERM ends the grace now, as a second Ctrl-C does in the foreground: the
    tasks are ended, recorded interrupted and resumed at the next start."""
    repo = make_repo({"dags/long.toml": toml("sleep 1000")})
    daemon = start(daemons, repo.path, tmp_path / "home", "--grace", "600")
    done = daemon.cli("run", "long", "--repo", str(repo.path), "--no-wait")
    run_id = done.stdout.split()[0]
    wait_for(lambda: journal_of(daemon.state, "long", run_id).state is RunStatus.RUNNING, what="the run to start")
    daemon.signal(signal.SIGINT)
    daemon.wait_log(r"stopping: 1 run\(s\) get 600s to finish their running tasks \(stop again, e\.g\. Ctrl-C, to end them now\)")
    daemon.signal(signal.SIGINT)
    assert daemon.wait() == 0
    assert "asked again to stop: interrupting 1 run(s) now" in daemon.log
    assert journal_of(daemon.state, "long", run_id).state is RunStatus.INTERRUPTED
    again = start(daemons, repo.path, tmp_path / "home", "--grace", "0")
    again.wait_log(rf"resuming run {run_id} of DAG long")


def test_once_cut_short_by_a_signal_does_not_exit_0(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                                    daemons: list[DaemonProcess]) -> None:
    """`timeout 10m gitflowd daemon --once` from cron: a SIGTERM interrupted the catch-up
    (runs interrupted, others never started) and the daemon exited 0, as if all had succeeded."""
    start_date = (datetime.now(timezone.utc) - timedelta(days=3)).date().isoformat()
    repo = make_repo({"dags/d.toml": toml("sleep 1000", schedule="@daily", extra=f"start_date = {start_date}\ncatchup = true")})
    daemon = start(daemons, repo.path, tmp_path / "home", "--once", "--grace", "0")
    wait_for(lambda: any(r.state is RunStatus.RUNNING for r in StateDir(daemon.state).runs("d")), what="a run to start")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 128 + signal.SIGTERM
    assert "WARNING gitflowd.daemon: stopped by SIGTERM before every due run ended" in daemon.log


def test_the_log_line_of_a_long_backfill_names_its_ends_not_every_run(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                                                     daemons: list[DaemonProcess]) -> None:
    """A year of hourly ticks was one 240 kB log line (journald splits lines past 48 kB)."""
    repo = make_repo({"dags/h.toml": toml("true", schedule="@hourly", extra="start_date = 2026-01-01")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    done = daemon.cli("backfill", "h", "--start", "2026-02-01", "--end", "2026-02-02", "--repo", str(repo.path), "--no-wait")
    assert done.returncode == 0 and len(done.stdout.split()) == 25, done.stderr
    line = daemon.wait_log(r"request backfill h 2026-02-01 2026-02-02 from pid \d+: ok .*").group(0)
    assert line.endswith(": ok 25 runs, backfill__20260201T000000Z ... backfill__20260202T000000Z"), line


def test_old_checkouts_no_loaded_dag_uses_are_deleted_once_the_daemon_is_idle(make_repo: Callable[..., GitRepo],
                                                                              in_process: Callable[..., Daemon]) -> None:
    """Every commit that ran kept its whole tree in STATE/checkouts forever: a long-lived
    daemon's disk filled. A resume that needs a deleted one gets it made again from Git."""
    daily = 'schedule = "@daily"\nstart_date = 2026-01-01'
    repo = make_repo({"dags/d.toml": toml("exit 1", extra=daily)})
    first = git(repo.path, "rev-parse", "HEAD").strip()
    daemon = in_process(repo)
    daemon.prune_after = 0.0
    settle(daemon, datetime(2026, 1, 2, 12, tzinfo=timezone.utc))
    (failed,) = daemon.state.runs("d")
    second = repo.commit({"dags/d.toml": toml("true", extra=daily)})
    for day in (3, 4):  # the first pass keeps a young checkout; then none is young any more
        now = datetime(2026, 1, day, 12, tzinfo=timezone.utc)
        daemon.reload(now)
        settle(daemon, now)
        daemon.loop(now)
        assert sorted(p.name for p in daemon.state.checkouts.iterdir()) == (sorted([first, second]) if day == 3 else [second])
        daemon.keep_checkouts = 0.0
    reply = daemon.requests.handle(inbox.Request("resume", {"dag": "d", "run_id": failed.run_id}), now)
    assert reply.ok, reply.error
    assert (daemon.state.checkouts / first).is_dir()  # made again from Git
    settle(daemon, now, schedule=False)
    run = daemon.state.load_run("d", failed.run_id)
    assert run.commit == first and len(run.tasks["only"].attempts) == 2 and run.state is RunStatus.FAILED


def test_a_daemon_on_a_repository_with_no_commits_yet_waits_for_the_first_push(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """The README starts the service (step 3) before the first push (step 4): the daemon
    exited 1 'has no commits yet', so `systemctl enable --now` failed and systemd restarted
    it every 5 s until the push. `--once` still refuses (test_daemon.py)."""
    bare = tmp_path / "pipelines.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    daemon = start(daemons, bare, tmp_path / "home")
    assert re.search(rf"WARNING gitflowd.daemon: repository {re.escape(str(bare))} has no commits yet: commit your dags/ first; "
                     r"waiting for the first commit", daemon.log), daemon.log
    clone = GitRepo(tmp_path / "clone")
    sha = clone.commit({"dags/hello.toml": toml("echo hello")}, message="first")
    git(clone.path, "push", "-q", str(bare), "main")
    daemon.wait_log(rf"reloaded {sha} 'first': 1 DAG\(s\) active; hello added")
    done = daemon.cli("run", "hello", "--repo", str(bare))
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as the mistake does")
def test_root_is_refused_a_foreground_run_in_the_service_users_state_directory(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    """`sudo gitflowd run` (without -u gitflowd) while the service was stopped wrote root's
    journal, logs and directories into its state: the daemon could not write beside them."""
    repo = make_repo({"dags/d.toml": toml("true")})
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 65534, 65534)
    done = run_cli("run", "d", "--repo", str(repo.path), "--state", str(state), "--site", str(tmp_path / "site"), timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"gitflowd: error: {state} belongs to user ") and "run it as that user (sudo -u " in line, line
    assert not (state / "runs").exists() and not (state / "daemon.lock").exists()
    listed = run_cli("status", "--repo", str(repo.path), "--state", str(state), timeout=60)  # reading is fine
    assert listed.returncode == 0, listed.stderr


def test_checkouts_are_pruned_a_few_at_a_time_and_never_left_half_deleted(tmp_path: Path) -> None:
    """The first prune of a long-lived state could delete hundreds of trees in one loop pass,
    past the watchdog's 30 s. A read-only tree (as checkouts are) goes whole or not at all."""
    root = tmp_path / "checkouts"
    shas = [f"{n:040x}" for n in range(5)]
    for sha in shas:
        (root / sha / "sub").mkdir(parents=True)
        (root / sha / "sub" / "f").write_text("x")
        for path in (root / sha / "sub", root / sha):
            path.chmod(0o555)
    (root / ".in-progress").mkdir()
    assert checkouts.prune(root, {shas[0]}, 0.0, 3) == shas[1:4]
    assert checkouts.prune(root, {shas[0]}, 3600.0, 3) == []  # made just now: kept
    assert checkouts.prune(root, {shas[0]}, 0.0, 3) == shas[4:]
    assert sorted(p.name for p in root.iterdir()) == [".in-progress", shas[0]]


def test_long_work_in_the_loop_asks_for_start_time_and_feeds_the_watchdog(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    """Preparing a backfill of a year of hourly ticks (5 ms a run) held the loop past the
    watchdog's 30 s: systemd killed the daemon mid-request, and its restart resumed thousands
    of queued runs before READY=1, past the start timeout. Here the watchdog interval is a
    microsecond, so every run prepared must feed it, and a start with runs to resume must ask
    for more time before READY=1."""
    repo = make_repo({"dags/h.toml": toml("true", schedule="@hourly", extra="start_date = 2026-01-01\nmax_active_runs = 1")})
    manager = ServiceManager(tmp_path / "notify.sock")
    options = Options(repo=repo.path, state=tmp_path / "state", site=tmp_path / "site")
    try:
        first = Daemon(options, Notifier(manager.path, watchdog_usec=1))
        first.lock.acquire()
        first.start()
        manager.take()
        reply = first.requests.handle(inbox.Request("backfill", {"dag": "h", "start": "2026-02-01", "end": "2026-02-03"}), datetime.now(timezone.utc))
        assert reply.ok and len(reply.runs) == 49, reply.error
        assert wait_for(lambda: manager.take().count("WATCHDOG=1") >= 49 or None, what="a ping per run prepared")
        first.close()  # its runs stay queued, as after a crash
        second = Daemon(options, Notifier(manager.path))
        second.lock.acquire()
        second.start()
        second.close()
        messages = wait_for(lambda: manager.take() or None, what="the second start's messages")
        extended = [n for n, line in enumerate(messages) if line.startswith("EXTEND_TIMEOUT_USEC=")]
        assert extended and "READY=1" in messages[extended[0]:], messages
    finally:
        manager.close()


class ServiceManager:
    """The receiving end of NOTIFY_SOCKET, read all along as systemd does (a full socket
    queue would block the sender)."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.open = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while self.open:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            with self.lock:
                self.lines += data.decode().split("\n")

    def take(self) -> list[str]:
        """The lines received since the last take."""
        with self.lock:
            lines, self.lines = self.lines, []
        return lines

    def close(self) -> None:
        self.open = False
        self.thread.join()
        self.sock.close()
