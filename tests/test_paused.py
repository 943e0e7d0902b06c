"""`paused = true`: no scheduled runs until a commit unpauses the DAG; manual runs still work."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from gitflowd.dag import Dag
from gitflowd.daemon import Daemon
from gitflowd.errors import DagFileError
from gitflowd.loader import load_dag
from gitflowd.site import Site
from tests.conftest import GitRepo
from tests.test_daemon import in_process, logical_dates, settle, toml  # noqa: F401

UTC = timezone.utc


def _dags(paused: bool) -> dict[str, str]:
    flag = f"paused = {str(paused).lower()}"
    return {"dags/every.toml": toml("true", schedule="@daily", extra=f"start_date = 2026-01-01\ncatchup = true\n{flag}"),
            "dags/latest.toml": toml("true", schedule="@daily", extra=f"start_date = 2026-01-01\ncatchup = false\n{flag}")}


def test_a_paused_dag_gets_no_scheduled_runs_and_catches_up_when_a_commit_unpauses_it(
        make_repo: Callable[..., GitRepo], in_process: Callable[..., Daemon]) -> None:
    repo = make_repo(_dags(paused=True))
    daemon = in_process(repo)
    paused_at = datetime(2026, 1, 3, 6, tzinfo=UTC)
    settle(daemon, paused_at)
    assert logical_dates(daemon, "every") == [] and logical_dates(daemon, "latest") == []
    assert daemon.next_due(paused_at) is None  # nothing to wake up for
    Site(daemon.state.root, daemon.options.site, clock=lambda: paused_at).render_all()
    index = daemon.options.site / "index.html"
    assert index.read_text().count('data-paused="true"') == 2
    status = json.loads((daemon.options.site / "status.json").read_text())
    assert [(d["id"], d["paused"], d["next_run"]) for d in status["dags"]] == [("every", True, None), ("latest", True, None)]
    repo.commit(_dags(paused=False), message="unpause")
    now = datetime(2026, 1, 5, 6, tzinfo=UTC)
    daemon.reload(now)
    for _ in range(6):  # max_active_runs = 1: one tick per pass
        settle(daemon, now)
    assert logical_dates(daemon, "every") == ["01-01 00:00", "01-02 00:00", "01-03 00:00", "01-04 00:00", "01-05 00:00"]
    assert logical_dates(daemon, "latest") == ["01-05 00:00"]


def test_list_shows_paused_and_a_paused_dag_still_runs_by_hand(make_repo: Callable[..., GitRepo], cli) -> None:
    repo = make_repo(_dags(paused=True))
    done = cli("list", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [(r[0], r[3]) for r in rows] == [("every", "paused"), ("latest", "paused")]
    listed = json.loads(cli("list", "--json", cwd=repo.path).stdout)
    assert [(d["id"], d["paused"], d["next_run"]) for d in listed["dags"]] == [("every", True, None), ("latest", True, None)]
    done = cli("run", "every", "--no-render", cwd=repo.path)
    assert done.returncode == 0, done.stderr


def test_show_says_paused_instead_of_a_next_run(make_repo: Callable[..., GitRepo], cli) -> None:
    repo = make_repo(_dags(paused=True))
    done = cli("show", "every", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    assert "schedule: @daily (UTC)   next run: paused   start: 2026-01-01 00:00 UTC" in done.stdout, done.stdout


def test_paused_must_be_a_boolean() -> None:
    with pytest.raises(DagFileError) as info:
        load_dag('[dag]\npaused = 1\n\n[tasks.a]\ncmd = "true"\n', "dags/p.toml")
    assert [str(p) for p in info.value.problems] == ["dags/p.toml:2: [dag] paused must be true or false, got 1"]
    dag = load_dag('[dag]\npaused = true\n\n[tasks.a]\ncmd = "true"\n', "dags/p.toml")
    assert dag.paused and Dag.from_dict(dag.to_dict()).paused
    assert "paused" not in load_dag('[tasks.a]\ncmd = "true"\n', "dags/p.toml").to_dict()  # older snapshots unchanged
