"""run / resume / clear / status / logs through the real CLI on real Git repositories."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gitflowd.executors.local import find_run_processes, kill_process_groups
from tests.conftest import GIT_ENV, GitRepo, hang_up_terminal
from tests.test_daemon import daemons  # noqa: F401 - a fixture

DAG = """
[dag]
description = "cli test"
params = {{ region = "seoul" }}
max_active_tasks = 4

[tasks.ok]
cmd = "echo ok {{{{ params.region }}}} >> {out}"

[tasks.flaky]
cmd = "echo flaky >> {out}; {flaky}"
deps = ["ok"]

[tasks.after]
cmd = "echo after >> {out}"
deps = ["flaky"]

[tasks.side]
argv = ["sh", "-c", "echo side >> {out}"]
"""


def _dag(out: Path, flaky: str = "exit 3") -> str:
    return DAG.format(out=out, flaky=flaky)


def _status(cli, repo: GitRepo, *args: str) -> list[dict]:
    done = cli("status", *args, "--json", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _journal(repo: GitRepo, run_id: str, dag: str = "pipe") -> Path:
    return repo.path / ".gitflowd" / "state" / "runs" / dag / f"{run_id}.jsonl"


def _one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gitflowd: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def setup(make_repo, tmp_path: Path):
    out = tmp_path / "out.txt"
    repo = make_repo({"dags/pipe.toml": _dag(out)})
    return repo, out


def test_run_fail_fix_forward_resume_and_status(setup, cli) -> None:
    repo, out = setup
    first_commit = repo.head()
    done = cli("run", "pipe", cwd=repo.path)
    assert done.returncode == 1, done.stderr
    run_id = done.stdout.splitlines()[0]
    assert run_id.startswith("manual__") and run_id.endswith("Z")
    assert "flaky: failed (attempt 1" in done.stdout and "after: upstream_failed" in done.stdout
    (status,) = _status(cli, repo, "pipe", run_id)
    assert status["state"] == "failed" and status["commit"] == first_commit and status["kind"] == "manual"
    assert status["tasks"]["flaky"] == {**status["tasks"]["flaky"], "state": "failed", "attempts": 1, "exit_code": 3}
    assert set(status) == {"dag", "run_id", "kind", "state", "logical_date", "commit", "started", "ended", "last_started", "cleared", "tasks"}
    assert set(status["tasks"]["ok"]) == {"state", "attempts", "exit_code", "started", "ended"}

    fixed = repo.commit({"dags/pipe.toml": _dag(out, flaky="true")}, message="fix flaky")
    done = cli("resume", "pipe", run_id, "--rev", "HEAD", cwd=repo.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[:2] == [run_id, f"resumed at {fixed[:8]}: re-running 2 task(s): flaky, after"]
    assert sorted(out.read_text().split("\n")[:-1]) == sorted(["ok seoul", "side", "flaky", "flaky", "after"])
    (status,) = _status(cli, repo, "pipe", run_id)
    assert status["state"] == "success" and status["commit"] == fixed
    assert status["tasks"]["flaky"]["attempts"] == 2 and status["tasks"]["ok"]["attempts"] == 1

    logs = cli("logs", "pipe", run_id, "flaky", "--attempt", "1", cwd=repo.path)
    assert logs.returncode == 0 and logs.stdout == ""
    text = cli("status", "pipe", run_id, cwd=repo.path)
    assert "flaky" in text.stdout and "success" in text.stdout and f"commit {fixed[:8]} fix flaky" in text.stdout
    # The fix forward reached the registry too: the DAG page shows the fixed source (it showed
    # the broken one until the next `run`).
    dag_page = (repo.path / ".gitflowd" / "site" / "dags" / "pipe" / "index.html").read_text()
    assert f"at <code>{fixed[:8]}</code>" in dag_page and f"at <code>{first_commit[:8]}</code>" not in dag_page
    run_page = (repo.path / ".gitflowd" / "site" / "dags" / "pipe" / "runs" / run_id / "index.html").read_text()
    assert "fix flaky" in run_page  # the subject of the commit the run moved to, not none


def test_clear_then_resume_runs_chosen_tasks_again(setup, cli) -> None:
    repo, out = setup
    repo.commit({"dags/pipe.toml": _dag(out, flaky="true")})
    run_id = cli("run", "pipe", "--param", "region=busan", cwd=repo.path).stdout.splitlines()[0]
    out.write_text("")
    done = cli("clear", "pipe", run_id, "--task", "flaky", "--downstream", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    assert "cleared 2 task(s)" in done.stdout and "flaky, after" in done.stdout
    (status,) = _status(cli, repo, "pipe", run_id)
    assert status["state"] == "queued" and status["tasks"]["flaky"]["state"] == "pending"
    assert cli("resume", "pipe", run_id, cwd=repo.path).returncode == 0
    assert out.read_text().split("\n")[:-1] == ["flaky", "after"]
    nothing = cli("resume", "pipe", run_id, cwd=repo.path)
    _one_line_error(nothing, "nothing to resume", run_id)


def test_logs_and_status_of_all_runs(setup, cli) -> None:
    repo, _ = setup
    first = cli("run", "pipe", "--date", "2026-01-02", cwd=repo.path).stdout.splitlines()[0]
    second = cli("run", "pipe", "--date", "2026-01-02", cwd=repo.path).stdout.splitlines()[0]
    assert first == "manual__20260102T000000Z" and second == "manual__20260102T000000Z-2"
    runs = _status(cli, repo)
    assert [r["run_id"] for r in runs] == [second, first]
    logs = cli("logs", "pipe", first, "flaky", cwd=repo.path)  # its output went to a file
    assert logs.returncode == 0 and logs.stdout == ""
    assert logs.stderr == "gitflowd: attempt 1 of task 'flaky' printed nothing\n"
    table = cli("status", cwd=repo.path)
    assert first in table.stdout and "failed" in table.stdout
    # options between the positionals, as a user adds one to a command line already typed
    mixed = cli("status", "pipe", "--repo", str(repo.path), first, "--json", cwd=repo.path.parent)
    assert mixed.returncode == 0 and [r["run_id"] for r in json.loads(mixed.stdout)] == [first], mixed.stderr
    mixed = cli("logs", "pipe", "--repo", str(repo.path), first, "--attempt", "1", "flaky", cwd=repo.path.parent)
    assert mixed.returncode == 0 and mixed.stderr == "gitflowd: attempt 1 of task 'flaky' printed nothing\n", mixed.stderr


def test_status_reports_a_corrupt_journal_once_and_lists_the_other_runs(setup, cli) -> None:
    repo, _ = setup
    bad = cli("run", "pipe", "--date", "2026-01-02", cwd=repo.path).stdout.splitlines()[0]
    good = cli("run", "pipe", "--date", "2026-01-03", cwd=repo.path).stdout.splitlines()[0]
    journal = _journal(repo, bad)
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) > 3 and b'"ts":"20' in lines[1]
    journal.write_bytes(lines[0] + lines[1].replace(b'"ts":"20', b'"ts":"21', 1) + b"".join(lines[2:]))  # crc no longer matches
    before = journal.read_bytes()
    for args in [(), ("pipe",), ("--json",)]:
        done = cli("status", *args, cwd=repo.path)
        assert done.returncode == 1, args
        expected = f"gitflowd: error: {journal}:2: corrupt journal record"
        assert done.stderr.startswith(expected) and done.stderr.count("\n") == 1, done.stderr
        assert (done.stdout + done.stderr).count(f"{journal}:2") == 1, done.stdout + done.stderr
        assert good in done.stdout and bad not in done.stdout
    _one_line_error(cli("status", "pipe", bad, cwd=repo.path), f"{journal}:2: corrupt journal record")
    assert journal.read_bytes() == before  # reading reports, never repairs


def test_status_says_when_limit_leaves_runs_out(cli, tmp_path: Path) -> None:
    from datetime import timedelta

    from tests.runfactory import T0, make_dag, write_run
    dag = make_dag("d", {"a": []})
    for day in range(3):
        write_run(tmp_path / "state", dag, f"scheduled__2026010{day + 1}T000000Z", T0 + timedelta(days=day), {"a": ["success"]})
    done = cli("status", "--state", str(tmp_path / "state"), "--limit", "2", cwd=tmp_path)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 3, done.stdout  # header + 2 rows
    assert done.stderr == "gitflowd: 2 of 3 runs shown (newest first); --limit N shows more, --json all\n", done.stderr
    assert cli("status", "--state", str(tmp_path / "state"), cwd=tmp_path).stderr == ""


def test_status_refuses_an_empty_dag_or_run_id_given_on_purpose(cli, tmp_path: Path) -> None:
    """`status d ''` (say `status d "$RUN"` with RUN unset) listed every run of d as if no
    run id had been given; `status ''` every run of every DAG."""
    from tests.runfactory import T0, make_dag, write_run
    state = tmp_path / "state"
    write_run(state, make_dag("d", {"a": []}), "scheduled__20260101T000000Z", T0, {"a": ["success"]})
    where = ("--state", str(state))
    for args, fragment in ((("d", ""), "empty RUN_ID '' for DAG 'd': give a run id (`gitflowd status d` lists them)"),
                           (("",), "empty DAG id '': give a DAG id"), (("", "x"), "empty DAG id ''")):
        for json_flag in ((), ("--json",)):
            done = cli("status", *args, *json_flag, *where, cwd=tmp_path)
            _one_line_error(done, fragment)
            assert done.returncode == 2 and done.stdout == "", done.stdout
    assert cli("status", "d", *where, cwd=tmp_path).returncode == 0  # left out: the runs of d


def test_status_shows_durations_over_a_minute_in_minutes(cli, tmp_path: Path) -> None:
    """A run of 134.3 s read '134.3s' beside '2m16s' for one of 136.0 s: fractions only under a minute."""
    from datetime import timedelta

    from gitflowd.journal import RUN_FINISHED, JournalWriter
    from tests.runfactory import T0, make_dag, write_run
    state = tmp_path / "state"
    path = write_run(state, make_dag("d", {"a": []}), "scheduled__20260101T000000Z", T0, {"a": ["success"]}, finish=None)
    with JournalWriter(path, clock=lambda: T0 + timedelta(hours=1, seconds=134.3)) as writer:
        writer.append({"event": RUN_FINISHED, "state": "success"})
    done = cli("status", "d", "--state", str(state), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[5] == "2m14s", done.stdout


def test_status_says_why_a_task_could_not_start(make_repo, cli) -> None:
    """A task whose program is missing showed 'failed', exit '-' and no note: only its log said why."""
    repo = make_repo({"dags/np.toml": '[tasks.a]\nargv = ["no-such-program-here"]\n[tasks.b]\ncmd = "exit 3"\n'})
    run_id = cli("run", "np", "--no-render", cwd=repo.path).stdout.splitlines()[0]
    rows = {line.split()[0]: line for line in cli("status", "np", run_id, cwd=repo.path).stdout.splitlines()[5:]}
    cells = rows["a"].split(None, 5)
    assert cells[1:4] == ["failed", "1", "-"] and cells[5] == ("could not start: [Errno 2] No such file or directory: "
                                                                  "'no-such-program-here' (not found on the task's PATH)")
    assert rows["b"].split()[1:4] == ["failed", "1", "3"] and len(rows["b"].split()) == 5  # a failure that ran: no note


def test_a_task_killed_by_a_signal_or_a_timeout_says_so_in_progress_and_log(make_repo, cli) -> None:
    """`kill -9` (an OOM kill) showed as 'exit code -9', and a timed-out task's log just stopped."""
    repo = make_repo({"dags/sig.toml": '[tasks.k]\ncmd = "echo before; kill -9 $$"\n'
                                       '[tasks.t]\ncmd = "echo waiting; exec sleep 60"\ntimeout = "0.5s"\n'})
    done = cli("run", "sig", "--no-render", cwd=repo.path)
    run_id = done.stdout.splitlines()[0]
    assert done.returncode == 1 and "k: failed (attempt 1, " in done.stdout
    assert "killed by SIGKILL)" in done.stdout and "exit code -9" not in done.stdout
    assert "t: timeout (attempt 1, " in done.stdout and "killed by SIGTERM)" in done.stdout
    logs = cli("logs", "sig", run_id, "k", cwd=repo.path)
    assert logs.stdout == "before\ngitflowd: the task's process was killed by SIGKILL\n", logs.stdout
    logs = cli("logs", "sig", run_id, "t", cwd=repo.path)
    assert logs.stdout == "waiting\ngitflowd: timeout: the attempt ran longer than 0.5s; its process group got SIGTERM\n"
    # status and the site name the signal too, not '-9' and '-15'
    rows = {line.split()[0]: line.split() for line in cli("status", "sig", run_id, cwd=repo.path).stdout.splitlines()[5:]}
    assert rows["k"][3] == "SIGKILL" and rows["t"][3] == "SIGTERM", rows
    assert cli("render", cwd=repo.path).returncode == 0
    page = (repo.path / ".gitflowd" / "site" / "dags" / "sig" / "runs" / run_id / "index.html").read_text()
    assert '<td class="num">SIGKILL</td>' in page and '<td class="num">SIGTERM</td>' in page and ">-9<" not in page


