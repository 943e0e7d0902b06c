"""SiteListener under a stream of events whose renders are slow: renders never queue up."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import timedelta

from gitflowd import journal
from gitflowd.site import Site
from gitflowd.site_listener import SiteListener
from gitflowd.statedir import StateDir
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


def test_a_site_that_cannot_be_written_is_one_warning_until_it_changes(tmp_path, caplog):
    """A SiteError is the user's condition: one line, no traceback, not repeated at every render."""
    dag = make_dag("small", {"a": []})
    write_run(tmp_path / "state", dag, "manual__20260102T000000Z", T0, {"a": ["success"]})
    run = StateDir(tmp_path / "state").load_run("small", "manual__20260102T000000Z")
    site = tmp_path / "site"
    site.touch()
    listener = SiteListener(Site(tmp_path / "state", site))
    finished = {"event": journal.RUN_FINISHED, "state": "success"}

    def complaints():
        return [r for r in caplog.records if r.name == "gitflowd.site_listener"]

    for _ in range(3):
        listener.on_record(finished, run)
    (warning,) = complaints()
    assert warning.levelname == "WARNING" and warning.exc_info is None
    assert "cannot write the site" in warning.getMessage() and "Not a directory" in warning.getMessage()
    site.unlink()
    listener.on_record(finished, run)  # fixed: renders, says nothing
    assert (site / "index.html").is_file() and len(complaints()) == 1
    shutil.rmtree(site)
    site.touch()
    listener.on_record(finished, run)  # broken again after working: said again
    assert len(complaints()) == 2
