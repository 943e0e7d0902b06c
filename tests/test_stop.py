"""`gitflowd stop`: a run stopped in a real daemon, a queued one, one whose runner died, and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from gitflowd.state import RunStatus, TaskStatus
from tests.conftest import GIT_ENV, GitRepo
from tests.test_cli_run import _start_run, leaking_dag, secrets_file
from tests.test_daemon import WAIT, DaemonProcess, counting_dag, daemons, held_run, journal_of, lines, start, wait_for  # noqa: F401


def _alive(pid_file: Path) -> bool:
    """The process runs (a zombie waiting for init to reap it does not)."""
    try:
        stat = Path(f"/proc/{int(pid_file.read_text())}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _held_dag(counts: Path, gate: Path) -> str:
    """counting_dag, its `held` task writing its pid and ignoring SIGTERM (the stop must SIGKILL it)."""
    return counting_dag(counts, gate).replace("touch " + str(counts / "held.started"),
                                              f"echo $$ > {counts}/held.pid; trap '' TERM; touch {counts}/held.started")


def test_stop_in_the_daemon_ends_a_running_and_a_queued_run_and_resume_continues_them(
        make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    counts, gate = tmp_path / "counts", tmp_path / "gate"
    counts.mkdir()
    repo = make_repo({"dags/job.toml": "[dag]\nmax_active_runs = 1\n\n" + _held_dag(counts, gate)})
    daemon = start(daemons, repo.path, tmp_path / "home", "--grace", "0.5")
    where = ("--repo", str(repo.path))
    first = daemon.cli("run", "job", *where, "--no-wait").stdout.split()[0]
    wait_for(lambda: (counts / "held.started").exists(), what="held started")
    second = daemon.cli("run", "job", *where, "--no-wait").stdout.split()[0]  # queued: max_active_runs = 1
    done = daemon.cli("stop", "job", second, *where)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"run {second}: interrupted; continue it with: gitflowd resume job {second}"
    assert journal_of(daemon.state, "job", second).tasks["first"].attempts == []  # never started
    done = daemon.cli("stop", "job", first, *where)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"stopping run {first} of DAG 'job': its running tasks get SIGTERM, then SIGKILL after")
    run = journal_of(daemon.state, "job", first)
    assert run.state is RunStatus.INTERRUPTED and run.tasks["held"].state is TaskStatus.INTERRUPTED
    assert run.tasks["last"].state is TaskStatus.PENDING
    wait_for(lambda: not _alive(counts / "held.pid"), what="the task ignoring SIGTERM killed")
    again = daemon.cli("stop", "job", first, *where)
    assert again.returncode == 1 and again.stderr.strip() == f"gitflowd: error: run {first!r} of DAG 'job' has already ended (interrupted)"
    assert daemon.proc.poll() is None and f"request stop job {first}" in daemon.log
    assert f"run {first}: stopping (`gitflowd stop`), terminating 1 task(s)" in daemon.log
    gate.touch()
    for run_id in (first, second):  # nothing restarts them by itself; resume does
        done = daemon.cli("resume", "job", run_id, *where)
        assert done.returncode == 0, done.stderr
        assert journal_of(daemon.state, "job", run_id).state is RunStatus.SUCCESS
    assert lines(counts / "first") == [first, second]  # `first` succeeded before the stop: not run again
    assert lines(counts / "last") == [first, second]


def test_stop_without_a_daemon_ends_a_run_whose_runner_died_and_refuses_a_live_one(
        make_repo: Callable[..., GitRepo], cli, tmp_path: Path) -> None:
    counts, gate = tmp_path / "counts", tmp_path / "gate"
    counts.mkdir()
    repo = make_repo({"dags/job.toml": _held_dag(counts, gate)})
    env = {**os.environ, **GIT_ENV}
    runner = subprocess.Popen([sys.executable, "-m", "gitflowd", "run", "job"], cwd=repo.path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_id = runner.stdout.readline().strip()
        wait_for(lambda: (counts / "held.started").exists(), what="held started")
        busy = cli("stop", "job", run_id, cwd=repo.path)
        assert busy.returncode == 1 and busy.stderr.startswith(f"gitflowd: error: run {run_id!r} is in a state directory used by pid {runner.pid}")
        runner.kill()  # SIGKILL: the journal still says running, and `held` goes on as an orphan
        runner.wait(WAIT)
        assert _alive(counts / "held.pid")
        done = cli("stop", "job", run_id, cwd=repo.path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"run {run_id}: interrupted; continue it with: gitflowd resume job {run_id}"
        assert not _alive(counts / "held.pid")  # the orphan ignored SIGTERM: killed
        run = journal_of(repo.path / ".gitflowd" / "state", "job", run_id)
        assert run.state is RunStatus.INTERRUPTED and run.tasks["held"].attempts[-1].state is TaskStatus.INTERRUPTED
        assert run.tasks["held"].attempts[-1].ended is not None
        # its log says how it ended, and status does not call an attempt that ran one that could not start
        log = (repo.path / ".gitflowd" / "state" / "logs" / "job" / run_id / "held.1.log").read_text()
        assert log.splitlines()[-1].startswith("gitflowd: interrupted: the run's runner died") and log.rstrip().endswith("when the run was stopped"), log
        status = cli("status", "job", run_id, cwd=repo.path)
        assert "held" in status.stdout and "could not start" not in status.stdout, status.stdout
    finally:
        gate.touch()
        if runner.poll() is None:
            runner.kill()
    for args, message in ((["job", "manual__20990101T000000Z"], "unknown run 'manual__20990101T000000Z'"),
                          (["nope", run_id], "unknown DAG 'nope'"),
                          (["job", run_id], "has already ended (interrupted)")):
        done = cli("stop", *args, cwd=repo.path)
        assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
    done = cli("resume", "job", run_id, cwd=repo.path)
    assert done.returncode == 0, done.stderr
    assert lines(counts / "first") == [run_id] and lines(counts / "last") == [run_id]


def test_a_run_cleared_in_the_daemon_waits_for_resume_even_across_a_restart(
        make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    counts = tmp_path / "counts"
    counts.mkdir()
    repo = make_repo({"dags/job.toml": f'[tasks.only]\ncmd = "echo $GITFLOWD_RUN_ID >> {counts}/only"\n'})
    daemon = start(daemons, repo.path, tmp_path / "home")
    where = ("--repo", str(repo.path))
    run_id = daemon.cli("run", "job", *where).stdout.split()[0]
    done = daemon.cli("clear", "job", run_id, "--task", "only", *where)
    assert done.returncode == 0, done.stderr
    daemon.stop()
    again = start(daemons, repo.path, tmp_path / "home", "--once")  # resumes what a crash left, not a clear
    assert again.wait() == 0
    assert lines(counts / "only") == [run_id]
    assert journal_of(daemon.state, "job", run_id).state is RunStatus.QUEUED
    status = again.cli("status", "job", *where)
    assert f"{run_id}  queued (cleared: resume it)" in status.stdout, status.stdout
    done = again.cli("resume", "job", run_id, *where)
    assert done.returncode == 0, done.stderr
    assert lines(counts / "only") == [run_id, run_id]


def test_a_run_stopped_just_before_the_daemon_stops_is_not_resumed_at_its_next_start(
        make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    counts, gate = tmp_path / "counts", tmp_path / "gate"
    counts.mkdir()
    repo = make_repo({"dags/job.toml": _held_dag(counts, gate)})
    daemon = start(daemons, repo.path, tmp_path / "home", "--grace", "0.5")
    where = ("--repo", str(repo.path), "--state", str(daemon.state))
    run_id = daemon.cli("run", "job", *where, "--no-wait").stdout.split()[0]
    wait_for(lambda: (counts / "held.started").exists(), what="held started")
    stopper = subprocess.Popen([sys.executable, "-m", "gitflowd", "stop", "job", run_id, *where], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, **GIT_ENV})
    daemon.wait_log(f"request stop job {run_id}")  # `held` ignores the SIGTERM: the run has not ended yet
    daemon.signal(signal.SIGTERM)  # e.g. `systemctl restart` right after the stop
    assert daemon.wait() == 0
    out, err = stopper.communicate(timeout=WAIT)
    assert stopper.returncode == 0 and out.splitlines()[-1].startswith(f"run {run_id}: interrupted; continue it with"), err
    gate.touch()
    again = start(daemons, repo.path, tmp_path / "home", "--once")
    assert again.wait() == 0, again.log
    assert journal_of(daemon.state, "job", run_id).state is RunStatus.INTERRUPTED  # stopped means stopped
    assert lines(counts / "held") == [run_id] and lines(counts / "last") == []


def test_a_stopping_daemon_still_takes_stop_and_does_not_resume_that_run(
        make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo, daemon, run_id, counts, gate = held_run(make_repo, tmp_path, daemons, "--grace", "60")
    daemon.signal(signal.SIGTERM)  # it waits up to 60 s for `held`
    daemon.wait_log("stopping:")
    done = daemon.cli("stop", "job", run_id, "--repo", str(repo.path), timeout=WAIT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"run {run_id}: interrupted; continue it with: gitflowd resume job {run_id}"
    assert daemon.wait() == 0  # nothing left to wait for
    gate.touch()
    again = start(daemons, repo.path, tmp_path / "home", "--once")
    assert again.wait() == 0, again.log
    run = journal_of(daemon.state, "job", run_id)
    assert run.state is RunStatus.INTERRUPTED and run.tasks["held"].state is TaskStatus.INTERRUPTED
    assert lines(counts / "held") == [run_id] and lines(counts / "last") == []


def test_stop_of_a_dead_runners_run_with_secrets_needs_them_to_mask_its_logs(
        make_repo: Callable[..., GitRepo], cli, tmp_path: Path) -> None:
    printed = tmp_path / "printed"
    repo = make_repo({"dags/m.toml": leaking_dag(printed)})
    secrets = secrets_file(tmp_path)
    runner = _start_run(repo, "m", "--secrets-file", str(secrets))
    run_id = runner.stdout.readline().strip()
    wait_for(printed.exists, what="the task printed its secret")
    runner.kill()
    runner.wait(WAIT)
    state = repo.path / ".gitflowd" / "state"
    log = state / "logs" / "m" / run_id / "leak.1.log"
    refused = cli("stop", "m", run_id, cwd=repo.path)
    assert refused.returncode == 1 and refused.stderr.strip() == (
        f"gitflowd: error: the logs of leak in run {run_id!r} are not masked yet (its runner died): give the DAG's "
        "secrets file (--secrets-file or GITFLOWD_SECRETS_FILE) so that stop masks them"), refused.stderr
    assert journal_of(state, "m", run_id).state is RunStatus.RUNNING and b"s3cr3tvalue" in log.read_bytes()
    done = cli("stop", "m", run_id, "--secrets-file", str(secrets), cwd=repo.path)
    assert done.returncode == 0, done.stderr
    assert log.read_bytes().startswith(b"token=***\ngitflowd: interrupted: ") and b"s3cr3tvalue" not in log.read_bytes()
    assert journal_of(state, "m", run_id).state is RunStatus.INTERRUPTED