def test_a_run_whose_workspace_cannot_be_made_is_not_recorded(make_repo, cli) -> None:
    """It was recorded first and then failed, leaving a queued run nobody would run."""
    repo = make_repo({"dags/q.toml": '[tasks.a]\ncmd = "true"\n'})
    state = repo.path / ".gitflowd" / "state"
    state.mkdir(parents=True)
    (state / "workspaces").write_text("in the way")
    _one_line_error(cli("run", "q", "--no-render", cwd=repo.path), "cannot create workspace")
    assert not list(state.glob("runs/q/*.jsonl"))
    (state / "workspaces").unlink()
    assert cli("run", "q", "--no-render", cwd=repo.path).returncode == 0


def test_status_says_a_queued_run_nobody_runs_has_no_runner(make_repo, cli) -> None:
    """A run recorded but never started (its runner was killed before its first task: a
    foreground backfill's later runs) read 'queued', as if something would run it."""
    from datetime import UTC, datetime

    from gitflowd.dag import Dag, Task
    from gitflowd.runs import create_run, plan_run
    from gitflowd.statedir import StateDir

    repo = make_repo({"dags/q.toml": '[tasks.a]\ncmd = "true"\n'})
    state = StateDir(repo.path / ".gitflowd" / "state")
    run = plan_run(state, Dag("q", {"a": Task("a", cmd="true")}), kind="manual",
                   logical_date=datetime(2026, 1, 1, tzinfo=UTC), commit=repo.head())
    create_run(state, run).close()  # recorded; its runner never got further
    run_id = run.run_id
    listed = cli("status", "q", cwd=repo.path).stdout
    assert f"{run_id}  queued (runner gone: resume it)" in listed, listed
    assert "run {} of q: queued (runner gone: resume it)".format(run_id) in cli("status", "q", run_id, cwd=repo.path).stdout
    assert _status(cli, repo, "q")[0]["state"] == "queued"  # --json keeps the journal's state
    assert cli("resume", "q", run_id, "--no-render", cwd=repo.path).returncode == 0


