"""SiteListener under a stream of events whose renders are slow: renders never queue up."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from gitflowd import journal
from gitflowd.site import Site
from gitflowd.site_listener import SiteListener
from gitflowd.state import StateDir
from runfactory import T0, make_dag, write_run

TASKS = 300  # a render writes a page per attempt: slow enough for events to arrive during it


def big_run(state):
    dag = make_dag("big", {f"t{i}": [] for i in range(TASKS)})
    write_run(state, dag, "manual__20260102T000000Z", T0 + timedelta(days=1), {t: ["success"] for t in dag.tasks}, finish=None)
    return StateDir(state).load_run("big", "manual__20260102T000000Z")


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_events_during_a_slow_render_do_not_pile_up_threads(tmp_path):
    run = big_run(tmp_path / "state")
    listener = SiteListener(Site(tmp_path / "state", tmp_path / "site"), interval=0.05)
    baseline = threading.active_count()
    most = baseline
    record = {"event": journal.TASK_FINISHED, "task": "t0"}
    for _ in range(150):
        listener.on_record(record, run)
        most = max(most, threading.active_count())
        time.sleep(0.01)
    listener.close()
    assert most <= baseline + 2  # one timer at a time (and the one rendering)


def test_events_that_arrive_during_a_render_are_rendered_without_further_events(tmp_path):
    run = big_run(tmp_path / "state")
    listener = SiteListener(Site(tmp_path / "state", tmp_path / "site"), interval=0.05)
    page = tmp_path / "site" / "dags" / "big" / "runs" / run.run_id / "index.html"
    listener.on_record({"event": journal.TASK_STARTED, "task": "t0"}, run)
    time.sleep(0.1)  # the first render is under way
    listener.on_record({"event": journal.TASK_FINISHED, "task": "t0"}, run)
    wait_for(page.exists)
    first = page.stat().st_mtime_ns
    wait_for(lambda: page.stat().st_mtime_ns != first)  # the second event got its own render
    listener.close()
