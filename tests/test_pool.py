"""RunPool: per-DAG max_active_runs, no duplicate runs, stop and interrupt, failures reported; Limiter."""

from __future__ import annotations

import threading

from gitflowd.pool import Control, Job, Limiter, RunPool

WAIT = 60.0


class Gatekeeper:
    """An `execute` that blocks each job until released, and records what it saw."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []
        self.controls: dict[str, Control] = {}

    def __call__(self, job: Job, control: Control) -> str:
        self.started.append(job.run_id)
        self.controls[job.run_id] = control
        if job.run_id == "boom":
            raise RuntimeError("disk on fire")
        woken = threading.Event()
        control.wakeups.append(woken.set)
        while not (self.release.is_set() or control.interrupting.is_set()):
            woken.wait(0.05)
        return "interrupted" if control.interrupting.is_set() else "success"


def drain(pool: RunPool, done: threading.Event) -> list:
    finished = []
    while not pool.idle:
        finished += pool.collect()
        pool.pump()
        if not pool.idle:
            assert done.wait(WAIT)
            done.clear()
    return finished


def test_max_active_runs_per_dag_and_oldest_first() -> None:
    gate, done = Gatekeeper(), threading.Event()
    pool = RunPool(gate, lambda dag: {"a": 2, "b": 1}[dag], done.set)
    for run in ("a1", "a2", "a3", "b1", "b2"):
        assert pool.add(Job(run[0], run))
    assert not pool.add(Job("a", "a1"))  # already queued
    assert [j.run_id for j in pool.pump()] == ["a1", "a2", "b1"]
    assert pool.active("a") == 3 and pool.has("b", "b2")
    gate.release.set()
    finished = drain(pool, done)
    assert sorted(f.job.run_id for f in finished) == ["a1", "a2", "a3", "b1", "b2"]
    assert all(f.status == "success" for f in finished)
    assert gate.started.index("a3") > gate.started.index("a1")


def test_stop_drops_the_queue_and_interrupt_reaches_running_jobs() -> None:
    gate, done = Gatekeeper(), threading.Event()
    pool = RunPool(gate, lambda _dag: 1, done.set)
    pool.add(Job("a", "first"))
    pool.add(Job("a", "second"))
    pool.pump()
    assert [j.run_id for j in pool.stop()] == ["second"]
    assert not pool.add(Job("a", "third")) and pool.pump() == []
    assert gate.controls["first"].stopping.is_set()
    pool.interrupt()
    (finished,) = drain(pool, done)
    assert finished.status == "interrupted"


def test_a_failing_job_is_reported_not_raised() -> None:
    gate, done = Gatekeeper(), threading.Event()
    pool = RunPool(gate, lambda _dag: 1, done.set)
    pool.add(Job("a", "boom"))
    pool.pump()
    (finished,) = drain(pool, done)
    assert finished.status == "error" and finished.error == "RuntimeError: disk on fire"


def test_limiter_wakes_waiters_when_a_slot_frees() -> None:
    limiter = Limiter(1)
    woken: list[str] = []
    assert limiter.try_acquire(lambda: woken.append("first"))
    assert not limiter.try_acquire(lambda: woken.append("second"))
    limiter.release()
    assert woken == ["second"] and limiter.used == 0
    limiter.release()  # never below zero
    assert limiter.used == 0