def test_status_shows_no_exit_or_duration_of_an_earlier_attempt(make_repo, cli, tmp_path: Path) -> None:
    """A task pending after `clear` read 'exit 1, 0.1s' (and one upstream_failed after a
    resume kept the exit code of the attempt it had before): only the attempt a task's state
    came from is shown."""
    flag = tmp_path / "up-fails"
    repo = make_repo({"dags/re.toml": f'[tasks.up]\ncmd = "test ! -e {flag}"\n[tasks.down]\ncmd = "exit 1"\ndeps = ["up"]\n'})
    run_id = cli("run", "re", "--no-render", cwd=repo.path).stdout.splitlines()[0]

    def rows() -> tuple[dict[str, list[str]], dict]:
        text = cli("status", "re", run_id, cwd=repo.path).stdout
        (data,) = _status(cli, repo, "re", run_id)
        return {line.split()[0]: line.split(None, 5) for line in text.splitlines()[5:]}, data["tasks"]

    text, data = rows()
    assert text["down"][1:4] == ["failed", "1", "1"] and text["down"][4] != "-"
    assert data["down"]["exit_code"] == 1 and data["down"]["ended"]
    assert cli("clear", "re", run_id, "--task", "down", cwd=repo.path).returncode == 0
    text, data = rows()
    assert text["down"] == ["down", "pending", "1", "-", "-"], text
    assert data["down"] == {"state": "pending", "attempts": 1, "exit_code": None, "started": None, "ended": None}
    assert text["up"][1:4] == ["success", "1", "0"]  # not cleared: still its attempt's

    flag.touch()
    assert cli("clear", "re", run_id, "--task", "up", cwd=repo.path).returncode == 0
    assert cli("resume", "re", run_id, "--no-render", cwd=repo.path).returncode == 1  # up fails, down is judged again
    text, data = rows()
    assert text["down"] == ["down", "upstream_failed", "1", "-", "-", "trigger rule all_success: upstream up=failed"], text
    assert data["down"] == {"state": "upstream_failed", "attempts": 1, "exit_code": None, "started": None, "ended": None}
    assert text["up"][1:4] == ["failed", "2", "1"] and data["up"]["exit_code"] == 1


def test_logs_of_a_task_its_trigger_rule_skipped_says_why_it_has_none(make_repo, cli, tmp_path: Path) -> None:
    """It said "has not started (state skipped)", as if it might still start; the journal
    records why (task_skipped's reason). `-f` says it at once instead of waiting for the run."""
    go = tmp_path / "go"
    repo = make_repo({"dags/sk.toml": '[tasks.ok]\ncmd = "true"\n[tasks.on_failure]\ncmd = "true"\ndeps = ["ok"]\n'
                                      'trigger_rule = "one_failed"\n'
                                      f'[tasks.slow]\ncmd = "while [ ! -e {go} ]; do sleep 0.05; done"\n'})
    proc = _start_run(repo, "sk", "--no-render")
    try:
        run_id = proc.stdout.readline().strip()
        expected = (f"task 'on_failure' was skipped in run {run_id!r} (trigger rule one_failed: upstream ok=success): "
                    "it has no log")
        deadline = time.monotonic() + 60
        while "was skipped" not in (done := cli("logs", "sk", run_id, "on_failure", cwd=repo.path)).stderr:
            assert time.monotonic() < deadline, done.stderr
            time.sleep(0.1)
        _one_line_error(done, expected)
        _one_line_error(cli("logs", "-f", "sk", run_id, "on_failure", cwd=repo.path), expected)  # the run still runs
        assert proc.poll() is None
    finally:
        go.touch()
        proc.wait(60)
    assert proc.returncode == 0


def test_a_dag_missing_at_the_rev_asked_for_says_so(make_repo, cli) -> None:
    """After deleting a DAG's file, `resume d RUN --rev HEAD` said only "unknown DAG 'd'" while
    `status d` listed the run: the message names the revision, as the daemon's does."""
    repo = make_repo({"dags/d.toml": '[tasks.a]\ncmd = "exit 1"\n', "dags/other.toml": '[tasks.a]\ncmd = "true"\n'})
    run_id = cli("run", "d", "--no-render", cwd=repo.path).stdout.splitlines()[0]
    repo.commit(remove=("dags/d.toml",))
    for args in (("resume", "d", run_id, "--rev", "HEAD"), ("run", "d", "--rev", "HEAD"), ("show", "d", "--rev", "HEAD")):
        _one_line_error(cli(*args, cwd=repo.path), "unknown DAG 'd' at HEAD (DAGs: other)")
    _one_line_error(cli("run", "d", cwd=repo.path), "unknown DAG 'd' (DAGs: other)")


