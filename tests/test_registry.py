"""The DAG registry: real repositories, real commits, loaded by repo.Repo and recorded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from gitflowd.errors import StateError
from gitflowd.registry import ChangeKind, CommitRef, dag_history, read_registry, read_reloads, record_snapshot
from gitflowd.repo import Repo

GOOD = '[dag]\ndescription = "first"\nschedule = "@daily"\n\n[tasks.a]\ncmd = "echo a"\n'
GOOD2 = '[dag]\ndescription = "second"\n\n[tasks.a]\ncmd = "echo a"\n\n[tasks.b]\ncmd = "echo b"\ndeps = ["a"]\n'
BAD = '[dag]\ndescription = "broken"\n\n[tasks.a]\ncmd = "echo a"\ndeps = ["nope"]\n'


def record(repo, state: Path):
    with Repo(repo.path) as git_repo:
        return record_snapshot(state, git_repo.load(repo.head()))


def kinds(changes):
    return {(c.dag_id, c.change) for c in changes}


def test_first_load_adds_every_valid_dag_and_lists_bad_files(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD, "dags/two.toml": GOOD2, "dags/bad.toml": BAD})
    state = tmp_path / "state"
    assert kinds(record(repo, state)) == {("one", ChangeKind.ADDED), ("two", ChangeKind.ADDED)}
    registry = read_registry(state)
    assert registry.attempted.sha == repo.head() and registry.attempted.subject == "initial"
    assert registry.attempted.author == "Test Author"
    assert set(registry.dags) == {"one", "two"}
    one = registry.dags["one"]
    assert one.source == GOOD and one.path == "dags/one.toml" and one.commit.sha == repo.head()
    assert one.load().description == "first" and one.load().schedule == "@daily"
    assert [(p.path, p.line) for p in registry.errors] == [("dags/bad.toml", 6)]
    assert "nope" in registry.errors[0].message


def test_unchanged_commit_records_no_reload_but_advances_applied_commit(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    first = repo.head()
    repo.commit({"README": "docs only"}, message="docs")
    assert record(repo, state) == []
    assert len(read_reloads(state)) == 1
    entry = read_registry(state).dags["one"]
    assert entry.commit.sha == repo.head() and entry.since.sha == first


def test_invalid_commit_keeps_last_valid_version_then_fix(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD, "dags/two.toml": GOOD2})
    state = tmp_path / "state"
    record(repo, state)
    good = repo.head()
    repo.commit({"dags/one.toml": BAD}, message="break one")
    assert kinds(record(repo, state)) == {("one", ChangeKind.INVALID)}
    registry = read_registry(state)
    one = registry.dags["one"]
    assert one.source == GOOD and one.commit.sha == good and not one.retired
    assert one.errors and one.errors[0].path == "dags/one.toml" and "nope" in one.errors[0].message
    assert registry.attempted.sha == repo.head() and registry.attempted.subject == "break one"
    assert registry.dags["two"].commit.sha == repo.head()  # unaffected DAGs follow the head
    # a second bad commit with the same error changes nothing worth a history record
    repo.commit({"README": "x"}, message="unrelated")
    assert record(repo, state) == []
    repo.commit({"dags/one.toml": GOOD}, message="revert")
    assert kinds(record(repo, state)) == {("one", ChangeKind.FIXED)}
    assert read_registry(state).dags["one"].errors == ()
    assert [c.change for r in dag_history(state, "one") for c in r.changes] == [ChangeKind.FIXED, ChangeKind.INVALID, ChangeKind.ADDED]


def test_deleted_file_retires_and_readding_restores(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD, "dags/two.toml": GOOD2})
    state = tmp_path / "state"
    record(repo, state)
    repo.commit(remove=("dags/one.toml",), message="drop one")
    assert kinds(record(repo, state)) == {("one", ChangeKind.REMOVED)}
    one = read_registry(state).dags["one"]
    assert one.retired and one.source == GOOD  # history stays
    repo.commit({"dags/one.toml": GOOD2}, message="bring one back")
    assert kinds(record(repo, state)) == {("one", ChangeKind.ADDED)}
    one = read_registry(state).dags["one"]
    assert not one.retired and one.source == GOOD2 and one.since.sha == repo.head()
    history = dag_history(state, "one")
    assert [r.commit.subject for r in history] == ["bring one back", "drop one", "initial"]
    assert dag_history(state, "two")[0].changes[0].change == ChangeKind.ADDED
    assert dag_history(state, "unknown") == []


def test_changed_file_records_new_version(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    sha = repo.commit({"dags/one.toml": GOOD2}, message="add task b")
    assert kinds(record(repo, state)) == {("one", ChangeKind.CHANGED)}
    entry = read_registry(state).dags["one"]
    assert entry.since.sha == sha and list(entry.load().tasks) == ["a", "b"]


def test_duplicate_id_keeps_the_old_version(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    repo.commit({"dags/copy.toml": '[dag]\nid = "one"\n\n[tasks.x]\ncmd = "true"\n'}, message="dup")
    assert kinds(record(repo, state)) == {("one", ChangeKind.INVALID)}
    entry = read_registry(state).dags["one"]
    assert entry.source == GOOD and "also defined" in entry.errors[0].message


@pytest.mark.parametrize("broken", ['[dag]\nid = "alpha"\n\n[tasks.x]\ncmd = "x"\nretrys = 1\n',
                                    '[dag]\nid = "alpha"  # set here\n\n[tasks.x\ncmd = "x"\n'],
                         ids=["invalid", "toml-syntax"])
def test_a_renamed_file_that_sets_its_id_and_breaks_keeps_the_last_valid_version(make_repo, tmp_path, broken):
    """The DAG was retired (problems were matched to it by its old path), against DESIGN.md's
    'an invalid file keeps its DAG's last valid version'."""
    good = '[dag]\nid = "alpha"\n\n[tasks.x]\ncmd = "x"\n'
    repo = make_repo({"dags/a.toml": good})
    state = tmp_path / "state"
    record(repo, state)
    first = repo.head()
    repo.commit({"dags/b.toml": broken}, message="rename and break", remove=("dags/a.toml",))
    assert kinds(record(repo, state)) == {("alpha", ChangeKind.INVALID)}
    alpha = read_registry(state).dags["alpha"]
    assert not alpha.retired and alpha.source == good and alpha.commit.sha == first
    assert [p.path for p in alpha.errors] == ["dags/b.toml"]
    repo.commit({"dags/b.toml": good.replace('"x"\n', '"y"\n')}, message="fix")
    assert kinds(record(repo, state)) == {("alpha", ChangeKind.CHANGED)}
    alpha = read_registry(state).dags["alpha"]
    assert alpha.path == "dags/b.toml" and alpha.errors == () and alpha.since.sha == repo.head()


