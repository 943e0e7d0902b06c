"""Crash safety: SIGKILL `gitflowd run`/`resume` at random moments, resume each time, check the invariants.

Each task appends `<task> <attempt>` to a shared file. After every kill the journal is read
as the dead runner left it. Invariants (DESIGN.md section 7):
- a task whose success was durable at a kill never runs again (its lines never change);
- after a durable success there is no later start of that task in the journal;
- a task that was never in flight at any kill ran exactly once;
- the run completes with every task succeeded, and no task process is left behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from gitflowd import journal
from gitflowd.state import TaskStatus, read_run
from gitflowd.statedir import StateDir
from tests.conftest import GIT_ENV

TASKS = 32
CHAINS = 4
KILLS = 10


def _dag_toml(out: Path) -> str:
    parts = ["[dag]\nmax_active_tasks = 4\n"]
    for i in range(TASKS):
        deps = f'deps = ["t{i - CHAINS:02d}"]\n' if i >= CHAINS else ""
        pause = 0.02 + 0.01 * (i % 5)
        parts.append(f'[tasks.t{i:02d}]\ncmd = "sleep {pause}; echo $GITFLOWD_TASK $GITFLOWD_ATTEMPT >> {out}"\n{deps}')
    return "\n".join(parts)


def _gitflowd(repo: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **GIT_ENV}
    for key in ("GITFLOWD_REPO", "GITFLOWD_STATE", "GITFLOWD_SITE"):
        env.pop(key, None)
    return subprocess.Popen([sys.executable, "-m", "gitflowd", *args], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lines(out: Path) -> Counter[str]:
    return Counter(out.read_text().splitlines()) if out.exists() else Counter()


def _by_task(lines: Counter[str]) -> Counter[str]:
    result: Counter[str] = Counter()
    for line, n in lines.items():
        result[line.split()[0]] += n
    return result


def test_sigkill_at_random_moments_then_resume(make_repo, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    out = tmp_path / "out.txt"
    repo = make_repo({"dags/crash.toml": _dag_toml(out)})
    state = StateDir(repo.path / ".gitflowd" / "state")
    run_id = None
    kills = tries = 0
    durable: dict[str, Counter[str]] = {}  # task -> its lines when its success was first seen durable
    in_flight: set[str] = set()
    while kills < KILLS:
        tries += 1
        # A try misses when the run ends before the kill; each has a fair chance to land, so
        # this only guards against a loop that can never land one (60 was missed at 1 in 8).
        assert tries < 300, f"seed {seed}: could not land {KILLS} kills"
        proc = _gitflowd(repo.path, "resume", "crash", run_id) if run_id else _gitflowd(repo.path, "run", "crash")
        if run_id is None:
            run_id = proc.stdout.readline().strip()
            assert run_id, proc.communicate()[1]
        time.sleep(rng.uniform(0.05, 1.2))
        if proc.poll() is not None:  # finished before the kill: clear some tasks and go again
            proc.communicate()
            # half the tasks again (chains 0 and 1, each from its first task): enough work for
            # the next kill to land while they run
            cleared = subprocess.run([sys.executable, "-m", "gitflowd", "clear", "crash", run_id, "--task", "t00",
                                      "--task", "t01", "--downstream"],
                                     cwd=repo.path, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
            assert cleared.returncode == 0, f"seed {seed}: {cleared.stderr}"
            continue
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        kills += 1
        run = read_run(state.journal_path("crash", run_id))  # exactly what the dead runner left durable
        if kills == 1 and run.state.value == "running":
            shown = subprocess.run([sys.executable, "-m", "gitflowd", "status", "crash", run_id], cwd=repo.path,
                                   capture_output=True, text=True, env={**os.environ, **GIT_ENV})
            assert "running (runner gone: resume it)" in shown.stdout, shown.stdout + shown.stderr
        lines = _lines(out)
        for task_id, task in run.tasks.items():
            if task.state is TaskStatus.SUCCESS and task_id not in durable:
                durable[task_id] = Counter({k: v for k, v in lines.items() if k.split()[0] == task_id})
            elif task.state is not TaskStatus.SUCCESS:
                in_flight.add(task_id) if task.attempts else None

    final = _gitflowd(repo.path, "resume", "crash", run_id)
    stdout, stderr = final.communicate(timeout=300)
    assert final.returncode in (0, 1), stderr
    run = read_run(state.journal_path("crash", run_id))
    if final.returncode == 1:  # the last kill happened to leave nothing to resume: the run had completed
        assert "nothing to resume" in stderr, stderr
    assert all(t.state is TaskStatus.SUCCESS for t in run.tasks.values()), f"seed {seed}"
    lines = _lines(out)
    counts = _by_task(lines)
    assert set(counts) == set(run.tasks), f"seed {seed}: some task never ran"
    for task_id, seen in durable.items():
        now = Counter({k: v for k, v in lines.items() if k.split()[0] == task_id})
        if task_id not in _cleared_after(state, run_id, task_id):
            assert now == seen, f"seed {seed}: {task_id} ran again after a durable success: {seen} -> {now}"
    for task_id, n in counts.items():
        if task_id not in in_flight and task_id not in durable and not _ever_cleared(state, run_id, task_id):
            assert n == 1, f"seed {seed}: {task_id} ran {n} times without ever being in flight at a kill"
    _assert_no_start_after_success(state, run_id)
    assert not _live_task_processes(run_id)


def _ever_cleared(state: StateDir, run_id: str, task_id: str) -> bool:
    return any(r["event"] == "tasks_cleared" and task_id in r["tasks"] for r in journal.read(state.journal_path("crash", run_id)))


def _cleared_after(state: StateDir, run_id: str, task_id: str) -> set[str]:
    """{task_id} if it was cleared at some point (then it may legitimately run again)."""
    return {task_id} if _ever_cleared(state, run_id, task_id) else set()


def _assert_no_start_after_success(state: StateDir, run_id: str) -> None:
    succeeded: set[str] = set()
    for record in journal.read(state.journal_path("crash", run_id)):
        if record["event"] == "tasks_cleared":
            succeeded -= set(record["tasks"])
        elif record["event"] == "task_started":
            assert record["task"] not in succeeded, f"{record['task']} started again after its success"
        elif record["event"] == "task_finished" and record["state"] == "success":
            succeeded.add(record["task"])


def _live_task_processes(run_id: str) -> list[int]:
    found = []
    needle = f"GITFLOWD_RUN_ID={run_id}".encode()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if needle in Path(entry.path, "environ").read_bytes().split(b"\0"):
                    stat = Path(entry.path, "stat").read_text()
                    if stat[stat.rindex(")") + 2] != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found
