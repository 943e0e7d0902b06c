"""validate, list and show through the real CLI, on real repositories."""

from __future__ import annotations

import json
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import GitRepo, git
from test_loader import CORPUS
from gitflowd.cli import main

ROOT = Path(__file__).parent.parent
BAD = Path(__file__).parent / "bad_dags"
A = '[dag]\nschedule = "@daily"\n[tasks.a]\ncmd = "echo a"\n'


@pytest.fixture
def example(tmp_path) -> GitRepo:
    """examples/umbrella as a fresh Git repository."""
    shutil.copytree(ROOT / "examples" / "umbrella", tmp_path / "umbrella")
    repo = GitRepo(tmp_path / "umbrella")
    repo.commit(message="example")
    return repo


def test_example_validates(cli, example):
    done = cli("validate", cwd=example.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"2 DAG(s) valid at {example.head()[:8]}: flaky_reports, umbrella_demand"


def test_example_validates_as_json_with_repo_flag_and_env(cli, example, tmp_path):
    done = cli("validate", "--json", env={"GITFLOWD_REPO": str(example.path)}, cwd=tmp_path)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["valid"] is True and report["errors"] == []
    assert report["commit"] == example.head()
    assert {d["id"]: d["tasks"] for d in report["dags"]} == {"flaky_reports": 5, "umbrella_demand": 7}


def test_every_bad_corpus_file_fails_with_its_documented_message(cli, make_repo):
    expected = CORPUS
    repo = make_repo({f"dags/{name}": (BAD / name).read_text() for name in expected})
    done = cli("validate", "--repo", str(repo.path))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [line for name in sorted(expected) for line in expected[name]]
    assert f"in {len(expected)} of {len(expected)} DAG file(s)" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_bad_file_alone_exits_1(name, tmp_path, capsys):
    (tmp_path / "dags").mkdir()
    shutil.copy(BAD / name, tmp_path / "dags" / name)
    assert main(["--repo", str(tmp_path), "validate", "--worktree"]) == 1
    assert capsys.readouterr().out.splitlines() == CORPUS[name]


def test_rev_sees_commits_and_worktree_sees_edits(cli, make_repo):
    repo = make_repo({"dags/a.toml": A})
    first = repo.head()
    repo.commit({"dags/b.toml": "[tasks.b]\nretrys = 1\n"}, message="broken")
    (repo.path / "dags" / "a.toml").write_text("[tasks.a]\ncmd = \"x\"\ndeps = [\"zz\"]\n")
    head = cli("validate", "--repo", str(repo.path))
    assert head.returncode == 1
    assert head.stdout.splitlines() == [
        "dags/b.toml:1: task 'b' needs exactly one of cmd, argv, call",
        "dags/b.toml:2: unknown key 'retrys' in [tasks.b] (did you mean 'retries'?)",
    ]
    old = cli("validate", "--repo", str(repo.path), "--rev", first)
    assert old.returncode == 0 and old.stdout.startswith("1 DAG(s) valid at")
    disk = cli("validate", "--repo", str(repo.path), "--worktree")
    assert disk.returncode == 1 and "dags/a.toml:3: task 'a' depends on unknown task 'zz'" in disk.stdout.splitlines()
    assert "in the work tree" in disk.stderr


@pytest.mark.parametrize("setup, message", [
    ("missing", r"gitflowd: error: repository .*missing does not exist"),
    ("plain", r"gitflowd: error: .*plain is not a Git repository"),
    ("empty", r"gitflowd: error: repository .*empty has no commits yet"),
    ("badrev", r"gitflowd: error: unknown revision 'nope' in "),
])
@pytest.mark.parametrize("command", [["validate"], ["list"], ["show", "a"]])
def test_repository_errors_are_one_line(cli, tmp_path, make_repo, setup, message, command):
    path = tmp_path / setup
    extra: list[str] = []
    if setup == "plain":
        path.mkdir()
    elif setup == "empty":
        path = make_repo(name="empty").path
    elif setup == "badrev":
        path = make_repo({"dags/a.toml": A}, name="badrev").path
        extra = ["--rev", "nope"]
    done = cli(*command, "--repo", str(path), *extra, cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert re.fullmatch(message + r".*\n", done.stderr), done.stderr


def test_usage_errors_exit_2(cli, example):
    done = cli("validate", "--rev", "HEAD", "--worktree", cwd=example.path)
    assert done.returncode == 2 and "not allowed with argument" in done.stderr
    assert cli("show", cwd=example.path).returncode == 2


def test_list_shows_every_dag_with_next_run(cli, example):
    done = cli("list", cwd=example.path)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["DAG", "SCHEDULE", "TASKS", "NEXT", "RUN", "DESCRIPTION"]
    assert rows[0].startswith("flaky_reports    30 6 * * 1-5  5      ")
    assert re.search(r"\d{4}-\d\d-\d\d 06:30 CE[S]?T  Weekday reports", rows[0])
    assert re.match(r"umbrella_demand  @daily        7      \d{4}-\d\d-\d\d 00:00 UTC  Forecast umbrella demand", rows[1])


def test_list_json_next_run_is_in_the_future(cli, example):
    data = json.loads(cli("list", "--json", cwd=example.path).stdout)
    assert data["commit"] == example.head() and data["errors"] == []
    umbrella = next(d for d in data["dags"] if d["id"] == "umbrella_demand")
    upcoming = datetime.fromisoformat(umbrella["next_run"])
    assert upcoming > datetime.now(timezone.utc) and (upcoming.hour, upcoming.minute) == (0, 0)
    assert umbrella["path"] == "dags/umbrella_demand.toml" and umbrella["tags"] == ["example", "ml"]


def test_list_reports_load_errors_on_stderr_and_lists_the_rest(cli, make_repo):
    repo = make_repo({"dags/a.toml": A, "dags/b.toml": "[tasks.b]\ncmd = 1\n", "dags/m.toml": '[tasks.m]\ncmd = "x"\n'})
    done = cli("list", "--repo", str(repo.path))
    assert done.returncode == 0
    assert [line.split()[:3] for line in done.stdout.splitlines()[1:]] == [["a", "@daily", "1"], ["m", "manual", "1"]]
    assert done.stderr.splitlines() == [
        "gitflowd: 1 DAG file(s) failed to load and are not listed:",
        "dags/b.toml:2: [tasks.b] cmd must be a non-empty shell command string, got 1",
    ]


def test_list_of_a_repository_without_dags(cli, make_repo):
    repo = make_repo({"README": "x"})
    done = cli("list", "--repo", str(repo.path))
    assert done.returncode == 0 and "no DAGs" in done.stdout


def test_validate_without_dag_files_names_the_files_it_did_not_read(cli, make_repo):
    """A dagu user's dags/etl.yaml: 'no DAG files' left them guessing why it was not read."""
    repo = make_repo({"README": "x"})
    done = cli("validate", cwd=repo.path)
    assert done.returncode == 0 and done.stdout == f"no DAG files (dags/*.toml) at {repo.head()[:8]}\n"
    repo.commit({"dags/etl.yaml": "steps: []\n", "dags/sub/load.tml": "[tasks.a]\n"})
    expected = "; found dags/etl.yaml, dags/sub/load.tml, but DAG files are TOML files named *.toml\n"
    done = cli("validate", cwd=repo.path)
    assert done.returncode == 0 and done.stdout == f"no DAG files (dags/*.toml) at {repo.head()[:8]}{expected}"
    done = cli("validate", "--worktree", cwd=repo.path)
    assert done.returncode == 0 and done.stdout == f"no DAG files (dags/*.toml) in the work tree{expected}"


def test_validate_warns_of_argv_programs_a_run_cannot_start(cli, make_repo):
    """A script committed without +x (or never committed) passed validate, and every attempt
    of its task then failed with 'Permission denied' (or 'No such file')."""
    dag = ('[tasks.plain]\nargv = ["scripts/plain.sh"]\n[tasks.ok]\nargv = ["./scripts/ok.sh", "x"]\n'
           '[tasks.gone]\nargv = ["scripts/gone.sh"]\n[tasks.folder]\nargv = ["scripts"]\n[tasks.dir]\nargv = ["scripts/"]\n'
           '[tasks.path]\nargv = ["sh", "-c", "true"]\n[tasks.templated]\nargv = ["{{ params.tool }}"]\n'
           '[dag]\nparams = { tool = "scripts/gone.sh" }\n')
    repo = make_repo({"dags/p.toml": dag, "scripts/plain.sh": "#!/bin/sh\n", "scripts/ok.sh": "#!/bin/sh\n"})
    (repo.path / "scripts" / "ok.sh").chmod(0o755)
    sha = repo.commit(message="ok.sh +x")
    done = cli("validate", cwd=repo.path)
    assert done.returncode == 0 and done.stdout == f"1 DAG(s) valid at {sha[:8]}: p\n"
    assert done.stderr.splitlines() == [
        f"dags/p.toml:1: warning: task 'plain': argv program scripts/plain.sh is not executable in commit {sha[:8]}: "
        "the task cannot start (git update-index --chmod=+x scripts/plain.sh, then commit)",
        f"dags/p.toml:5: warning: task 'gone': argv program scripts/gone.sh is not in commit {sha[:8]}: the task cannot "
        "start (runs see committed files only)",
        f"dags/p.toml:9: warning: task 'dir': argv program scripts is a directory in commit {sha[:8]}: the task cannot start"]
    (repo.path / "scripts" / "gone.sh").write_text("#!/bin/sh\n")  # on disk, not added: a run would not have it
    done = cli("validate", "--worktree", cwd=repo.path)
    assert done.returncode == 0 and "scripts/gone.sh is not in the index: the task cannot start (runs see committed " \
        "files only; git add it)" in done.stderr
    report = json.loads(cli("validate", "--json", cwd=repo.path).stdout)
    assert report["valid"] and report["warnings"][0] == {
        "path": "dags/p.toml", "line": 1, "message": f"task 'plain': argv program scripts/plain.sh is not executable in "
        f"commit {sha[:8]}: the task cannot start (git update-index --chmod=+x scripts/plain.sh, then commit)"}


def test_validate_warns_of_call_modules_a_run_cannot_import(cli, make_repo):
    dag = ('[tasks.ok]\ncall = "jobs.work:main"\n[tasks.typo]\ncall = "jobs.wrok:main"\n'
           '[tasks.gone]\ncall = "nosuchmodule_gitflowd:main"\n[tasks.installed]\ncall = "json:dumps"\n'
           '[tasks.shadow]\ncall = "types:main"\n[tasks.fine]\ncall = "test.smoke:main"\n')
    repo = make_repo({"dags/c.toml": dag, "jobs/work.py": "def main():\n    pass\n", "types.py": "def main():\n    pass\n",
                      "test/smoke.py": "def main():\n    pass\n"})  # stdlib has a `test`, not loaded at start: the repository's wins
    done = cli("validate", cwd=repo.path)
    short = repo.head()[:8]
    assert done.returncode == 0 and done.stderr.splitlines() == [
        f"dags/c.toml:3: warning: task 'typo': call module 'jobs.wrok' is not in commit {short} (no jobs/wrok.py): "
        "the task cannot start",
        f"dags/c.toml:5: warning: task 'gone': call module 'nosuchmodule_gitflowd' is neither in commit {short} nor "
        f"installed for {sys.executable}: the task cannot start",
        f"dags/c.toml:9: warning: task 'shadow': call module 'types' in commit {short} has the name of a module Python "
        "loads before the task starts, so the repository's is never imported: rename it"]


def test_show_prints_tasks_in_topological_order(cli, example):
    done = cli("show", "umbrella_demand", cwd=example.path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"DAG umbrella_demand  (dags/umbrella_demand.toml at {example.head()[:8]})"
    table = lines[lines.index(next(l for l in lines if l.startswith("TASK"))) + 1:]
    assert [row.split()[0] for row in table] == ["fetch_sales", "fetch_weather", "clean_sales", "clean_weather", "join_datasets", "train_model", "deploy_model"]
    assert table[4].split() == ["join_datasets", "cmd", "all_success", "1", "(5s", "x2)", "2m", "clean_sales,", "clean_weather"]


def test_show_dot(cli, example):
    done = cli("show", "flaky_reports", "--dot", cwd=example.path)
    assert done.returncode == 0
    assert done.stdout.startswith('digraph "flaky_reports" {') and done.stdout.rstrip().endswith("}")
    assert '  "extract" -> "render_report";' in done.stdout.splitlines()
    assert done.stdout.count("->") == 6


def test_show_json_round_trips(cli, example):
    data = json.loads(cli("show", "flaky_reports", "--json", cwd=example.path).stdout)
    assert [t["id"] for t in data["tasks"]] == ["extract", "render_report", "export", "notify", "page_oncall"]
    assert data["tasks"][3]["trigger_rule"] == "all_done" and data["timezone"] == "Europe/Berlin"


def test_show_unknown_and_invalid_dags(cli, make_repo):
    repo = make_repo({"dags/umbrella.toml": A, "dags/broken.toml": "[tasks.x]\nretries = 1\n"})
    unknown = cli("show", "umbrela", "--repo", str(repo.path))
    assert unknown.returncode == 1 and unknown.stderr == "gitflowd: error: unknown DAG 'umbrela' (did you mean 'umbrella'?)\n"
    far = cli("show", "zzz", "--repo", str(repo.path))
    assert far.stderr == "gitflowd: error: unknown DAG 'zzz' (DAGs: umbrella)\n"
    broken = cli("show", "broken", "--repo", str(repo.path))
    assert broken.returncode == 1
    assert broken.stderr == "gitflowd: error: dags/broken.toml:1: task 'x' needs exactly one of cmd, argv, call\n"


def test_show_and_run_find_a_dag_by_its_id_not_only_by_its_file_name(cli, make_repo):
    repo = make_repo({"dags/umbrella.toml": A, "dags/stem.toml": '[dag]\nid = "real"\n[tasks.a]\ncmd = "x"\n',
                      "dags/broken.toml": '[dag]\nid = "brk"\n[tasks.a]\ncmd = "x"\nretrys = 1\n'})
    for command in ("show", "run"):
        broken = cli(command, "brk", "--repo", str(repo.path))
        assert broken.returncode == 1 and broken.stdout == ""
        assert broken.stderr == "gitflowd: error: dags/broken.toml:5: unknown key 'retrys' in [tasks.a] (did you mean 'retries'?)\n"
        stem = cli(command, "stem", "--repo", str(repo.path))
        assert stem.returncode == 1 and stem.stderr == "gitflowd: error: unknown DAG 'stem' (dags/stem.toml defines DAG 'real')\n"
    assert not (repo.path / ".gitflowd" / "state" / "runs").exists()


def test_show_at_an_older_revision(cli, make_repo):
    repo = make_repo({"dags/a.toml": A})
    first = repo.head()
    repo.commit({"dags/a.toml": A.replace("[tasks.a]", "[tasks.renamed]")})
    done = cli("show", "a", "--rev", first, "--repo", str(repo.path))
    assert done.returncode == 0 and "\na " in done.stdout and "renamed" not in done.stdout
    assert git(repo.path, "rev-parse", "HEAD") != first


def test_an_unknown_jinja_filter_is_one_line_in_every_command(cli, make_repo, tmp_path):
    repo = make_repo({"dags/a.toml": A, "dags/t1.toml": '[tasks.a]\ncmd = "echo {{ ds | bogus }}"\n'})
    line = "dags/t1.toml:2: [tasks.a] cmd: invalid template: No filter named 'bogus'"
    state = ["--repo", str(repo.path), "--state", str(tmp_path / "state")]
    validate = cli("validate", *state)
    assert validate.returncode == 1 and validate.stdout.splitlines() == [line]
    listed = cli("list", *state)
    assert listed.stderr.splitlines()[1:] == [line] and listed.stdout.splitlines()[1].split()[0] == "a"
    for command in (["show", "t1"], ["run", "t1"]):
        done = cli(*command, *state)
        assert (done.returncode, done.stderr) == (1, f"gitflowd: error: {line}\n"), command
    for done in (validate, listed):
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "state" / "runs" / "t1").exists()