def test_bad_inputs_are_one_line_errors_and_change_nothing(setup, cli, tmp_path: Path) -> None:
    repo, _ = setup
    run_id = cli("run", "pipe", cwd=repo.path).stdout.splitlines()[0]
    journal = _journal(repo, run_id)
    before = journal.read_bytes()
    _one_line_error(cli("run", "nope", cwd=repo.path), "unknown DAG 'nope'")
    _one_line_error(cli("run", "pipe", "--param", "regoin=x", cwd=repo.path), "unknown --param 'regoin' (did you mean 'region'?)")
    _one_line_error(cli("run", "pipe", "--param", "novalue", cwd=repo.path), "bad --param 'novalue'")
    _one_line_error(cli("run", "pipe", "--date", "yesterday-ish", cwd=repo.path), "bad --date 'yesterday-ish'")
    _one_line_error(cli("run", "pipe", "--date", "0001-01-01", cwd=repo.path), "bad --date '0001-01-01': out of range")
    _one_line_error(cli("run", "pipe", "--rev", "no-such-rev", cwd=repo.path), "no-such-rev")
    _one_line_error(cli("resume", "pipe", "manual__nope", cwd=repo.path), "unknown run 'manual__nope'")
    _one_line_error(cli("resume", "nope", run_id, cwd=repo.path), "unknown DAG 'nope': no runs of it in")
    limit = cli("status", "pipe", "--limit", "0", cwd=repo.path)  # argparse: usage, then the error
    assert limit.returncode == 2 and limit.stderr.strip().endswith("argument --limit: must be at least 1: 0")
    (repo.path / "not-a-dir").write_text("")
    _one_line_error(cli("--state", str(repo.path / "not-a-dir"), "status", cwd=repo.path), "exists and is not a directory")
    _one_line_error(cli("clear", "pipe", run_id, "--task", "flakey", cwd=repo.path), "unknown task 'flakey' in DAG 'pipe' (did you mean 'flaky'?)")
    _one_line_error(cli("status", "pipe", "manual__nope", cwd=repo.path), "unknown run 'manual__nope'")
    _one_line_error(cli("status", "pip", cwd=repo.path), "unknown DAG 'pip'")
    _one_line_error(cli("logs", "pipe", run_id, "after", cwd=repo.path),
                    f"task 'after' was marked upstream_failed in run {run_id!r} (trigger rule all_success: upstream flaky=failed): it has no log")
    _one_line_error(cli("logs", "pipe", run_id, "flaky", "--attempt", "9", cwd=repo.path), "no attempt 9")
    _one_line_error(cli("logs", "pipe", run_id, "nope", cwd=repo.path), "unknown task 'nope'")
    assert journal.read_bytes() == before
    assert [p.name for p in journal.parent.iterdir()] == [journal.name]


def test_no_wait_without_a_daemon_says_that_the_work_runs_here(make_repo, cli) -> None:
    """`--no-wait` applies to work handed to a daemon; with none, a script that expected to
    return at once blocked for the whole run without a word."""
    repo = make_repo({"dags/d.toml": '[tasks.a]\ncmd = "true"\n'})
    done = cli("run", "d", "--no-wait", "--no-render", cwd=repo.path)
    assert done.returncode == 0 and done.stderr == (
        "gitflowd: note: no daemon runs on this state directory, so --no-wait does not apply: "
        "the work runs here, in the foreground\n"), done.stderr
    assert "run manual__" in done.stdout and ": success" in done.stdout
    assert cli("run", "d", "--no-render", cwd=repo.path).stderr == ""


def test_run_says_when_the_dag_file_has_uncommitted_changes(make_repo, cli) -> None:
    """Edit, run, see the old command run: runs use committed files only, and said nothing."""
    repo = make_repo({"dags/e.toml": '[tasks.a]\ncmd = "echo old"\n'})
    first = repo.head()
    repo.commit({"dags/e.toml": '[tasks.a]\ncmd = "echo committed"\n'})
    clean = cli("run", "e", "--no-render", cwd=repo.path)
    assert clean.returncode == 0 and clean.stderr == ""
    repo.write({"dags/e.toml": '[tasks.a]\ncmd = "echo edited"\n'})
    edited = cli("run", "e", "--no-render", cwd=repo.path)
    assert edited.returncode == 0 and edited.stderr == (
        f"gitflowd: note: dags/e.toml has changes that are not committed; this run uses its version at {repo.head()[:8]} "
        "(commit them to run them)\n")
    assert cli("logs", "e", edited.stdout.splitlines()[0], "a", cwd=repo.path).stdout == "committed\n"
    older = cli("run", "e", "--rev", first, "--no-render", cwd=repo.path)  # another commit: no note
    assert older.returncode == 0 and older.stderr == ""


def test_a_log_that_cannot_be_read_is_one_line(make_repo, cli) -> None:
    """A log file not ours to read (a service's state directory) or not a file: a traceback."""
    repo = make_repo({"dags/l.toml": '[tasks.a]\ncmd = "echo hi"\n'})
    run_id = cli("run", "l", "--no-render", cwd=repo.path).stdout.splitlines()[0]
    log = repo.path / ".gitflowd" / "state" / "logs" / "l" / run_id / "a.1.log"
    log.unlink()
    log.mkdir()
    for follow in ((), ("-f",)):
        _one_line_error(cli("logs", "l", run_id, "a", *follow, cwd=repo.path), f"cannot read log file {log}: Is a directory")


