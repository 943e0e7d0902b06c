"""The daemon with real Git, real inotify and real processes.

Process tests start `python -m gitflowd daemon` and talk to it the way users do (commits,
pushes, the CLI, signals); schedule tests drive an in-process Daemon's `loop(now=...)`
with a controlled clock. Waits are generous and poll for an outcome; nothing asserts
how fast something happened.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gitflowd import registry
from gitflowd.daemon import Daemon, Options
from gitflowd.state import RunStatus, TaskStatus
from gitflowd.statedir import StateDir
from tests.conftest import GIT_ENV, GitRepo, git, run_cli

WAIT = 60.0
UTC = timezone.utc


def wait_for(check: Callable[[], object], timeout: float = WAIT, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class DaemonProcess:
    """`gitflowd daemon` as a real child process, its stderr in a file."""

    def __init__(self, repo: Path, home: Path, *extra: str, env: dict[str, str] | None = None):
        self.state, self.site = home / "state", home / "site"
        home.mkdir(parents=True, exist_ok=True)
        self.log_path = home / f"daemon-{time.monotonic_ns()}.log"
        self.args = ["--repo", str(repo), "--state", str(self.state), "--site", str(self.site)]
        full_env = {**os.environ, **GIT_ENV, **(env or {})}
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gitflowd", "daemon", *self.args, *extra],
                                         stderr=log, stdout=log, env=full_env)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_log(self, pattern: str, timeout: float = WAIT, count: int = 1) -> re.Match[str]:
        def found() -> list[re.Match[str]]:
            matches = list(re.finditer(pattern, self.log))
            if self.proc.poll() is not None and len(matches) < count:
                raise AssertionError(f"daemon exited {self.proc.returncode} before {pattern!r}:\n{self.log}")
            return matches if len(matches) >= count else []
        return wait_for(found, timeout, f"{pattern!r} in the daemon log")[count - 1]  # type: ignore[index]

    def ready(self) -> DaemonProcess:
        self.wait_log(r"daemon ready")
        return self

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--state", str(self.state), "--site", str(self.site), timeout=timeout)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = WAIT) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop()


def start(daemons: list[DaemonProcess], repo: Path, home: Path, *extra: str, **kw: object) -> DaemonProcess:
    daemon = DaemonProcess(repo, home, *extra, **kw)  # type: ignore[arg-type]
    daemons.append(daemon)
    return daemon.ready()


def toml(cmd: str, *, schedule: str | None = None, extra: str = "") -> str:
    head = f'[dag]\nschedule = "{schedule}"\n{extra}\n' if schedule else (f"[dag]\n{extra}\n" if extra else "")
    return head + f"[tasks.only]\ncmd = {json.dumps(cmd)}\n"


def journal_of(state: Path, dag: str, run_id: str):
    return StateDir(state).load_run(dag, run_id)


# -- reload on commits ---------------------------------------------------------------------


def test_a_new_dag_is_picked_up_and_runs_without_restart(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/first.toml": toml("echo first")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    sha = repo.commit({"dags/second.toml": toml("echo second; echo $GITFLOWD_DAG > second.out")})
    daemon.wait_log(rf"reloaded {sha} 'change': 2 DAG\(s\) active; second added")
    done = daemon.cli("run", "second", "--repo", str(repo.path))
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]
    assert run_id.startswith("manual__")
    run = journal_of(daemon.state, "second", run_id)
    assert run.state is RunStatus.SUCCESS and run.commit == sha
    daemon.wait_log(r"request run second from pid \d+: ok manual__")
    assert (daemon.site / "index.html").exists()


def test_an_invalid_commit_keeps_the_old_version_and_a_fix_loads(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/job.toml": toml("echo version-one")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    bad = repo.commit({"dags/job.toml": "[tasks.only]\ncmd = 'echo two'\ndeps = ['ghost']\n"}, message="break it")
    daemon.wait_log(rf"reloaded {bad} 'break it'")
    daemon.wait_log(r"load error: dags/job\.toml:3: task 'only' depends on unknown task 'ghost'")
    entry = registry.read_registry(daemon.state).dags["job"]
    assert "version-one" in entry.source and entry.errors and not entry.retired
    index = daemon.site / "index.html"
    wait_for(lambda: "depends on unknown task" in index.read_text() and bad[:8] in index.read_text(), what="the error on the site")
    done = daemon.cli("run", "job", "--repo", str(repo.path))
    assert done.returncode == 0, done.stderr
    run = journal_of(daemon.state, "job", done.stdout.split()[0])
    assert run.dag.tasks["only"].cmd == "echo version-one" and run.commit != bad
    fixed = repo.commit({"dags/job.toml": toml("echo version-three")}, message="fix it")
    daemon.wait_log(rf"reloaded {fixed} 'fix it': 1 DAG\(s\) active; job changed")
    done = daemon.cli("run", "job", "--repo", str(repo.path))
    assert journal_of(daemon.state, "job", done.stdout.split()[0]).dag.tasks["only"].cmd == "echo version-three"


def test_a_load_error_says_a_dag_keeps_its_version_only_when_it_had_one(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """Every load error said '(a DAG whose file has errors keeps its last valid version)', also
    for a file that never had a valid version."""
    repo = make_repo({"dags/job.toml": toml("echo one")})
    first = repo.head()
    daemon = start(daemons, repo.path, tmp_path / "home")
    bad = repo.commit({"dags/job.toml": toml("echo two", extra="retrys = 1"), "dags/new.toml": "[tasks.x]\nretrys = 1\n"},
                      message="break job, add a broken file")
    daemon.wait_log(rf"reloaded {bad} ")
    kept = daemon.wait_log(r"load error: dags/job\.toml:\d+: unknown key 'retrys'.*").group(0)
    assert kept.endswith(f"(DAG job keeps running its last valid version, from {first[:8]})"), kept
    new = daemon.wait_log(r"load error: dags/new\.toml:\d+: unknown key 'retrys'.*").group(0)
    assert new.endswith("(nothing runs from this file until it is fixed)") and "keeps" not in new, new


def test_a_template_jinja_rejects_keeps_its_dag_and_other_dags_still_reload(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/t1.toml": toml("echo t1-one"), "dags/other.toml": toml("echo other-one")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    bad = repo.commit({"dags/t1.toml": toml("echo {{ ds | bogus }}"), "dags/other.toml": toml("echo other-two")}, message="bogus filter")
    daemon.wait_log(rf"reloaded {bad} 'bogus filter': 2 DAG\(s\) active; other changed")
    daemon.wait_log(r"load error: dags/t1\.toml:\d+: \[tasks\.only\] cmd: invalid template: No filter named 'bogus'")
    dags = registry.read_registry(daemon.state).dags
    assert "other-two" in dags["other"].source and "t1-one" in dags["t1"].source and dags["t1"].errors
    later = repo.commit({"dags/other.toml": toml("echo other-three")}, message="later")
    daemon.wait_log(rf"reloaded {later} 'later': 2 DAG\(s\) active; other changed")
    assert "Traceback" not in daemon.log and daemon.proc.poll() is None


def test_a_deleted_file_retires_its_dag(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/a.toml": toml("true"), "dags/b.toml": toml("true")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    sha = repo.commit(remove=("dags/b.toml",))
    daemon.wait_log(rf"reloaded {sha} 'change': 1 DAG\(s\) active; b removed")
    done = daemon.cli("run", "b", "--repo", str(repo.path))
    assert done.returncode == 1 and done.stderr.startswith("gitflowd: error: unknown DAG 'b' (retired: dags/b.toml is gone from the branch")


def test_a_moved_file_is_logged_and_recorded_as_moved(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """`git mv dags/c.toml dags/sub/c.toml` was 'no DAG changed', and nothing went into the history."""
    repo = make_repo({"dags/c.toml": toml("true")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    (repo.path / "dags/sub").mkdir()
    subprocess.run(["git", "mv", "dags/c.toml", "dags/sub/c.toml"], cwd=repo.path, check=True)
    sha = repo.commit(message="move c")
    daemon.wait_log(rf"reloaded {sha} 'move c': 1 DAG\(s\) active; c moved \(dags/c\.toml -> dags/sub/c\.toml\)")
    assert registry.dag_history(daemon.state, "c")[0].changes[0].change is registry.ChangeKind.MOVED
    page = daemon.site / "dags/c/index.html"
    wait_for(lambda: f"dags/sub/c.toml at <code>{sha[:8]}</code>" in page.read_text(), what="the new path on the DAG page")


def test_a_bare_repository_follows_pushes_and_coalesces_a_burst(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    work = make_repo({"dags/a.toml": toml("true")})
    bare = tmp_path / "pipelines.git"
    git(tmp_path, "clone", "-q", "--bare", str(work.path), str(bare))
    git(work.path, "remote", "add", "origin", str(bare))
    daemon = start(daemons, bare, tmp_path / "home")
    shas = [work.commit({"dags/a.toml": toml(f"echo {i}")}, message=f"c{i}") for i in range(10)]
    git(work.path, "push", "-q", "origin", "main")
    daemon.wait_log(rf"reloaded {shas[-1]} 'c9'")
    time.sleep(0.5)  # anything else the push caused would have been logged by now
    reloads = re.findall(r"reloaded ([0-9a-f]{40})", daemon.log)
    assert reloads[1:] == [shas[-1]]  # the start, then one reload for ten commits
    added = work.commit({"dags/b.toml": toml("echo pushed")}, message="add b")
    git(work.path, "push", "-q", "origin", "main")
    daemon.wait_log(rf"reloaded {added} 'add b': 2 DAG\(s\) active; b added")


def test_a_burst_of_local_commits_ends_on_the_newest(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/a.toml": toml("true")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    shas = [repo.commit({"dags/a.toml": toml(f"echo {i}")}, message=f"c{i}") for i in range(10)]
    daemon.wait_log(rf"reloaded {shas[-1]} 'c9'")
    assert len(re.findall(r"reloaded ", daemon.log)) <= 11


def test_a_force_push_and_a_deleted_branch_are_logged_and_survived(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/a.toml": toml("echo one")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    repo.commit({"dags/a.toml": toml("echo two")}, message="two")
    daemon.wait_log(r"reloaded \w+ 'two'")
    git(repo.path, "reset", "-q", "--hard", "HEAD~1")
    rewritten = repo.commit({"dags/a.toml": toml("echo three")}, message="three")
    daemon.wait_log(r"branch main was rewritten \(force-push\?\): \w+ is not an ancestor of \w+")
    daemon.wait_log(rf"reloaded {rewritten} 'three'")
    git(repo.path, "checkout", "-q", "-b", "other")
    git(repo.path, "branch", "-D", "main")
    daemon.wait_log(r"cannot read the repository: .*keeping 1 DAG\(s\)")
    time.sleep(6)  # past a retry: the daemon keeps following main, not the branch HEAD names now
    assert "reloaded" not in daemon.log.split("cannot read the repository")[-1]
    assert daemon.proc.poll() is None
    done = daemon.cli("run", "a", "--repo", str(repo.path), "--no-wait")
    assert done.returncode == 0, done.stderr  # the last good state still serves
    git(repo.path, "checkout", "-q", "-b", "main")
    back = repo.commit({"dags/a.toml": toml("echo four")}, message="four")
    daemon.wait_log(rf"reloaded {back} 'four'")


def test_a_repository_that_vanishes_and_returns(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/a.toml": toml("true")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    hidden = tmp_path / "elsewhere"
    repo.path.rename(hidden)
    repo.path.mkdir()  # an empty directory where the repository was: not a repository
    sha_before = registry.read_registry(daemon.state).attempted.sha
    daemon.wait_log(r"cannot read the repository: .*keeping 1 DAG\(s\) of [0-9a-f]{8}, retrying every 5s")
    assert daemon.proc.poll() is None
    repo.path.rmdir()
    hidden.rename(repo.path)
    added = repo.commit({"dags/b.toml": toml("true")}, message="back")
    daemon.wait_log(rf"reloaded {added} 'back'")
    assert sha_before != added


def test_a_reload_that_cannot_be_recorded_is_retried(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/a.toml": toml("true")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    registry_file = daemon.state / "dags.json"
    saved = registry_file.read_bytes()
    registry_file.unlink()
    registry_file.mkdir()  # a directory where the registry file should be: every write fails
    sha = repo.commit({"dags/b.toml": toml("true")}, message="unrecordable")
    daemon.wait_log(rf"cannot record the reload of {sha[:8]}: .*; keeping the DAGs of [0-9a-f]{{8}}")
    assert daemon.proc.poll() is None
    registry_file.rmdir()
    registry_file.write_bytes(saved)
    daemon.wait_log(rf"reloaded {sha} 'unrecordable': 2 DAG\(s\) active; b added")


def test_polling_instead_of_inotify(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/a.toml": toml("true")})
    daemon = start(daemons, repo.path, tmp_path / "home", "--poll", "0.2")
    sha = repo.commit({"dags/b.toml": toml("true")})
    daemon.wait_log(rf"reloaded {sha} 'change': 2 DAG\(s\) active; b added")
    done = daemon.cli("run", "b", "--repo", str(repo.path))
    assert done.returncode == 0, done.stderr


# -- the state lock ------------------------------------------------------------------------


def test_a_second_daemon_fails_naming_the_first_which_carries_on(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/a.toml": toml("true")})
    first = start(daemons, repo.path, tmp_path / "home")
    second = run_cli("daemon", *first.args, timeout=60)
    assert second.returncode == 1
    assert second.stderr.strip() == (f"gitflowd: error: {first.state}/daemon.lock is held by pid {first.proc.pid} (daemon): "
                                     "another gitflowd daemon or run uses this state directory")
    sha = repo.commit({"dags/b.toml": toml("true")})
    first.wait_log(rf"reloaded {sha}")
    assert first.proc.poll() is None


@pytest.mark.parametrize(
    ("setup", "args", "code", "message"),
    [
        ("plain dir", [], 1, "is not a Git repository"),
        ("repo", ["--branch", "mian"], 1, "unknown branch 'mian'"),
        ("empty repo", ["--once"], 1, "has no commits yet"),
        ("repo", ["--grace", "-1"], 2, "argument --grace: must be a finite number of seconds, zero or more: -1"),
        ("repo", ["--poll", "0"], 2, "--poll must be more than 0 seconds"),
        ("repo", ["--parallelism", "0"], 2, "argument --parallelism: must be at least 1"),
        ("repo", ["--secrets-file", "/nonexistent/secrets"], 1, "/nonexistent/secrets"),
    ],
)
def test_bad_daemon_input_fails_at_once_with_one_line(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                                      setup: str, args: list[str], code: int, message: str) -> None:
    if setup == "plain dir":
        where = tmp_path / "plain"
        where.mkdir()
    else:
        where = make_repo({"dags/a.toml": toml("true")} if setup == "repo" else None).path
    done = run_cli("daemon", "--repo", str(where), "--state", str(tmp_path / "state"), *args, timeout=60)
    assert done.returncode == code, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert message in last and "Traceback" not in done.stderr


# -- crash and stop ------------------------------------------------------------------------


def counting_dag(counts: Path, gate: Path) -> str:
    """first -> held (waits for the gate) -> last; every execution appends a line to counts/<task>."""
    def cmd(task: str, body: str = "true") -> str:
        return json.dumps(f"echo $GITFLOWD_RUN_ID >> {counts}/{task}; {body}")
    held = f"touch {counts}/held.started; while [ ! -e {gate} ]; do sleep 0.05; done"
    return (f"[tasks.first]\ncmd = {cmd('first')}\n\n[tasks.held]\ncmd = {cmd('held', held)}\ndeps = [\"first\"]\n\n"
            f"[tasks.last]\ncmd = {cmd('last')}\ndeps = [\"held\"]\n")


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_sigkill_mid_run_then_restart_completes_every_run_without_rerunning_successes(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    counts, gate = tmp_path / "counts", tmp_path / "gate"
    counts.mkdir()
    start_day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    repo = make_repo({
        "dags/manual.toml": counting_dag(counts, gate),
        "dags/daily.toml": f'[dag]\nschedule = "@daily"\nstart_date = {start_day}\ncatchup = true\nmax_active_runs = 2\n\n' + counting_dag(counts, gate),
    })
    daemon = start(daemons, repo.path, tmp_path / "home", "--parallelism", "4")
    manual = daemon.cli("run", "manual", "--repo", str(repo.path), "--no-wait").stdout.split()[0]
    wait_for(lambda: len(lines(counts / "held")) == 3, what="three held tasks running")  # 1 manual + 2 scheduled
    daemon.proc.kill()
    daemon.wait()
    gate.touch()
    again = start(daemons, repo.path, tmp_path / "home", "--once")
    assert again.wait() == 0, again.log
    runs = StateDir(daemon.state).runs()
    assert len(runs) == 4 and all(r.state is RunStatus.SUCCESS for r in runs), [(r.run_id, r.state) for r in runs]
    scheduled = sorted(r.run_id for r in runs if r.kind == "scheduled")
    assert len(scheduled) == 3
    assert sorted(lines(counts / "first")) == sorted([manual, *scheduled])  # succeeded before the kill: never again
    held_runs = lines(counts / "held")
    assert held_runs.count(manual) == 2  # interrupted by the kill, then retried
    for run in runs:
        held = run.tasks["held"]
        assert held.state is TaskStatus.SUCCESS and held.attempts[-1].number == len([r for r in held_runs if r == run.run_id])
    assert sorted(lines(counts / "last")) == sorted([manual, *scheduled])


def held_run(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess], *extra: str) -> tuple[GitRepo, DaemonProcess, str, Path, Path]:
    """A daemon running one run of counting_dag whose `held` task has started and waits for the gate."""
    counts, gate = tmp_path / "counts", tmp_path / "gate"
    counts.mkdir()
    repo = make_repo({"dags/job.toml": counting_dag(counts, gate)})
    daemon = start(daemons, repo.path, tmp_path / "home", *extra)
    run_id = daemon.cli("run", "job", "--repo", str(repo.path), "--no-wait").stdout.split()[0]
    wait_for(lambda: (counts / "held.started").exists(), what="held started")
    return repo, daemon, run_id, counts, gate


def test_sigterm_lets_running_tasks_finish_within_grace_and_resumes_the_rest(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo, daemon, run_id, counts, gate = held_run(make_repo, tmp_path, daemons, "--grace", "60")
    daemon.signal(signal.SIGTERM)
    daemon.wait_log(r"stopping: 1 run\(s\) get 60s")
    gate.touch()  # the running task finishes inside the grace period
    assert daemon.wait() == 0
    run = journal_of(daemon.state, "job", run_id)
    assert run.state is RunStatus.INTERRUPTED
    assert run.tasks["held"].state is TaskStatus.SUCCESS and run.tasks["last"].state is TaskStatus.PENDING
    again = start(daemons, repo.path, tmp_path / "home", "--once")
    assert again.wait() == 0
    run = journal_of(daemon.state, "job", run_id)
    assert run.state is RunStatus.SUCCESS
    assert lines(counts / "held") == [run_id] and lines(counts / "last") == [run_id]


def test_sigterm_past_grace_interrupts_tasks_and_the_next_start_resumes_them(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo, daemon, run_id, counts, gate = held_run(make_repo, tmp_path, daemons, "--grace", "0.5")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    daemon.wait_log(r"grace period over: interrupting 1 run\(s\)")
    run = journal_of(daemon.state, "job", run_id)
    assert run.state is RunStatus.INTERRUPTED and run.tasks["held"].state is TaskStatus.INTERRUPTED
    gate.touch()
    again = start(daemons, repo.path, tmp_path / "home", "--once")
    assert again.wait() == 0
    run = journal_of(daemon.state, "job", run_id)
    assert run.state is RunStatus.SUCCESS and [a.number for a in run.tasks["held"].attempts] == [1, 2]
    assert lines(counts / "first") == [run_id]


def test_a_follower_notices_the_daemon_dying(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo, daemon, run_id, counts, gate = held_run(make_repo, tmp_path, daemons)
    follower = subprocess.Popen([sys.executable, "-m", "gitflowd", "resume", "job", run_id, "--repo", str(repo.path), "--state", str(daemon.state)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **GIT_ENV})
    _, err = follower.communicate(timeout=WAIT)  # the run is in progress: refused at once
    assert follower.returncode == 1 and f"run '{run_id}' of DAG 'job' is queued or running in the daemon" in err
    follower = subprocess.Popen([sys.executable, "-m", "gitflowd", "run", "job", "--repo", str(repo.path), "--state", str(daemon.state)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **GIT_ENV})
    assert follower.stdout is not None and follower.stdout.readline().startswith("manual__")  # queued behind the first
    daemon.proc.kill()
    _, err = follower.communicate(timeout=WAIT)
    assert follower.returncode == 1 and "the daemon stopped before run(s) manual__" in err and "continue at its next start" in err
    gate.touch()


@pytest.mark.parametrize(("stop", "code", "said"), [(None, 1, "request withdrawn, nothing done"),
                                                    (signal.SIGINT, 130, "the run request was withdrawn before the daemon took it: nothing done"),
                                                    # a CI job's timeout, a closed terminal: before, the request stayed and ran later
                                                    (signal.SIGTERM, 143, "the run request was withdrawn before the daemon took it: nothing done"),
                                                    (signal.SIGHUP, 129, "the run request was withdrawn before the daemon took it: nothing done")])
def test_a_request_sent_to_a_stopping_daemon_is_withdrawn_not_run_at_its_next_start(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess],
                                                                                    stop: int | None, code: int, said: str) -> None:
    repo, daemon, first, counts, gate = held_run(make_repo, tmp_path, daemons)
    daemon.signal(signal.SIGTERM)  # it stops taking requests and waits for the held task
    daemon.wait_log("stopping:")
    cli = subprocess.Popen([sys.executable, "-m", "gitflowd", "run", "job", "--repo", str(repo.path), "--state", str(daemon.state)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **GIT_ENV})
    wait_for(lambda: list((daemon.state / "inbox").glob("*.json")), what="the request in the inbox")
    if stop is not None:
        cli.send_signal(stop)
    gate.touch()  # the held task ends, the daemon exits without having taken the request
    _, err = cli.communicate(timeout=WAIT)
    assert cli.returncode == code and said in err and "Traceback" not in err, err
    assert daemon.wait() == 0
    again = start(daemons, repo.path, tmp_path / "home", "--once")
    assert again.wait() == 0, again.log
    assert [r.run_id for r in StateDir(daemon.state).runs("job")] == [first]  # the withdrawn run never happened


def test_ctrl_c_on_a_follower_says_the_run_goes_on_in_the_daemon(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo, daemon, first, counts, gate = held_run(make_repo, tmp_path, daemons)
    follower = subprocess.Popen([sys.executable, "-m", "gitflowd", "run", "job", "--repo", str(repo.path), "--state", str(daemon.state)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **GIT_ENV})
    assert follower.stdout is not None
    second = follower.stdout.readline().strip()  # queued behind the first
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=WAIT)
    assert follower.returncode == 130 and err == (f"gitflowd: stopped following; run(s) {second} of DAG 'job' go on in the daemon "
                                                  "(see `gitflowd status job`)\n"), err
    gate.touch()
    for run_id in (first, second):
        wait_for(lambda r=run_id: journal_of(daemon.state, "job", r).state is RunStatus.SUCCESS, what=f"{run_id} succeeds")


# -- the inbox -----------------------------------------------------------------------------


def test_cli_requests_while_the_daemon_runs(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({
        "dags/ok.toml": toml("echo {{ ds }}", schedule="@daily", extra="start_date = 2026-01-01\nmax_active_runs = 2"),
        "dags/bad.toml": toml("exit 3"),
    })
    daemon = start(daemons, repo.path, tmp_path / "home")
    where = ("--repo", str(repo.path))
    done = daemon.cli("backfill", "ok", "--start", "2025-12-30", "--end", "2026-01-03", *where)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:3] == ["backfill__20260101T000000Z", "backfill__20260102T000000Z", "backfill__20260103T000000Z"]
    assert all(journal_of(daemon.state, "ok", r).state is RunStatus.SUCCESS for r in done.stdout.split()[:3])
    # a line per finished run, as the foreground prints (the README promises its output)
    assert {f"backfill__2026010{d}T000000Z: success" for d in (1, 2, 3)} <= set(done.stdout.splitlines()), done.stdout
    again = daemon.cli("backfill", "ok", "--start", "2026-01-01", "--end", "2026-01-03", *where)
    assert again.returncode == 0 and "backfill ok: 3 left alone" in again.stderr + again.stdout  # the foreground's words
    failed = daemon.cli("run", "bad", *where)
    assert failed.returncode == 1 and failed.stdout.startswith("manual__")
    resumed = daemon.cli("resume", "bad", failed.stdout.split()[0], *where)
    assert resumed.returncode == 1 and journal_of(daemon.state, "bad", failed.stdout.split()[0]).tasks["only"].attempts[-1].number == 2
    cleared = daemon.cli("clear", "bad", failed.stdout.split()[0], "--task", "only", *where)
    assert cleared.returncode == 0 and "cleared 1 task(s)" in cleared.stdout
    page = daemon.site / "dags" / "bad" / "runs" / failed.stdout.split()[0] / "index.html"
    deadline = time.monotonic() + WAIT  # the daemon re-renders the run it cleared (its engine is not running)
    while 'data-waiting="cleared"' not in (page.read_text() if page.exists() else ""):
        assert time.monotonic() < deadline, "the cleared run's page was not rendered again"
        time.sleep(0.1)
    unknown = daemon.cli("run", "nope", *where)
    assert unknown.returncode == 1 and unknown.stderr.startswith("gitflowd: error: unknown DAG 'nope'")
    bad_param = daemon.cli("run", "ok", "--param", "zone=x", *where)
    assert bad_param.returncode == 2 and "unknown --param 'zone'" in bad_param.stderr  # a usage error, as in the foreground
    for kind in ("backfill ok", "run bad", "resume bad", "clear bad", "run nope"):
        assert f"request {kind}" in daemon.log
    assert daemon.proc.poll() is None


def test_run_rev_in_the_daemon_finds_a_dag_by_the_id_its_file_declares(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/ok.toml": toml("true"), "dags/broken.toml": '[dag]\nid = "brk"\n[tasks.a]\ncmd = "x"\nretrys = 1\n'})
    daemon = start(daemons, repo.path, tmp_path / "home")
    broken = daemon.cli("run", "brk", "--rev", "HEAD", "--repo", str(repo.path))
    assert broken.returncode == 1 and "dags/broken.toml:5: unknown key 'retrys'" in broken.stderr
    stem = daemon.cli("run", "broken", "--rev", "HEAD", "--repo", str(repo.path))
    assert stem.returncode == 1 and "dags/broken.toml:5: unknown key 'retrys'" in stem.stderr


def test_a_backfill_the_foreground_refuses_is_refused_by_the_daemon_too(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/ok.toml": toml("true", schedule="@daily"), "dags/manual.toml": toml("true")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    for args, message in ((["manual", "--start", "2026-01-01", "--end", "2026-01-02"], "DAG 'manual' has no schedule"),
                          (["ok", "--start", "2026-01-05", "--end", "2026-01-02"], "--end 2026-01-02 is before --start 2026-01-05"),
                          (["ok", "--start", "2999-01-01", "--end", "2999-01-02"], "--start 2999-01-01 is in the future")):
        done = daemon.cli("backfill", *args, "--repo", str(repo.path))
        assert done.returncode == 2 and done.stderr.startswith(f"gitflowd: error: {message}"), (done.returncode, done.stderr)
    assert not (daemon.state / "runs" / "manual").exists()


def test_a_run_dated_before_the_dags_start_date_is_refused_by_the_daemon_too(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/late.toml": toml("true", extra="start_date = 2026-01-02")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    for rev in ((), ("--rev", "HEAD")):
        done = daemon.cli("run", "late", "--date", "2026-01-01T12:00", *rev, "--repo", str(repo.path))
        assert done.returncode == 2 and done.stderr == ("gitflowd: error: --date 2026-01-01T12:00 is before the start_date of DAG "
                                                        "'late' (2026-01-02T00:00:00+00:00): a run's logical date must be on or after it\n"), done.stderr
    assert "request run late" in daemon.log and not (daemon.state / "runs" / "late").exists()
    done = daemon.cli("run", "late", "--date", "2026-01-02", "--repo", str(repo.path))
    assert done.returncode == 0 and done.stdout.split()[0] == "manual__20260102T000000Z", done.stderr


def test_a_backfill_that_resumes_a_run_follows_only_its_new_execution(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    fixed = tmp_path / "fixed"
    repo = make_repo({"dags/d.toml": toml(f"test -e {fixed}", schedule="@daily")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    span = ("d", "--start", "2026-01-02", "--end", "2026-01-02", "--repo", str(repo.path))
    assert daemon.cli("backfill", *span).returncode == 1
    fixed.touch()
    for reprocess, attempt in (("failed", 2), ("all", 3)):
        done = daemon.cli("backfill", *span, "--reprocess", reprocess)
        assert done.returncode == 0, done.stderr
        ends = [line for line in done.stdout.splitlines() if line.startswith(("run ", "only: "))]
        assert len(ends) == 3 and ends[0].startswith(f"only: running (attempt {attempt})"), done.stdout  # no replayed history
        assert ends[1].startswith(f"only: success (attempt {attempt},") and ends[2] == "run backfill__20260102T000000Z: success", done.stdout


def test_a_resume_at_another_commit_through_the_daemon_shows_that_commits_subject(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    repo = make_repo({"dags/d.toml": toml("exit 1")})
    daemon = start(daemons, repo.path, tmp_path / "home")
    where = ("--repo", str(repo.path))
    run_id = daemon.cli("run", "d", *where).stdout.split()[0]
    fixed = repo.commit({"dags/d.toml": toml("true")}, message="fix the task")
    assert daemon.cli("resume", "d", run_id, "--rev", "HEAD", *where).returncode == 0
    run = journal_of(daemon.state, "d", run_id)
    assert run.commit == fixed and run.commit_info["subject"] == "fix the task", run.commit_info


def test_secrets_reach_only_the_dags_that_name_them(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text("API_TOKEN=s3cr3t-value\n")
    secrets.chmod(0o600)
    out = tmp_path / "out"
    out.mkdir()
    repo = make_repo({
        "dags/named.toml": f'[dag]\nsecrets = ["API_TOKEN"]\n[tasks.only]\ncmd = "echo token=$API_TOKEN; env > {out}/named"\n',
        "dags/other.toml": toml(f"env > {out}/other"),
    })
    daemon = start(daemons, repo.path, tmp_path / "home", "--secrets-file", str(secrets))
    for dag in ("named", "other"):
        done = daemon.cli("run", dag, "--repo", str(repo.path))
        assert done.returncode == 0, done.stderr
    assert "API_TOKEN=s3cr3t-value" in (out / "named").read_text()
    assert "API_TOKEN" not in (out / "other").read_text()
    (log,) = (daemon.state / "logs" / "named").glob("*/only.1.log")
    assert "token=***" in log.read_text() and "s3cr3t" not in log.read_text()
    secrets.chmod(0o644)
    refused = run_cli("daemon", "--repo", str(repo.path), "--state", str(tmp_path / "other-state"), "--secrets-file", str(secrets), timeout=60)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1 and str(secrets) in refused.stderr


# -- schedules with a controlled clock (in process) ----------------------------------------


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    made: list[Daemon] = []

    def make(repo: GitRepo, **options: object) -> Daemon:
        home = tmp_path / f"home{len(made)}"
        daemon = Daemon(Options(repo=repo.path, state=home / "state", site=home / "site", **options))  # type: ignore[arg-type]
        daemon.lock.acquire()
        daemon.start()
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.pool.interrupt()
        settle(daemon, datetime(2000, 1, 1, tzinfo=UTC), schedule=False)
        daemon.close()


def settle(daemon: Daemon, now: datetime, schedule: bool = True) -> None:
    """Loop at the frozen time `now` until no run is queued or running."""
    deadline = time.monotonic() + WAIT
    if schedule:
        daemon.loop(now)
    while not daemon.pool.idle:
        assert time.monotonic() < deadline, "runs did not finish"
        daemon.waker.sleep(1.0)
        daemon.collect_finished()
        daemon.pool.pump()


def logical_dates(daemon: Daemon, dag: str, tz: str = "UTC") -> list[str]:
    runs = sorted(daemon.state.runs(dag), key=lambda r: r.logical_date)
    return [r.logical_date.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M") for r in runs]


def test_catchup_creates_exactly_the_missed_ticks_across_dst(make_repo: Callable[..., GitRepo], in_process: Callable[..., Daemon]) -> None:
    repo = make_repo({"dags/berlin.toml": toml("echo $GITFLOWD_LOGICAL_DATE", schedule="0 2 * * *",
                                                extra='timezone = "Europe/Berlin"\nstart_date = 2026-03-27\ncatchup = true\nmax_active_runs = 2')})
    daemon = in_process(repo)
    now = datetime(2026, 3, 31, 12, tzinfo=ZoneInfo("Europe/Berlin"))
    for _ in range(4):  # each pass starts what max_active_runs allows
        settle(daemon, now)
    assert logical_dates(daemon, "berlin", "Europe/Berlin") == ["03-27 02:00", "03-28 02:00", "03-29 03:00", "03-30 02:00", "03-31 02:00"]
    run = daemon.state.runs("berlin")[0]
    assert run.data_interval_end - run.data_interval_start == timedelta(days=1)
    settle(daemon, now + timedelta(hours=1))
    assert len(daemon.state.runs("berlin")) == 5  # nothing new until the next tick
    settle(daemon, datetime(2026, 4, 1, 2, tzinfo=ZoneInfo("Europe/Berlin")))
    assert logical_dates(daemon, "berlin", "Europe/Berlin")[-1] == "04-01 02:00"


def test_max_active_runs_holds_while_runs_are_busy(make_repo: Callable[..., GitRepo], tmp_path: Path, in_process: Callable[..., Daemon]) -> None:
    gate = tmp_path / "gate"
    repo = make_repo({"dags/slow.toml": toml(f"while [ ! -e {gate} ]; do sleep 0.05; done", schedule="@hourly",
                                              extra="start_date = 2026-01-01\ncatchup = true\nmax_active_runs = 2")})
    daemon = in_process(repo)
    now = datetime(2026, 1, 1, 5, 30, tzinfo=UTC)
    for _ in range(5):
        daemon.loop(now)
        assert len(daemon.pool.running) <= 2 and daemon.pool.active("slow") <= 2
    assert len(daemon.state.runs("slow")) == 2
    gate.touch()
    for _ in range(4):
        settle(daemon, now)
    assert logical_dates(daemon, "slow") == [f"01-01 0{h}:00" for h in range(6)]


def test_catchup_false_runs_only_the_latest_tick_and_end_date_stops(make_repo: Callable[..., GitRepo], in_process: Callable[..., Daemon]) -> None:
    repo = make_repo({
        "dags/latest.toml": toml("true", schedule="@daily", extra="start_date = 2026-01-01\ncatchup = false"),
        "dags/ending.toml": toml("true", schedule="@daily", extra="start_date = 2026-01-01\nend_date = 2026-01-03\ncatchup = true"),
    })
    daemon = in_process(repo)
    for day in (10, 10, 11, 20):
        for _ in range(3):
            settle(daemon, datetime(2026, 1, day, 6, tzinfo=UTC))
    assert logical_dates(daemon, "latest") == ["01-10 00:00", "01-11 00:00", "01-20 00:00"]
    assert logical_dates(daemon, "ending") == ["01-01 00:00", "01-02 00:00", "01-03 00:00"]
    assert daemon.next_due(datetime(2026, 1, 20, 6, tzinfo=UTC)) == datetime(2026, 1, 21, tzinfo=UTC)


def test_once_runs_the_ticks_due_when_it_started_not_those_that_come_while_it_waits(
        make_repo: Callable[..., GitRepo], tmp_path: Path, in_process: Callable[..., Daemon]) -> None:
    # Else a catch-up slower than its schedule (or one long DAG beside an hourly one) keeps a
    # cron job's `daemon --once` going for ever, and the next cron start finds the lock held.
    gate = tmp_path / "gate"
    repo = make_repo({"dags/slow.toml": toml(f"while [ ! -e {gate} ]; do sleep 0.05; done", schedule="@hourly",
                                              extra="start_date = 2026-01-01\ncatchup = true\nmax_active_runs = 1")})
    daemon = in_process(repo, once=True)
    daemon.loop(datetime(2026, 1, 1, 1, 30, tzinfo=UTC))  # 00:00 and 01:00 are due; one runs
    later = datetime(2026, 1, 1, 3, 30, tzinfo=UTC)  # 02:00 and 03:00 come while it runs
    daemon.loop(later)
    gate.touch()
    for _ in range(4):
        settle(daemon, later)
    assert logical_dates(daemon, "slow") == ["01-01 00:00", "01-01 01:00"]
    assert daemon.finished


def test_ticks_that_come_while_the_repository_is_gone_run_and_none_is_skipped(
        make_repo: Callable[..., GitRepo], tmp_path: Path, in_process: Callable[..., Daemon]) -> None:
    # Before, every tick due while the repository could not be read was logged and skipped for
    # good (a run needs its commit's subject and checkout from Git): one lost tick per retry.
    repo = make_repo({"dags/hourly.toml": toml("true", schedule="@hourly", extra="start_date = 2026-01-01\ncatchup = true")})
    daemon = in_process(repo)
    settle(daemon, datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    assert logical_dates(daemon, "hourly") == ["01-01 00:00"]
    fresh = repo.commit({"dags/other.toml": toml("true", schedule="@hourly", extra="start_date = 2026-01-01\ncatchup = true")}, message="other")
    daemon.reload(datetime(2026, 1, 1, 0, 30, tzinfo=UTC), render=False)  # loaded, no run at it yet: no checkout
    hidden = tmp_path / "elsewhere"
    repo.path.rename(hidden)
    for _ in range(3):
        settle(daemon, datetime(2026, 1, 1, 2, 30, tzinfo=UTC))
    # The commit's subject was kept from its reload; its checkout is missing and Git is gone,
    # so the runs wait for the repository instead of being skipped.
    assert logical_dates(daemon, "hourly") == ["01-01 00:00"] and daemon.state.runs("other") == []
    hidden.rename(repo.path)
    for _ in range(4):
        settle(daemon, datetime(2026, 1, 1, 2, 30, tzinfo=UTC))
    assert logical_dates(daemon, "hourly") == ["01-01 00:00", "01-01 01:00", "01-01 02:00"]
    assert logical_dates(daemon, "other") == ["01-01 00:00", "01-01 01:00", "01-01 02:00"]
    assert {run.commit for run in daemon.state.runs("other")} == {fresh}


def test_a_run_at_a_checked_out_commit_needs_no_repository(
        make_repo: Callable[..., GitRepo], tmp_path: Path, in_process: Callable[..., Daemon]) -> None:
    # The last good DAGs keep running while the repository is gone: its checkout is on disk
    # and the subject came with the reload.
    repo = make_repo({"dags/hourly.toml": toml("true", schedule="@hourly", extra="start_date = 2026-01-01\ncatchup = true")})
    daemon = in_process(repo)
    settle(daemon, datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    repo.path.rename(tmp_path / "elsewhere")
    for _ in range(3):
        settle(daemon, datetime(2026, 1, 1, 2, 30, tzinfo=UTC))
    runs = sorted(daemon.state.runs("hourly"), key=lambda r: r.logical_date)
    assert [r.state for r in runs] == [RunStatus.SUCCESS] * 3
    assert runs[-1].commit_info["subject"] == runs[0].commit_info["subject"] != ""


def test_a_deleted_repository_is_logged_once_not_again_at_each_retry(
        make_repo: Callable[..., GitRepo], in_process: Callable[..., Daemon], caplog: pytest.LogCaptureFixture) -> None:
    # The open Repo said 'does not exist any more', each reopen 'does not exist': two lines for one fault.
    repo = make_repo({"dags/a.toml": toml("true")})
    daemon = in_process(repo)
    shutil.rmtree(repo.path)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    daemon.reload(now)  # as a git event would
    for _ in range(3):
        daemon.follower.retry_at = 0.0  # the 5 s retry, now
        daemon.loop(now)
    said = [r.getMessage() for r in caplog.records if "cannot read the repository" in r.getMessage()]
    assert said == [f"cannot read the repository: repository {repo.path} does not exist; keeping 1 DAG(s) of "
                    f"{daemon.follower.head[:8]}, retrying every 5s"]


def test_the_loop_sleeps_until_the_next_tick(make_repo: Callable[..., GitRepo], in_process: Callable[..., Daemon]) -> None:
    repo = make_repo({"dags/hourly.toml": toml("true", schedule="@hourly")})
    daemon = in_process(repo)
    settle(daemon, datetime(2026, 1, 1, 10, 59, 30, tzinfo=UTC))
    assert daemon.loop(datetime(2026, 1, 1, 10, 59, 30, tzinfo=UTC)) == pytest.approx(30, abs=1)
    idle = make_repo({"dags/manual.toml": toml("true")})
    assert in_process(idle).loop() == pytest.approx(300, abs=1)  # nothing due: only the periodic clock check


def test_logs_carry_journald_priorities_when_stderr_is_the_journal(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    repo = make_repo({"dags/a.toml": "[tasks.t]\ncmd = 'true'\n", "dags/bad.toml": "[tasks.t]\ncmd = 'true'\ndeps = ['x']\n"})
    args = [sys.executable, "-m", "gitflowd", "daemon", "--once", "--repo", str(repo.path), "--state", str(tmp_path / "state"),
            "--site", str(tmp_path / "site")]
    journal_file = tmp_path / "journal.log"
    with open(journal_file, "w") as stream:
        info = os.fstat(stream.fileno())
        env = {**os.environ, **GIT_ENV, "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        assert subprocess.run(args, stderr=stream, env=env, timeout=120).returncode == 0
    lines = journal_file.read_text().splitlines()
    assert any(line.startswith("<6>gitflowd.daemon: reloaded ") for line in lines)
    assert any(line.startswith("<4>gitflowd.daemon: load error: dags/bad.toml:3:") for line in lines)
    plain = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **GIT_ENV, "JOURNAL_STREAM": "1:2"}, timeout=120)
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO gitflowd\.daemon: daemon ready", plain.stderr, re.M)
    assert "\x1b[" not in plain.stderr + journal_file.read_text()


def test_once_over_the_example_repository_catches_up_and_renders(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    """The README demo: the umbrella example, `daemon --once`, scheduled catch-up runs and a site."""
    examples = Path(__file__).resolve().parent.parent / "examples" / "umbrella"
    files = {str(p.relative_to(examples)): p.read_text() for p in examples.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()  # a fixed date would grow the catch-up every day
    files["dags/umbrella_demand.toml"] = re.sub(r"(?m)^start_date = \S+", f"start_date = {three_days_ago}", files["dags/umbrella_demand.toml"])
    repo = make_repo(files)
    home = tmp_path / "home"
    done = run_cli("daemon", "--once", "--repo", str(repo.path), "--state", str(home / "state"), "--site", str(home / "site"), timeout=300)
    assert done.returncode == 0, done.stderr
    runs = StateDir(home / "state").runs("umbrella_demand")
    assert len(runs) == 4 and all(r.kind == "scheduled" and r.state is RunStatus.SUCCESS for r in runs)
    assert "umbrella_demand" in (home / "site" / "index.html").read_text()
    for run in runs:
        assert any((home / "site").rglob(f"*{run.run_id}*")), f"no page for {run.run_id}"


def test_a_detached_head_is_said_not_shown_as_branch_none(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    repo = make_repo({"dags/a.toml": "[tasks.t]\ncmd = 'true'\n"})
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=repo.path, check=True)
    done = run_cli("daemon", "--once", "--repo", str(repo.path), "--state", str(tmp_path / "state"), "--site", str(tmp_path / "site"), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "branch None" not in done.stderr and "branch none (detached HEAD)" in done.stderr
    assert f"HEAD of {repo.path} is detached: following HEAD, not a branch; pass --branch B to follow one" in done.stderr


def test_once_exits_1_when_a_run_failed(make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    today = datetime.now(UTC).date().isoformat()
    repo = make_repo({"dags/broken.toml": toml("exit 4", schedule="@daily", extra=f"start_date = {today}")})
    done = run_cli("daemon", "--once", "--repo", str(repo.path), "--state", str(tmp_path / "state"), "--site", str(tmp_path / "site"), timeout=120)
    assert done.returncode == 1 and "1 run(s) did not succeed" in done.stderr
    (run,) = StateDir(tmp_path / "state").runs("broken")
    assert run.state is RunStatus.FAILED


def test_the_orphans_of_every_unfinished_run_are_killed_in_one_pass_at_restart(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """A restarted daemon killed each run's orphans, and waited out the SIGTERM grace, one run at
    a time before resuming it: with tasks that ignore SIGTERM, nine runs passed systemd's 90 s
    start timeout. Every orphan is now killed, in one grace period, before any run resumes."""
    marks, gate = tmp_path / "marks", tmp_path / "gate"
    marks.mkdir()
    cmd = f"test -e {gate} && exit 0; trap '' TERM; touch {marks}/$GITFLOWD_RUN_ID; sleep 300"
    repo = make_repo({"dags/stubborn.toml": f'[dag]\nmax_active_runs = 2\n\n[tasks.hold]\ncmd = "{cmd}"\n'})
    daemon = start(daemons, repo.path, tmp_path / "home", "--parallelism", "4")
    for _ in range(2):
        daemon.cli("run", "stubborn", "--repo", str(repo.path), "--no-wait")
    wait_for(lambda: len(list(marks.iterdir())) == 2, what="both runs' tasks started")
    daemon.proc.kill()
    daemon.wait()
    gate.touch()
    again = start(daemons, repo.path, tmp_path / "home", "--once")
    assert again.wait() == 0, again.log
    kills = [m.start() for m in re.finditer("killing orphaned process group", again.log)]
    resumes = [m.start() for m in re.finditer("resuming run", again.log)]
    assert len(kills) == 2 and len(resumes) == 2 and max(kills) < min(resumes), again.log
    assert all(r.state is RunStatus.SUCCESS for r in StateDir(daemon.state).runs())


@pytest.mark.parametrize("how", ["deleted", "moved"])
def test_an_inbox_deleted_or_moved_under_the_daemon_is_made_and_watched_again(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess], how: str) -> None:
    """Its inotify watch died with the directory: every request after it went unseen, and each
    command waited out its 120 s before withdrawing it."""
    repo = make_repo({"dags/d.toml": '[tasks.a]\ncmd = "true"\n'})
    daemon = start(daemons, repo.path, tmp_path / "home")
    inbox = daemon.state / "inbox"
    if how == "deleted":
        shutil.rmtree(inbox)
    else:
        inbox.rename(daemon.state / "inbox.old")
    daemon.wait_log(r"the inbox .* was deleted or replaced: made and watched again")
    done = daemon.cli("run", "d", "--repo", str(repo.path), timeout=60)
    assert done.returncode == 0, done.stderr
    assert StateDir(daemon.state).runs()[0].state is RunStatus.SUCCESS


def test_a_run_held_back_by_max_active_runs_is_on_the_site_as_queued_at_once(make_repo: Callable[..., GitRepo], tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """It appeared on the site only once it started, possibly hours later."""
    gate = tmp_path / "gate"
    repo = make_repo({"dags/one.toml": f'[dag]\nmax_active_runs = 1\n\n[tasks.a]\ncmd = "while [ ! -e {gate} ]; do sleep 0.05; done"\n'})
    daemon = start(daemons, repo.path, tmp_path / "home")
    try:
        first = daemon.cli("run", "one", "--repo", str(repo.path), "--no-wait").stdout.split()[0]
        second = daemon.cli("run", "one", "--repo", str(repo.path), "--no-wait").stdout.split()[0]
        page = daemon.site / "dags" / "one" / "runs" / second / "index.html"
        wait_for(page.exists, what="the queued run's page")
        assert "queued" in page.read_text() and first != second
    finally:
        gate.touch()  # the task ends even when the test fails: no process left behind
    wait_for(lambda: all(r.state is RunStatus.SUCCESS for r in StateDir(daemon.state).runs()) and len(StateDir(daemon.state).runs()) == 2,
             what="both runs done")
    wait_for(lambda: 'data-state="success"' in page.read_text(), what="the page updated when it ran")