def test_a_broken_file_named_after_a_dag_but_declaring_another_id_is_not_that_dag(make_repo, tmp_path):
    repo = make_repo({"dags/a.toml": '[dag]\nid = "alpha"\n\n[tasks.x]\ncmd = "x"\n'})
    state = tmp_path / "state"
    record(repo, state)
    repo.commit({"dags/alpha.toml": '[dag]\nid = "other"\n\n[tasks.x]\nretrys = 1\n'}, message="swap",
                remove=("dags/a.toml",))
    assert kinds(record(repo, state)) == {("alpha", ChangeKind.REMOVED)}
    assert read_registry(state).dags["alpha"].retired


def test_torn_reload_line_is_ignored_and_corrupt_registry_is_an_error(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    with open(state / "reloads.jsonl", "a") as fh:
        fh.write('{"v":1,"ts":"2026')  # crash mid-append
    assert len(read_reloads(state)) == 1
    (state / "dags.json").write_text("{not json")
    with pytest.raises(StateError, match="dags.json: unreadable DAG registry"):
        read_registry(state)


def test_registry_file_is_plain_json(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    data = json.loads((state / "dags.json").read_text())
    assert data["v"] == 2 and "source" not in data["dags"][0] and "dag" not in data["dags"][0]
    assert data["commits"][data["dags"][0]["commit"]]["subject"] == "initial"  # each commit once, named by SHA
    version = json.loads((state / "dag_versions" / f"{data['dags'][0]['version']}.json").read_text())
    assert version["source"] == GOOD and version["dag"]["tasks"][0]["id"] == "a"
    assert not list(state.glob(".*.tmp")) and not list(state.glob("dag_versions/.*.tmp"))


def test_a_write_failure_is_one_state_error_and_the_old_registry_stays(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    before = (state / "dags.json").read_bytes()
    repo.commit({"dags/one.toml": GOOD2 * 40}, message="big")  # a registry larger than the file size limit
    script = ("import sys, resource; from gitflowd.repo import Repo; from gitflowd.registry import record_snapshot\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (len(open(sys.argv[2] + '/dags.json', 'rb').read()) + 100,) * 2)\n"
              "r = Repo(sys.argv[1]); record_snapshot(sys.argv[2], r.load(r.resolve()))\n")
    done = subprocess.run([sys.executable, "-c", script, str(repo.path), str(state)], capture_output=True, text=True)
    assert done.returncode == 1 and "StateError" in done.stderr
    assert re.search(r"dags.json: cannot record the DAGs of [0-9a-f]{8}: File too large", done.stderr)
    assert (state / "dags.json").read_bytes() == before and not list(state.glob(".*.tmp"))


def test_a_version_that_cannot_be_written_leaves_the_registry_and_history_alone(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    before = {name: (state / name).read_bytes() for name in ("dags.json", "reloads.jsonl")}
    repo.commit({"dags/one.toml": GOOD2.replace("second", "x" * 8000)}, message="big")  # its version file is over the limit
    script = ("import sys, resource; from gitflowd.repo import Repo; from gitflowd.registry import record_snapshot\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (4000,) * 2)\n"
              "r = Repo(sys.argv[1]); record_snapshot(sys.argv[2], r.load(r.resolve()))\n")
    done = subprocess.run([sys.executable, "-c", script, str(repo.path), str(state)], capture_output=True, text=True)
    assert re.search(r"dags.json: cannot record the DAGs of [0-9a-f]{8}: File too large", done.stderr), done.stderr
    assert {name: (state / name).read_bytes() for name in before} == before  # the version comes first: nothing names it
    assert len(list((state / "dag_versions").iterdir())) == 1 and not list(state.glob("dag_versions/.*.tmp"))
    assert kinds(record(repo, state)) == {("one", ChangeKind.CHANGED)}  # without the limit it is recorded
    assert "x" * 8000 in reread(state).dags["one"].source


def test_a_failure_names_the_file_that_failed_not_always_dags_json(make_repo, tmp_path):
    # A directory in the way of registry.lock was reported as 'dags.json: ... Is a directory'.
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    (state / "registry.lock").mkdir(parents=True)
    with pytest.raises(StateError, match=rf"^{re.escape(str(state / 'registry.lock'))}: cannot record the DAGs of [0-9a-f]{{8}}: Is a directory$"):
        record(repo, state)
    assert not (state / "dags.json").exists()


def test_an_unreadable_registry_is_a_state_error(make_repo, tmp_path):
    state = tmp_path / "state"
    (state / "dags.json").mkdir(parents=True)
    with pytest.raises(StateError, match="dags.json: unreadable DAG registry"):
        read_registry(state)


def test_run_records_the_head_and_shows_its_source_on_the_site(cli, make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    done = cli("run", "one", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    entry = read_registry(repo.path / ".gitflowd/state").dags["one"]
    assert entry.source == GOOD and entry.commit.sha == repo.head()
    page = (repo.path / ".gitflowd/site/dags/one/index.html").read_text()
    assert "<span>[dag]</span>" in page and "initial" in page
    old = repo.head()
    repo.commit({"dags/one.toml": GOOD2}, message="second")
    assert cli("run", "one", "--rev", old, cwd=repo.path).returncode == 0
    assert read_registry(repo.path / ".gitflowd/state").attempted.sha == old  # --rev never moves the registry


def test_a_registry_rewritten_by_another_process_is_read_again(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    assert set(read_registry(state).dags) == {"one"}  # parsed once, then cached in this process
    repo.commit({"dags/two.toml": GOOD2}, message="two")
    code = ("import sys; from gitflowd.repo import Repo; from gitflowd.registry import record_snapshot; "
            "r = Repo(sys.argv[1]); record_snapshot(sys.argv[2], r.load(r.resolve()))")
    subprocess.run([sys.executable, "-c", code, str(repo.path), str(state)], check=True)
    assert set(read_registry(state).dags) == {"one", "two"}


def test_a_moved_file_records_its_new_path_in_the_dag(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    repo.commit({"dags/sub/one.toml": GOOD}, message="move", remove=("dags/one.toml",))
    record(repo, state)
    entry = read_registry(state).dags["one"]
    assert entry.path == "dags/sub/one.toml" and entry.load().path == "dags/sub/one.toml"


def test_a_file_moved_unchanged_is_recorded_as_moved_from_the_commit_that_moved_it(make_repo, tmp_path):
    """`git mv` of an unchanged file recorded nothing ('no DAG changed'), and the entry kept the
    commit of the old path as the one its source came from."""
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    moved = repo.commit({"dags/sub/one.toml": GOOD}, message="move", remove=("dags/one.toml",))
    changes = record(repo, state)
    assert [(c.change, c.old_path, c.path, c.describe()) for c in changes] == [
        (ChangeKind.MOVED, "dags/one.toml", "dags/sub/one.toml", "one moved (dags/one.toml -> dags/sub/one.toml)")]
    entry = read_registry(state).dags["one"]
    assert entry.since.sha == moved and entry.source == GOOD
    assert dag_history(state, "one")[0].changes == tuple(changes)  # read back from reloads.jsonl
    assert json.loads((state / "reloads.jsonl").read_text().splitlines()[0])["changes"][0].keys() == {
        "dag", "change", "path", "blob", "errors"}  # old_path only when the file moved
    edited = repo.commit({"dags/one.toml": GOOD2}, message="move back and edit", remove=("dags/sub/one.toml",))
    assert [(c.change, c.old_path) for c in record(repo, state)] == [(ChangeKind.CHANGED, "dags/sub/one.toml")]
    assert read_registry(state).dags["one"].since.sha == edited


def test_a_broken_file_moved_back_to_health_is_fixed_and_moved(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    repo.commit({"dags/one.toml": BAD}, message="break")
    record(repo, state)
    repo.commit({"dags/sub/one.toml": GOOD}, message="restore elsewhere", remove=("dags/one.toml",))
    assert [(c.change, c.old_path) for c in record(repo, state)] == [(ChangeKind.FIXED, "dags/one.toml")]
    assert read_registry(state).dags["one"].errors == ()


def test_an_entry_builds_its_dag_once_and_an_unchanged_file_keeps_it(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD, "dags/two.toml": GOOD2})
    state = tmp_path / "state"
    record(repo, state)
    before = read_registry(state).dags
    assert before["one"].load() is before["one"].load()
    built_two = before["two"].load()
    repo.commit({"dags/one.toml": GOOD.replace("first", "third")}, message="change one")
    record(repo, state)
    after = read_registry(state).dags
    assert after["two"].load() is built_two  # unchanged: not rebuilt
    assert after["one"].load().description == "third" and before["one"].load().description == "first"


# -- version files ----------------------------------------------------------------------


def version_file(state: Path, dag_id: str) -> Path:
    entry = next(d for d in json.loads((state / "dags.json").read_text())["dags"] if d["id"] == dag_id)
    return state / "dag_versions" / f"{entry['version']}.json"


def reread(state: Path):
    """The registry parsed again from disk, as another process would see it (a new mtime is
    what the read cache watches for)."""
    path = state / "dags.json"
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000))
    return read_registry(state)


def test_a_version_file_is_written_once_and_unchanged_dags_are_not_rewritten(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD, "dags/two.toml": GOOD2})
    state = tmp_path / "state"
    record(repo, state)
    two, one_first = version_file(state, "two"), version_file(state, "one")
    before = (two.stat().st_ino, two.stat().st_mtime_ns)
    first_inode = one_first.stat().st_ino
    repo.commit({"dags/one.toml": GOOD.replace("first", "third")}, message="change one")
    assert kinds(record(repo, state)) == {("one", ChangeKind.CHANGED)}
    assert (two.stat().st_ino, two.stat().st_mtime_ns) == before
    assert version_file(state, "one") != one_first and len(list((state / "dag_versions").iterdir())) == 3
    repo.commit({"dags/one.toml": GOOD}, message="revert one")  # a version seen before: its file is reused
    record(repo, state)
    assert version_file(state, "one") == one_first and one_first.stat().st_ino == first_inode
    assert len(list((state / "dag_versions").iterdir())) == 3
    again = reread(state)
    assert again.dags["one"].source == GOOD and list(again.dags["two"].load().tasks) == ["a", "b"]


def test_a_missing_or_damaged_version_file_is_one_state_error_naming_it(make_repo, tmp_path, cli):
    repo = make_repo({"dags/one.toml": GOOD})
    state = tmp_path / "state"
    record(repo, state)
    path = version_file(state, "one")
    path.unlink()
    entry = reread(state).dags["one"]  # the index reads without it; its source needs it
    assert entry.path == "dags/one.toml" and entry.blob
    with pytest.raises(StateError, match=rf"^{re.escape(str(path))}: unreadable DAG version \(No such file or directory\); "
                                         rf"delete {re.escape(str(state / 'dags.json'))} and let the daemon reload$"):
        entry.source
    path.write_text(json.dumps({"v": 1, "source": "[dag]\n", "dag": {}}))  # whole JSON, wrong content
    with pytest.raises(StateError, match=rf"^{re.escape(str(path))}: unreadable DAG version \(its content does not match its name\)"):
        reread(state).dags["one"].load()
    done = cli("render", "--state", str(state), "--site", str(tmp_path / "site"))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"{path}: unreadable DAG version" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    (state / "dags.json").unlink()  # the remedy the message gives: the next reload writes the file again
    record(repo, state)
    assert reread(state).dags["one"].source == GOOD and json.loads(path.read_text())["source"] == GOOD


def test_a_registry_of_format_1_is_read_and_rewritten_with_version_files(make_repo, tmp_path):
    repo = make_repo({"dags/one.toml": GOOD, "dags/broken.toml": BAD})
    with Repo(repo.path) as git_repo:  # the head's commit and problems, as the old code recorded them
        snapshot = git_repo.load(repo.head())
    head, blob = snapshot.commit.sha, snapshot.dags["one"].blob
    first = "1" * 40  # the commit that brought the current version of one, before `head`
    state = tmp_path / "state"
    state.mkdir()
    (state / "reloads.jsonl").write_text('{"v":1,"ts":"2026-01-01T00:00:00+00:00","commit":{"sha":"' + first + '"},'
                                         '"changes":[{"dag":"one","change":"added","path":"dags/one.toml","blob":"' + blob + '"}]}\n')
    reloads_before = (state / "reloads.jsonl").read_bytes()
    fields = {"head": json.dumps(asdict(CommitRef.of(snapshot.commit))), "first": first, "blob": blob,
              "errors": json.dumps([asdict(p) for p in snapshot.problems])}
    (state / "dags.json").write_text(FORMAT_1 % fields)
    old = read_registry(state)
    assert old.attempted.sha == head and [(p.path, p.line) for p in old.errors] == [("dags/broken.toml", 6)]
    assert old.dags["one"].source == GOOD and old.dags["one"].load().schedule == "@daily"
    assert old.dags["gone"].retired and old.dags["gone"].source.startswith("[dag]\n# retired")
    assert list(old.dags["gone"].load().tasks) == ["x"] and old.dags["gone"].errors == ()
    assert record(repo, state) == []  # the same commit: nothing changed, yet the file moves to format 2
    data = json.loads((state / "dags.json").read_text())
    assert data["v"] == 2 and all("source" not in d and "dag" not in d for d in data["dags"])
    assert len(list((state / "dag_versions").iterdir())) == 2
    new = reread(state)
    assert new == old  # the same registry, read from the new files
    one, gone = new.dags["one"], new.dags["gone"]
    assert one.source == GOOD and one.since.sha == first and one.commit.sha == head and one.blob == blob
    assert gone.retired and gone.source == old.dags["gone"].source and gone.dag == old.dags["gone"].dag
    assert gone.since.subject == "add gone" and gone.commit.subject == "drop gone"
    assert (state / "reloads.jsonl").read_bytes() == reloads_before  # nothing recorded is lost or rewritten
    repo.commit({"dags/one.toml": GOOD2}, message="second")  # and the migrated registry carries on
    assert kinds(record(repo, state)) == {("one", ChangeKind.CHANGED)}
    assert reread(state).dags["gone"].retired and len(list((state / "dag_versions").iterdir())) == 3
    assert (state / "reloads.jsonl").read_bytes().startswith(reloads_before) and len(read_reloads(state)) == 2
    other = tmp_path / "other"  # a format 1 file met by a change: the replaced version's source is kept too
    other.mkdir()
    (other / "dags.json").write_text(FORMAT_1 % fields)
    assert kinds(record(repo, other)) == {("one", ChangeKind.CHANGED)}
    sources = {json.loads(f.read_text())["source"] for f in (other / "dag_versions").iterdir()}
    assert sources == {GOOD, GOOD2, old.dags["gone"].source}


def test_a_registry_of_an_unknown_format_is_a_state_error(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "dags.json").write_text('{"v": 3, "dags": []}')
    with pytest.raises(StateError, match=r"dags.json: unreadable DAG registry \(format 3, this gitflowd reads 1 and 2\)"):
        read_registry(state)


# dags.json as gitflowd wrote it before version files (format 1): every DAG's source and graph inline.
FORMAT_1 = """{
  "v": 1,
  "attempted": %(head)s,
  "errors": %(errors)s,
  "dags": [
    {"id": "gone", "path": "dags/gone.toml", "blob": "2222222222222222222222222222222222222222",
     "commit": {"sha": "4444444444444444444444444444444444444444", "subject": "drop gone", "author": "A", "email": "a@example.com", "time": "2026-01-01T12:00:00+00:00"},
     "since": {"sha": "3333333333333333333333333333333333333333", "subject": "add gone", "author": "A", "email": "a@example.com", "time": "2025-12-01T00:00:00+00:00"},
     "retired": true, "errors": [],
     "dag": {"id": "gone", "path": "dags/gone.toml", "description": "", "schedule": null, "timezone": "UTC",
             "start_date": null, "end_date": null, "catchup": false, "max_active_runs": 1, "max_active_tasks": 16,
             "params": {}, "env": {}, "secrets": [], "tags": [],
             "tasks": [{"id": "x", "cmd": "true", "argv": null, "call": null, "deps": [], "retries": 0, "retry_delay": 0.0,
                        "retry_backoff": 1.0, "timeout": null, "trigger_rule": "all_success", "env": {}, "description": "", "line": 4}]},
     "source": "[dag]\\n# retired\\n[tasks.x]\\ncmd = \\"true\\"\\n"},
    {"id": "one", "path": "dags/one.toml", "blob": "%(blob)s",
     "commit": %(head)s,
     "since": {"sha": "%(first)s", "subject": "first", "author": "Test Author", "email": "t@example.com", "time": "2026-01-01T00:00:00+00:00"},
     "retired": false, "errors": [],
     "dag": {"id": "one", "path": "dags/one.toml", "description": "first", "schedule": "@daily", "timezone": "UTC",
             "start_date": null, "end_date": null, "catchup": false, "max_active_runs": 1, "max_active_tasks": 16,
             "params": {}, "env": {}, "secrets": [], "tags": [],
             "tasks": [{"id": "a", "cmd": "echo a", "argv": null, "call": null, "deps": [], "retries": 0, "retry_delay": 0.0,
                        "retry_backoff": 1.0, "timeout": null, "trigger_rule": "all_success", "env": {}, "description": "", "line": 5}]},
     "source": "[dag]\\ndescription = \\"first\\"\\nschedule = \\"@daily\\"\\n\\n[tasks.a]\\ncmd = \\"echo a\\"\\n"}
  ]
}
"""