def test_resume_of_a_run_whose_commit_left_the_repository(make_repo, cli) -> None:
    """A force-push and gc took the run's commit: resume failed with 'unknown revision <sha>'
    even though the run's checkout was still there; without the checkout, it says what to do."""
    repo = make_repo({"dags/g.toml": '[tasks.a]\ncmd = "test -f $GITFLOWD_WORKSPACE/ok || { touch $GITFLOWD_WORKSPACE/ok; exit 1; }"\n'})
    first = cli("run", "g", "--no-render", cwd=repo.path)
    run_id = first.stdout.splitlines()[0]
    old = repo.head()
    for args in (["commit", "-q", "--amend", "-m", "rewritten"], ["reflog", "expire", "--expire=now", "--all"],
                 ["gc", "-q", "--prune=now"]):
        subprocess.run(["git", *args], cwd=repo.path, check=True, env={**os.environ, **GIT_ENV})
    assert subprocess.run(["git", "cat-file", "-e", old], cwd=repo.path).returncode != 0  # gone
    done = cli("resume", "g", run_id, "--no-render", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    (status,) = _status(cli, repo, "g", run_id)
    assert status["state"] == "success" and status["commit"] == old
    checkout = repo.path / ".gitflowd" / "state" / "checkouts" / old
    subprocess.run(["chmod", "-R", "u+w", str(checkout)], check=True)
    shutil.rmtree(checkout)
    cli("clear", "g", run_id, "--task", "a", cwd=repo.path)
    _one_line_error(cli("resume", "g", run_id, "--no-render", cwd=repo.path),
                    f"commit {old[:8]} of run '{run_id}' is no longer in", "--rev HEAD")


def test_a_run_dated_before_the_dags_start_date_is_refused(make_repo, cli) -> None:
    """`run --date` before start_date was accepted and run, though no run may be before it."""
    repo = make_repo({"dags/late.toml": '[dag]\ntimezone = "Asia/Seoul"\nstart_date = 2026-01-02\n[tasks.a]\ncmd = "true"\n'})
    done = cli("run", "late", "--date", "2026-01-01", cwd=repo.path)
    _one_line_error(done, "--date 2026-01-01 is before the start_date of DAG 'late' (2026-01-02T00:00:00+09:00): "
                          "a run's logical date must be on or after it")
    assert done.returncode == 2 and done.stdout == ""
    assert not (repo.path / ".gitflowd" / "state" / "runs" / "late").exists()
    ok = cli("run", "late", "--date", "2026-01-02", "--no-render", cwd=repo.path)
    assert ok.returncode == 0 and ok.stdout.startswith("manual__20260101T150000Z"), ok.stderr


def test_a_template_error_stops_the_run_before_anything_is_recorded(make_repo, cli) -> None:
    # a key inside a param: validate checks only the params' own keys (a missing one is a load error)
    repo = make_repo({"dags/tpl.toml": '[dag]\nparams = { conf = {} }\n[tasks.a]\ncmd = "true"\n\n[tasks.b]\ncmd = "echo {{ params.conf.nope }}"\n'})
    done = cli("run", "tpl", cwd=repo.path)
    _one_line_error(done, "dags/tpl.toml:6: task 'b': undefined template variable: 'dict object' has no attribute 'nope'")
    assert not (repo.path / ".gitflowd" / "state" / "runs").exists()


def test_a_nul_that_a_param_puts_in_a_command_fails_that_task_and_the_run_ends(make_repo, cli) -> None:
    repo = make_repo({"dags/nul.toml": '[dag]\nparams = { x = "a\\u0000b" }\n\n[tasks.a]\ncmd = "echo {{ params.x }}"\n\n'
                                       '[tasks.b]\ncmd = "echo after"\ndeps = ["a"]\ntrigger_rule = "all_done"\n'})
    done = cli("run", "nul", "--no-render", cwd=repo.path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [run] = _status(cli, repo, "nul")
    assert run["state"] == "failed" and run["tasks"]["a"]["state"] == "failed" and run["tasks"]["b"]["state"] == "success"
    assert "NUL character" in cli("logs", "nul", run["run_id"], "a", cwd=repo.path).stdout


def test_secrets_are_given_only_when_named_and_masked(make_repo, cli, tmp_path: Path) -> None:
    repo = make_repo({"dags/sec.toml": '[dag]\nsecrets = ["TOKEN"]\n\n[tasks.a]\ncmd = "echo token=$TOKEN other=$OTHER"\n'})
    secrets = tmp_path / "secrets.env"
    secrets.write_text("# test secrets\nTOKEN=tok-123456\nOTHER=not-for-this-dag\n")
    secrets.chmod(0o644)
    _one_line_error(cli("run", "sec", "--secrets-file", str(secrets), cwd=repo.path), "chmod 600")
    _one_line_error(cli("run", "sec", cwd=repo.path), "needs secrets TOKEN", "--secrets-file")
    secrets.chmod(0o600)
    done = cli("run", "sec", cwd=repo.path, env={"GITFLOWD_SECRETS_FILE": str(secrets)})
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.splitlines()[0]
    logs = cli("logs", "sec", run_id, "a", cwd=repo.path)
    assert logs.stdout == "token=*** other=\n"
    (secrets.parent / "short.env").write_text("OTHER=x\n")
    (secrets.parent / "short.env").chmod(0o600)
    _one_line_error(cli("run", "sec", "--secrets-file", str(secrets.parent / "short.env"), cwd=repo.path),
                    "missing from", "TOKEN")


def _start_run(repo: GitRepo, *args: str, buffered: bool = False) -> subprocess.Popen[str]:
    return _start_cli(repo, "run", *args, buffered=buffered)


def _start_cli(repo: GitRepo, *args: str, buffered: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, **GIT_ENV}
    for key in ("GITFLOWD_REPO", "GITFLOWD_STATE", "GITFLOWD_SITE", "GITFLOWD_SECRETS_FILE",
                *(["PYTHONUNBUFFERED"] if buffered else [])):
        env.pop(key, None)
    return subprocess.Popen([sys.executable, "-m", "gitflowd", *args], cwd=repo.path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_lines(proc: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    """The first `count` lines of the process's stdout; fails (never hangs) after `timeout`."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in proc.stdout], daemon=True).start()
    return [lines.get(timeout=timeout) for _ in range(count)]


def _wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signal_interrupts_the_run_and_resume_finishes_it(make_repo, cli, tmp_path: Path, sig, code) -> None:
    marker = tmp_path / "started"
    repo = make_repo({"dags/slow.toml": f'[tasks.wait]\ncmd = "touch {marker}; sleep 1000"\n\n'
                                        '[tasks.next]\ncmd = "true"\ndeps = ["wait"]\n'})
    proc = _start_run(repo, "slow")
    run_id = proc.stdout.readline().strip()
    _wait_for(marker.exists)
    busy = cli("resume", "slow", run_id, cwd=repo.path)  # the running run holds the state lock
    _one_line_error(busy, "daemon.lock is held by pid", str(proc.pid), "to run several at once, start `gitflowd daemon`")
    proc.send_signal(sig)
    assert proc.wait(60) == code
    assert "terminating 1 task(s) with SIGTERM (stop again to SIGKILL them now)" in proc.stderr.read()
    (status,) = _status(cli, repo, "slow", run_id)
    assert status["state"] == "interrupted" and status["tasks"]["wait"]["state"] == "interrupted"
    assert status["tasks"]["next"]["state"] == "pending"
    repo.commit({"dags/slow.toml": '[tasks.wait]\ncmd = "true"\n\n[tasks.next]\ncmd = "true"\ndeps = ["wait"]\n'})
    done = cli("resume", "slow", run_id, "--rev", "HEAD", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    (status,) = _status(cli, repo, "slow", run_id)
    assert status["state"] == "success" and status["tasks"]["wait"]["attempts"] == 2


def test_a_terminal_that_hangs_up_stops_the_run_cleanly(make_repo, cli, tmp_path: Path) -> None:
    """A closed terminal or a dropped ssh session: SIGHUP ended the runner at once, left the
    run 'running' and its task orphaned in its own session; writes to the dead terminal fail
    with EIO, which the progress line must take as a reader gone."""
    marker = tmp_path / "started"
    repo = make_repo({"dags/slow.toml": f'[tasks.wait]\ncmd = "touch {marker}; exec sleep 1000"\n'})
    assert hang_up_terminal(["run", "slow", "--no-render"], repo.path, marker.exists) == 129
    (status,) = _status(cli, repo, "slow")
    assert status["state"] == "interrupted" and status["tasks"]["wait"]["state"] == "interrupted"
    assert find_run_processes("slow", status["run_id"]) == {}  # nothing left running


def test_nohup_keeps_a_run_going_through_sighup(make_repo, cli, tmp_path: Path) -> None:
    """`nohup gitflowd run ...`: a SIGHUP ignored when the runner started stays ignored."""
    marker = tmp_path / "started"
    repo = make_repo({"dags/slow.toml": f'[tasks.wait]\ncmd = "touch {marker}; exec sleep 1000"\n'})
    env = {k: v for k, v in {**os.environ, **GIT_ENV}.items() if not k.startswith("GITFLOWD_")}
    proc = subprocess.Popen(["sh", "-c", 'trap "" HUP; exec "$0" -m gitflowd run slow --no-render', sys.executable],
                            cwd=repo.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker.exists)
        proc.send_signal(signal.SIGHUP)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(1)  # still running: only a lower bound, which a loaded machine cannot break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    (status,) = _status(cli, repo, "slow")
    assert status["state"] == "interrupted" and find_run_processes("slow", status["run_id"]) == {}


def test_progress_lines_reach_a_pipe_while_the_run_goes_on(make_repo, tmp_path: Path) -> None:
    # Lines are flushed once per batch of records, not per line: a batch must still not
    # wait for the run's end (here, a task that runs until it is stopped).
    repo = make_repo({"dags/slow.toml": '[tasks.quick]\ncmd = "true"\n\n'
                                        '[tasks.wait]\ncmd = "sleep 1000"\ndeps = ["quick"]\n'})
    proc = _start_run(repo, "slow", buffered=True)  # stdout a pipe, as under systemd or `| tee`
    try:
        lines = _read_lines(proc, 4, timeout=60)
        assert lines[1:] == ["quick: running (attempt 1)  [0/2 done, 1 running, 0 failed]",
                             "quick: success (attempt 1, 0.0s)  [1/2 done, 0 running, 0 failed]",
                             "wait: running (attempt 1)  [1/2 done, 1 running, 0 failed]"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def test_a_failing_journal_write_stops_the_run_with_one_line_and_kills_its_tasks(make_repo, tmp_path: Path) -> None:
    """A real write failure (EFBIG: RLIMIT_FSIZE on the runner) is fatal and never retried."""
    import resource

    marker = tmp_path / "marker"
    tasks = "".join(f'[tasks.t{i:02d}]\ncmd = "sleep 1000 & touch {marker}.$GITFLOWD_TASK; sleep 0.05"\n\n' for i in range(40))
    repo = make_repo({"dags/big.toml": "[dag]\nmax_active_tasks = 2\n\n" + tasks})
    env = {**os.environ, **GIT_ENV, "MARKER_RUN": "1"}
    done = subprocess.run([sys.executable, "-m", "gitflowd", "run", "big"], cwd=repo.path, env=env, capture_output=True,
                          text=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, 16_000)))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("gitflowd: error:")]
    assert len(errors) == 1 and "stopped:" in errors[0] and "journal write failed: File too large" in errors[0], done.stderr
    assert "gitflowd.engine" not in done.stderr  # no traceback from the engine (the site may log its own failures)
    run_id = done.stdout.splitlines()[0]
    journal_path = _journal(repo, run_id, "big")
    assert journal_path.stat().st_size <= 16_000
    from gitflowd.state import read_run
    run = read_run(journal_path)  # a valid prefix: readable, resumable
    assert run.state.value == "running" and 0 < sum(t.state.value == "success" for t in run.tasks.values()) < 40
    busy = subprocess.run(["pgrep", "-f", "sleep 1000"], capture_output=True, text=True)
    mine = [pid for pid in busy.stdout.split() if f"GITFLOWD_RUN_ID={run_id}".encode() in
            Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")] if busy.stdout else []
    assert mine == []


def test_an_unusable_state_directory_is_a_one_line_error(setup, cli, tmp_path: Path) -> None:
    repo, _ = setup
    state = tmp_path / "state"
    state.mkdir()
    (state / "runs").write_text("not a directory")
    done = cli("--state", str(state), "run", "pipe", cwd=repo.path)
    _one_line_error(done, "cannot write journal", "Not a directory")
    assert done.stdout == ""
    _one_line_error(cli("--state", "/dev/null/x", "run", "pipe", cwd=repo.path), "cannot open lock file")



def secrets_file(folder: Path, text: str = "TOKEN=s3cr3tvalue\n") -> Path:
    """A secrets file as gitflowd accepts it (mode 600)."""
    path = folder / "s"
    path.write_text(text)
    path.chmod(0o600)
    return path


def leaking_dag(printed: Path) -> str:
    """A DAG whose task prints its secret, touches `printed`, then runs until killed."""
    return f'[dag]\nsecrets = ["TOKEN"]\n\n[tasks.leak]\ncmd = "echo token=$TOKEN; touch {printed}; sleep 1000"\n'


def _task_pgids(journal_path: Path) -> list[int]:
    records = [json.loads(line) for line in journal_path.read_text().splitlines()]
    return [r["pgid"] for r in records if r.get("event") == "task_started" and r.get("pgid")]


def _kill_runner_mid_task(repo: GitRepo, dag: str, started: Path, *args: str) -> str:
    """Run `dag`, SIGKILL its runner once its task made `started` and its task_started is
    written (on a loaded machine the task can get there first: a runner killed then leaves an
    attempt nobody recorded); the run id. The task keeps running, an orphan."""
    proc = _start_run(repo, dag, *args)
    run_id = proc.stdout.readline().strip()
    try:
        _wait_for(lambda: started.exists() and _task_pgids(_journal(repo, run_id, dag)))
    finally:
        proc.kill()
        proc.wait(60)
    return run_id


def test_resume_after_the_runner_died_says_so_in_the_interrupted_attempts_log(make_repo, cli, tmp_path: Path) -> None:
    """`kill -9` of a runner (a crash, an OOM kill): its task's log just stopped mid-output."""
    marker = tmp_path / "started"
    repo = make_repo({"dags/k.toml": f'[tasks.a]\ncmd = "echo working; touch {marker}; exec sleep 1000"\n'})
    run_id = _kill_runner_mid_task(repo, "k", marker)
    repo.commit({"dags/k.toml": '[tasks.a]\ncmd = "echo fixed"\n'})
    done = cli("resume", "k", run_id, "--rev", "HEAD", "--no-render", cwd=repo.path)  # kills the orphan first
    assert done.returncode == 0, done.stderr
    assert cli("logs", "k", run_id, "a", "--attempt", "1", cwd=repo.path).stdout == (
        "working\ngitflowd: interrupted: the run's runner died while this attempt ran; what was left of it was ended "
        "when the run was resumed\n")
    assert find_run_processes("k", run_id) == {}


def test_render_never_publishes_the_unmasked_log_of_a_runner_killed_mid_task(make_repo, cli, tmp_path: Path) -> None:
    """The engine masks a log when its attempt ends; a runner killed by SIGKILL never does.
    `render` then masks with --secrets-file (or GITFLOWD_SECRETS_FILE), and without the
    secrets shows a note instead of the log."""
    printed = tmp_path / "printed"
    repo = make_repo({"dags/m.toml": leaking_dag(printed)})
    secrets = secrets_file(tmp_path)
    run_id = _kill_runner_mid_task(repo, "m", printed, "--secrets-file", str(secrets))
    kill_process_groups(find_run_processes("m", run_id), grace=0)  # the orphaned task, found as resume would
    # `logs` printed that attempt's log as it is on disk, the secret in clear; it needs the secrets now.
    _one_line_error(cli("logs", "m", run_id, "leak", cwd=repo.path),
                    "attempt 1 of task 'leak' has not ended and DAG 'm' has secrets", "--secrets-file")
    shown = cli("logs", "m", run_id, "leak", "--secrets-file", str(secrets), cwd=repo.path)
    assert shown.returncode == 0 and shown.stdout == "token=***\n"
    (tmp_path / "other").mkdir()
    other = secrets_file(tmp_path / "other", "OTHER=x\n")
    wrong = cli("logs", "m", run_id, "leak", "--secrets-file", str(other), cwd=repo.path)  # lacks TOKEN: no masking
    assert wrong.returncode == 1 and "s3cr3tvalue" not in wrong.stdout and "has no TOKEN" in wrong.stderr
    site = repo.path / ".gitflowd" / "site"
    page = site / "dags" / "m" / "runs" / run_id / "leak.1.html"
    log_file = repo.path / ".gitflowd" / "state" / "logs" / "m" / run_id / "leak.1.log"
    assert b"s3cr3tvalue" in log_file.read_bytes()  # the premise: never masked on disk

    def leaked() -> list[Path]:
        return [p for p in site.rglob("*") if p.is_file() and b"s3cr3tvalue" in p.read_bytes()]

    flag, variable = (("--secrets-file", str(secrets)), None), ((), {"GITFLOWD_SECRETS_FILE": str(secrets)})
    for args, env in [((), None), variable, ((), None), flag]:  # each render rewrites the page
        done = cli("render", *args, cwd=repo.path, env=env)
        assert done.returncode == 0, done.stderr
        assert leaked() == []
        text = page.read_text()
        if args or env:
            assert "token=***" in text and "Log not shown" not in text
        else:
            assert "Log not shown" in text and "token=***" not in text
    secrets.chmod(0o644)
    _one_line_error(cli("render", "--secrets-file", str(secrets), cwd=repo.path), "chmod 600")
    _one_line_error(cli("render", cwd=repo.path, env={"GITFLOWD_SECRETS_FILE": str(tmp_path / "absent")}),
                    "No such file")
    assert "token=***" in page.read_text()  # a refused render writes nothing


def test_a_site_path_that_cannot_be_written_is_one_warning_and_the_run_succeeds(make_repo, cli, tmp_path: Path) -> None:
    repo = make_repo({"dags/r.toml": '[tasks.a]\ncmd = "sleep 0.6"\n\n[tasks.b]\ncmd = "sleep 0.6"\ndeps = ["a"]\n\n'
                                     '[tasks.c]\ncmd = "true"\ndeps = ["b"]\n'})
    blocker = tmp_path / "f"
    blocker.touch()
    done = cli("--site", str(blocker), "run", "r", cwd=repo.path)  # several renders: while running, at the end
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert "WARNING" in line and f"cannot write the site at {blocker}" in line and "Not a directory" in line
    assert _status(cli, repo, "r")[0]["state"] == "success"


def test_no_render_leaves_the_site_alone_until_render(make_repo, cli) -> None:
    repo = make_repo({"dags/quick.toml": "[tasks.a]\ncmd = \"true\"\n"})
    site = repo.path / ".gitflowd" / "site"
    done = cli("run", "quick", "--no-render", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    assert not site.exists()
    done = cli("run", "quick", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.splitlines()[0]
    assert (site / "dags" / "quick" / "runs" / run_id / "index.html").is_file()


def test_a_reader_that_goes_away_does_not_disturb_the_run(make_repo, cli) -> None:
    """`gitflowd run X | head -1` keeps the run id and leaves: the run finishes, no traceback."""
    repo = make_repo({"dags/slow.toml": '[tasks.a]\ncmd = "sleep 0.3"\n[tasks.b]\ncmd = "sleep 0.3"\ndeps = ["a"]\n'})
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.Popen([sys.executable, "-m", "gitflowd", "run", "slow", "--no-render"], cwd=repo.path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    run_id = proc.stdout.readline().strip()
    proc.stdout.close()  # as `head -1` does: every later line meets a closed pipe
    assert proc.wait(timeout=60) == 0
    errors = proc.stderr.read()
    assert "Traceback" not in errors and "BrokenPipe" not in errors and errors == "", errors
    assert [(r["run_id"], r["state"]) for r in _status(cli, repo, "slow")] == [(run_id, "success")]


def test_a_tasks_duration_is_its_last_attempts_not_the_wait_for_its_retry(make_repo, cli) -> None:
    """As on the site's run page: the retry delay (or a resume days later) is not task time."""
    repo = make_repo({"dags/retry.toml": '[tasks.a]\ncmd = "[ -e $GITFLOWD_WORKSPACE/m ] || { touch $GITFLOWD_WORKSPACE/m; exit 1; }"\n'
                                         'retries = 1\nretry_delay = "2s"\n'})
    done = cli("run", "retry", "--no-render", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    text = cli("status", "retry", done.stdout.splitlines()[0], cwd=repo.path).stdout
    row = next(line.split() for line in text.splitlines() if line.startswith("a "))
    assert row[1:3] == ["success", "2"]
    assert float(row[4].removesuffix("s")) < 1.5, text  # first start to last end would be over 2 s


def _lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """Every line the process prints, as it prints it; None at the end."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _rest(lines: queue.Queue[str | None], timeout: float = 60) -> list[str]:
    rest = []
    while (line := lines.get(timeout=timeout)) is not None:
        rest.append(line)
    return rest


def _follow_dag(go: Path, secrets: bool = False) -> str:
    return (('[dag]\nsecrets = ["TOKEN"]\n\n' if secrets else "")
            + '[tasks.first]\ncmd = "sleep 0.3"\n\n'
            + f'[tasks.talk]\ncmd = "echo one $TOKEN; while [ ! -e {go} ]; do sleep 0.05; done; echo two"\ndeps = ["first"]\n')


def test_logs_follow_waits_for_the_task_then_prints_its_log_as_it_grows_until_it_ends(make_repo, tmp_path: Path) -> None:
    go = tmp_path / "go"
    repo = make_repo({"dags/f.toml": _follow_dag(go)})
    proc = _start_run(repo, "f")
    run_id = proc.stdout.readline().strip()
    follow = _start_cli(repo, "logs", "-f", "f", run_id, "talk")  # `talk` waits for `first`
    lines = _lines_of(follow)
    try:
        assert lines.get(timeout=60) == "one"  # printed while the task still runs: it waits for `go`
        go.touch()
        assert _rest(lines) == ["two"]
        assert follow.wait(60) == 0, follow.stderr.read()
        assert proc.wait(60) == 0
    finally:
        go.touch()
        for p in (proc, follow):
            p.kill()
            p.wait(60)


def test_logs_follow_without_the_dags_secrets_waits_for_the_end_and_prints_the_masked_log(make_repo, tmp_path: Path) -> None:
    go = tmp_path / "go"
    secrets = secrets_file(tmp_path)
    repo = make_repo({"dags/f.toml": _follow_dag(go, secrets=True)})
    proc = _start_run(repo, "f", "--secrets-file", str(secrets))
    run_id = proc.stdout.readline().strip()
    with_secrets = _start_cli(repo, "logs", "-f", "f", run_id, "talk", "--secrets-file", str(secrets))
    without = _start_cli(repo, "logs", "-f", "f", run_id, "talk")
    live, blind = _lines_of(with_secrets), _lines_of(without)
    try:
        assert live.get(timeout=60) == "one ***"  # live, and masked by the follower itself
        assert blind.empty()
        go.touch()
        assert _rest(live) == ["two"] and _rest(blind) == ["one ***", "two"]
        assert with_secrets.wait(60) == 0 and without.wait(60) == 0
    finally:
        go.touch()
        for p in (proc, with_secrets, without):
            p.kill()
            p.wait(60)


def test_logs_follow_stops_with_one_line_when_the_runner_dies_or_the_task_never_starts(make_repo, cli, tmp_path: Path) -> None:
    go = tmp_path / "go"
    repo = make_repo({"dags/f.toml": _follow_dag(go) + '\n[tasks.bad]\ncmd = "exit 3"\n\n[tasks.never]\ncmd = "true"\ndeps = ["bad"]\n'})
    proc = _start_run(repo, "f")
    run_id = proc.stdout.readline().strip()
    follow = _start_cli(repo, "logs", "-f", "f", run_id, "talk")
    lines = _lines_of(follow)
    try:
        assert lines.get(timeout=60) == "one"
        proc.kill()  # SIGKILL: the run stays "running" in its journal, and nobody holds the lock
        proc.wait(60)
        assert _rest(lines) == []
        assert follow.wait(60) == 1
        error = follow.stderr.read().strip()
        assert error == (f"gitflowd: error: attempt 1 of task 'talk' did not end: run {run_id!r} has no runner any more "
                         "(it died; `gitflowd resume` finishes it)"), error
    finally:
        go.touch()  # resume runs `talk` again
        for pgid in _task_pgids(_journal(repo, run_id, "f")):  # the orphaned task
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        follow.kill()
        follow.wait(60)
    done = cli("resume", "f", run_id, cwd=repo.path)
    assert done.returncode == 1  # `bad` fails again, `never` is upstream_failed
    _one_line_error(cli("logs", "-f", "f", run_id, "never", cwd=repo.path),
                    "task 'never' was marked upstream_failed", "(trigger rule all_success: upstream bad=failed): it has no log")
    _one_line_error(cli("logs", "-f", "f", run_id, "tlak", cwd=repo.path), "tlak", "talk")
    done = cli("logs", "-f", "f", run_id, "talk", cwd=repo.path)  # ended by now: prints the log and exits
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "two", done.stderr



def _sleeping(pid: int) -> bool:
    """The process waits in time.sleep (a follower polling), not still starting up."""
    return "nanosleep" in Path(f"/proc/{pid}/wchan").read_text()


def test_logs_follow_says_so_when_a_resume_at_another_commit_drops_the_task(make_repo, tmp_path: Path, daemons) -> None:
    from tests.test_daemon import start, wait_for
    repo = make_repo({"dags/d.toml": '[tasks.a]\ncmd = "exit 1"\n\n[tasks.b]\ncmd = "echo b"\ndeps = ["a"]\n'})
    daemon = start(daemons, repo.path, tmp_path / "home")
    where = ("--repo", str(repo.path), "--state", str(daemon.state))
    run_id = daemon.cli("run", "d", *where).stdout.split()[0]  # `a` fails, `b` never starts
    assert daemon.cli("clear", "d", run_id, "--task", "a", *where).returncode == 0  # queued, the daemon holds the lock
    follow = _start_cli(repo, "logs", "-f", "d", run_id, "b", "--state", str(daemon.state))
    try:
        wait_for(lambda: _sleeping(follow.pid), what="the follower waiting for b to start")
        repo.commit({"dags/d.toml": '[tasks.a]\ncmd = "true"\n'}, message="drop b")
        assert daemon.cli("resume", "d", run_id, "--rev", "HEAD", *where).returncode == 0
        assert follow.wait(60) == 1
        error = follow.stderr.read()
        assert error == (f"gitflowd: error: task 'b' is no longer in run {run_id!r}: it was resumed at commit "
                         f"{repo.head()[:8]}, whose DAG has no such task\n"), error
    finally:
        follow.kill()
        follow.wait(60)


TYPED = """[dag]
params = { days = 3, ratio = 0.5, dry = false, regions = ["a"], region = "seoul", when = 2026-01-01 }

[tasks.a]
cmd = "echo {{ params.days + 1 }} {{ params.ratio * 2 }} {{ params.dry }} {{ params.regions | length }} {{ params.region }} {{ params.when }}"
"""


def test_a_param_override_takes_the_type_of_its_default(make_repo, cli) -> None:
    """`--param days=5` was the text '5', so `{{ params.days + 1 }}` failed the run where the
    default (an integer) worked: overrides take their default's type, as a user expects."""
    repo = make_repo({"dags/typed.toml": TYPED})
    run = cli("run", "typed", "--no-render", "--param", "days=5", "--param", "ratio=1.5", "--param", "dry=yes",
              "--param", 'regions=["x", "y"]', "--param", "region=busan", "--param", "when=tomorrow", cwd=repo.path)
    assert run.returncode == 0, run.stdout + run.stderr
    run_id = run.stdout.splitlines()[0]
    assert cli("logs", "typed", run_id, "a", cwd=repo.path).stdout == "6 3.0 True 2 busan tomorrow\n"
    default = cli("run", "typed", "--no-render", cwd=repo.path)
    assert cli("logs", "typed", default.stdout.splitlines()[0], "a", cwd=repo.path).stdout == "4 1.0 False 1 seoul 2026-01-01\n"
    for pair, kind in (("days=abc", "an integer (default 3)"), ("ratio=x", "a number (default 0.5)"),
                       ("dry=maybe", "true or false (default false)"), ('regions={"a": 1}', 'a JSON array (default ["a"])'),
                       ("regions=[", "a JSON array"),
                       # NaN and Infinity were taken, and written into the journal as non-JSON tokens
                       ("ratio=nan", "a number"), ("ratio=1e999", "a number"), ("regions=[NaN]", "a JSON array")):
        _one_line_error(cli("run", "typed", "--param", pair, cwd=repo.path), f"DAG 'typed' declares {pair.split('=')[0]} as {kind}")
    assert len(list((repo.path / ".gitflowd/state/runs/typed").glob("*.jsonl"))) == 2  # the bad ones recorded nothing
