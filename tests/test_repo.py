"""Repo on real Git repositories: snapshots from Git objects, the blob cache, checkouts, errors."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from conftest import git
from gitflowd.errors import RepoError
from gitflowd.repo import Repo, load_worktree

A = '[dag]\nschedule = "@daily"\n[tasks.a]\ncmd = "echo a"\n'
B = '[tasks.b]\ncmd = "echo b"\n'


def test_snapshot_reads_committed_files_and_ignores_uncommitted_edits(make_repo):
    repo = make_repo({"dags/a.toml": A, "dags/sub/b.toml": B, "dags/notes.md": "x", "other/c.toml": B})
    (repo.path / "dags" / "a.toml").write_text('[tasks.changed]\ncmd = "x"\n')
    (repo.path / "dags" / "new.toml").write_text(B.replace("[tasks.b]", "[tasks.n]"))
    with Repo(repo.path) as r:
        snap = r.load(r.resolve())
        assert sorted(snap.dags) == ["a", "b"] and snap.valid
        assert snap.paths == ("dags/a.toml", "dags/sub/b.toml")
        assert list(snap.dags["a"].dag.tasks) == ["a"]
        assert snap.dags["a"].source == A and snap.dags["a"].blob == git(repo.path, "rev-parse", "HEAD:dags/a.toml")
        assert snap.commit.sha == repo.head() and snap.commit.subject == "initial"
    worktree = load_worktree(repo.path)
    assert worktree.commit is None and sorted(worktree.dags) == ["a", "b", "new"]
    assert list(worktree.dags["a"].dag.tasks) == ["changed"]


def test_resolve_and_old_revisions(make_repo):
    repo = make_repo({"dags/a.toml": A})
    first = repo.head()
    second = repo.commit({"dags/a.toml": A.replace("echo a", "echo A")}, message="shout")
    git(repo.path, "tag", "v1", first)
    with Repo(repo.path) as r:
        assert r.resolve() == second and r.resolve("HEAD~1") == first and r.resolve("v1") == first
        assert r.resolve(first[:8]) == first
        assert r.load(first).dags["a"].dag.tasks["a"].cmd == "echo a"
        assert r.load(r.resolve()).dags["a"].dag.tasks["a"].cmd == "echo A"
        info = r.commit_info(second)
        assert (info.subject, info.author, info.email) == ("shout", "Test Author", "author@example.com")
        assert info.time.tzinfo is not None
        with pytest.raises(RepoError, match="unknown revision 'nope' in"):
            r.resolve("nope")
        with pytest.raises(RepoError, match="unknown revision"):
            r.resolve(r.dag_files(second)["dags/a.toml"])  # a blob is not a commit


def test_follows_the_branch_not_the_checked_out_head(make_repo):
    repo = make_repo({"dags/a.toml": A})
    main_head = repo.head()
    git(repo.path, "checkout", "-q", "-b", "dev")
    dev_head = repo.commit({"dags/b.toml": B}, message="dev only")
    with Repo(repo.path, branch="main") as r:
        assert r.branch == "main" and r.resolve() == main_head
    with Repo(repo.path) as r:
        assert r.branch == "dev" and r.resolve() == dev_head
    git(repo.path, "checkout", "-q", "--detach", main_head)
    with Repo(repo.path) as r:
        assert r.branch is None and r.resolve() == main_head


def test_bare_repository(make_repo, tmp_path):
    repo = make_repo({"dags/a.toml": A})
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo.path), str(bare))
    with Repo(bare) as r:
        assert r.bare and r.branch == "main"
        assert sorted(r.load(r.resolve()).dags) == ["a"]
        target = r.checkout(r.resolve(), tmp_path / "checkouts")
        assert (target / "dags" / "a.toml").read_text() == A
    with pytest.raises(RepoError, match="is a bare repository: it has no work tree"):
        load_worktree(bare)


def test_bare_repository_whose_head_names_an_unborn_branch(make_repo, tmp_path):
    repo = make_repo({"dags/a.toml": A})
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "master", str(bare))
    git(repo.path, "push", "-q", str(bare), "main")
    with Repo(bare) as r:
        assert r.branch == "main"
    git(repo.path, "push", "-q", str(bare), "main:dev")
    with pytest.raises(RepoError, match="HEAD of .* names branch 'master', which has no commits \\(branches: dev, main\\)"):
        Repo(bare)


def test_blob_cache_parses_only_changed_files(make_repo):
    files = {f"dags/d{i}.toml": f'[tasks.t{i}]\ncmd = "echo {i}"\n' for i in range(20)}
    repo = make_repo(files)
    with Repo(repo.path) as r:
        r.load(r.resolve())
        assert r.parsed == 20
        repo.commit({"dags/d3.toml": '[tasks.t3]\ncmd = "echo three"\n'})
        snap = r.load(r.resolve())
        assert r.parsed == 21
        assert snap.dags["d3"].dag.tasks["t3"].cmd == "echo three" and len(snap.dags) == 20
        repo.commit(remove=("dags/d4.toml",))
        assert "d4" not in r.load(r.resolve()).dags and r.parsed == 21


def test_same_blob_at_two_paths_is_two_dags(make_repo):
    repo = make_repo({"dags/x.toml": B, "dags/y.toml": B})
    with Repo(repo.path) as r:
        assert sorted(r.load(r.resolve()).dags) == ["x", "y"] and r.parsed == 2


def test_duplicate_dag_ids_are_a_problem_in_both_files(make_repo):
    repo = make_repo({"dags/a.toml": A, "dags/b.toml": '[dag]\nid = "a"\n[tasks.x]\ncmd = "x"\n', "dags/c.toml": B})
    with Repo(repo.path) as r:
        snap = r.load(r.resolve())
    assert sorted(snap.dags) == ["c"]
    assert [str(p) for p in snap.problems] == [
        "dags/a.toml:1: DAG id 'a' is also defined in dags/b.toml; DAG ids must be unique",
        "dags/b.toml:2: DAG id 'a' is also defined in dags/a.toml; DAG ids must be unique",
    ]
    assert snap.problems_for("dags/b.toml") == [snap.problems[1]] and not snap.valid


def test_invalid_and_non_text_files_are_problems_not_crashes(make_repo):
    repo = make_repo({"dags/ok.toml": B, "dags/bad.toml": "[tasks.a]\nretrys = 1\n"})
    (repo.path / "dags" / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    repo.commit()
    with Repo(repo.path) as r:
        snap = r.load(r.resolve())
    assert sorted(snap.dags) == ["ok"]
    assert [str(p) for p in snap.problems] == [
        "dags/bad.toml:1: task 'a' needs exactly one of cmd, argv, call",
        "dags/bad.toml:2: unknown key 'retrys' in [tasks.a] (did you mean 'retries'?)",
        "dags/bin.toml:1: not a UTF-8 text file",
    ]
    assert [str(p) for p in load_worktree(repo.path).problems][-1] == "dags/bin.toml:1: not a UTF-8 text file"


def test_symlinked_dag_file_is_a_problem(make_repo):
    repo = make_repo({"shared/a.toml": A})
    (repo.path / "dags").mkdir()
    (repo.path / "dags" / "link.toml").symlink_to("../shared/a.toml")
    repo.commit()
    with Repo(repo.path) as r:
        snap = r.load(r.resolve())
        assert r.dag_files(r.resolve()) == {}
    assert [str(p) for p in snap.problems] == ["dags/link.toml:1: is a symbolic link; DAG files must be regular files"]
    assert load_worktree(repo.path).problems == snap.problems


def test_repository_without_dags_directory(make_repo):
    repo = make_repo({"README": "hi"})
    with Repo(repo.path) as r:
        snap = r.load(r.resolve())
    assert snap.dags == {} and snap.paths == () and snap.valid


def test_checkout_is_read_only_reused_and_safe_under_races(make_repo, tmp_path):
    repo = make_repo({"dags/a.toml": A, "scripts/run.sh": "#!/bin/sh\necho hi\n"})
    os.chmod(repo.path / "scripts" / "run.sh", 0o755)
    sha = repo.commit(message="exec bit")
    (repo.path / "dags" / "a.toml").write_text("uncommitted")
    root = tmp_path / "checkouts"
    results: list[Path] = []

    def work() -> None:
        with Repo(repo.path) as r:
            results.append(r.checkout(sha, root))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [root / sha] * 4
    assert sorted(p.name for p in root.iterdir()) == [sha]  # no temporary directories left
    target = root / sha
    assert (target / "dags" / "a.toml").read_text() == A
    mode = (target / "scripts" / "run.sh").stat().st_mode
    assert mode & stat.S_IXUSR and not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not (target / "dags").stat().st_mode & stat.S_IWUSR
    before = (target / "dags").stat().st_ino
    with Repo(repo.path) as r:
        assert r.checkout("HEAD", root) == target and (target / "dags").stat().st_ino == before


@pytest.mark.parametrize("case, message", [
    ("missing", "repository {p} does not exist"),
    ("plain", "{p} is not a Git repository"),
    ("empty", "repository {p} has no commits yet"),
])
def test_open_errors(case, message, tmp_path, make_repo):
    path = tmp_path / case
    if case == "plain":
        path.mkdir()
    if case == "empty":
        path = make_repo(name="empty").path
    with pytest.raises(RepoError) as info:
        Repo(path)
    assert str(info.value).startswith(message.format(p=path)) and "\n" not in str(info.value)


def test_unknown_branch(make_repo):
    repo = make_repo({"dags/a.toml": A})
    with pytest.raises(RepoError, match=r"unknown branch 'mian' in .* \(did you mean 'main'\?\) \(branches: main\)"):
        Repo(repo.path, branch="mian")


def test_worktree_of_missing_directory(tmp_path):
    with pytest.raises(RepoError, match="does not exist"):
        load_worktree(tmp_path / "nope")


def test_checkout_removes_temporary_trees_of_crashed_processes_only(make_repo, tmp_path):
    repo = make_repo({"dags/a.toml": A})
    root = tmp_path / "checkouts"
    crashed, busy = root / f".{repo.head()}.crashed", root / f".{repo.head()}.busy"
    (crashed / "sub").mkdir(parents=True)
    (crashed / "sub").chmod(0o555)
    os.utime(crashed, (1, 1))
    busy.mkdir()
    with Repo(repo.path) as r:
        r.checkout(repo.head(), root)
    assert sorted(p.name for p in root.iterdir()) == sorted([repo.head(), busy.name])


def test_bad_sha_is_a_repo_error_everywhere(make_repo):
    repo = make_repo({"dags/a.toml": A})
    with Repo(repo.path) as r:
        for call in (r.commit_info, r.dag_files, r.load):
            with pytest.raises(RepoError, match="unknown revision '0000000000'"):
                call("0000000000")


def test_checkout_into_an_unwritable_place_is_one_line(make_repo, tmp_path):
    repo = make_repo({"dags/a.toml": A})
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with Repo(repo.path) as r, pytest.raises(RepoError, match=r"cannot check out [0-9a-f]{8} into .*file"):
        r.checkout(repo.head(), blocker)
