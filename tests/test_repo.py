"""Repo on real Git repositories: snapshots from Git objects, the blob cache, checkouts, errors."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import stat
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import git, run_cli
from gitflowd.errors import RepoError
from gitflowd.repo import Repo, _parse, load_worktree

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
        with pytest.raises(RepoError, match="names a blob, not a commit"):
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


def test_the_problems_of_a_dag_are_found_by_the_id_its_file_declares(make_repo):
    """`gitflowd run ID` of an invalid file that sets `[dag] id`, or of an id two files claim
    under other names, said 'unknown DAG' instead of showing the files' problems."""
    same = '[dag]\nid = "same"\n[tasks.x]\ncmd = "x"\n'
    repo = make_repo({"dags/s1.toml": same, "dags/s2.toml": same, "dags/c.toml": B,
                      "dags/broken.toml": '[dag]\nid = "brk"\n[tasks.x]\ncmd = "x"\nretrys = 1\n',
                      "dags/syntax.toml": "[tasks.x\n", "dags/named.toml": '[dag]\nid = "other"\n[tasks.x]\ncmd = "x"\n',
                      "dags/sx.toml": '# x\n[ dag ]  # the id survives a syntax error elsewhere\nid = "sxid"\n[tasks.x\n'})
    with Repo(repo.path) as r:
        snap = r.load(r.resolve())
    assert [p.path for p in snap.problems_of("same")] == ["dags/s1.toml", "dags/s2.toml"]
    assert [p.line for p in snap.problems_of("brk")] == [5] and snap.problems_of("brk") == snap.problems_of("broken")
    assert [p.path for p in snap.problems_of("syntax")] == ["dags/syntax.toml"]
    assert [p.path for p in snap.problems_of("sxid")] == ["dags/sx.toml"] and snap.declared["dags/syntax.toml"] == "syntax"
    assert snap.problems_of("c") == [] and snap.problems_of("other") == [] and snap.problems_of("named") == []
    assert snap.defined_in("named") == " (dags/named.toml defines DAG 'other')" and snap.defined_in("c") == ""


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


def test_a_filter_jinja_does_not_know_is_a_problem_of_its_file(make_repo):
    repo = make_repo({"dags/ok.toml": B, "dags/t1.toml": '[tasks.a]\ncmd = "echo {{ ds | bogus }}"\n'})
    with Repo(repo.path) as r:
        snap = r.load(r.resolve())
    assert sorted(snap.dags) == ["ok"]
    assert [str(p) for p in snap.problems] == ["dags/t1.toml:2: [tasks.a] cmd: invalid template: No filter named 'bogus'"]


def test_a_crash_of_the_loader_is_a_problem_of_that_file_logged_with_its_traceback(caplog):
    with caplog.at_level(logging.WARNING, logger="gitflowd.repo"):
        dag, problems = _parse("dags/x.toml", b"[tasks.a]")  # type: ignore[arg-type]  # bytes: load_dag fails inside
    assert dag is None and len(problems) == 1
    message = str(problems[0])
    assert message.startswith("dags/x.toml:1: cannot load dags/x.toml: TypeError: ")
    assert message.endswith("(a bug in gitflowd: please report it)") and "\n" not in message
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "dags/x.toml" in record.getMessage() and record.exc_info


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


# -- the git command underneath (gitcli.py) ---------------------------------------------


def _cat_file_children() -> list[int]:
    """Live `git cat-file` processes whose parent is this test process."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[1]) == os.getpid() and b"cat-file" in cmdline:
            found.append(int(entry.name))
    return found


def test_blob_reader_process_is_replaced_after_it_is_killed_and_reaped_on_close(make_repo):
    repo = make_repo({"dags/a.toml": A, "dags/b.toml": B})
    with Repo(repo.path) as r:
        assert _cat_file_children() == []  # started by the first read, not by opening
        blobs = r.dag_files(r.resolve())
        assert r.read_blob(blobs["dags/a.toml"]) == A
        [first] = _cat_file_children()
        os.kill(first, signal.SIGKILL)
        assert r.read_blob(blobs["dags/b.toml"]) == B
        second = _cat_file_children()
        assert len(second) == 1 and second != [first]
        assert r.read_blob(blobs["dags/a.toml"]) == A  # the new process keeps serving
    assert _cat_file_children() == []


def test_missing_blob_is_a_repo_error_not_a_bad_file(make_repo):
    repo = make_repo({"dags/a.toml": A})
    blob = git(repo.path, "rev-parse", "HEAD:dags/a.toml")
    (repo.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # a corrupt repository
    with Repo(repo.path) as r:
        with pytest.raises(RepoError, match=f"blob {blob[:8]} is missing from "):
            r.load(r.resolve())
        with pytest.raises(RepoError, match=f"blob {blob[:8]} is missing from "):
            r.read_blob(blob)


def _raw_commit(repo: Path, author: bytes, message: bytes, encoding: bytes | None = None) -> str:
    """A commit object written byte for byte (`git commit` would fix invalid UTF-8 up)."""
    tree, parent = git(repo, "rev-parse", "HEAD^{tree}"), git(repo, "rev-parse", "HEAD")
    header = b"tree %s\nparent %s\nauthor %s <a@example.com> 1700000000 +0100\ncommitter c <c@example.com> 1700000000 +0100\n" % (
        tree.encode(), parent.encode(), author)
    body = header + (b"encoding %s\n" % encoding if encoding else b"") + b"\n" + message
    done = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=repo, input=body, capture_output=True, check=True)
    return done.stdout.decode().strip()


def test_non_utf8_commit_subject_and_author(make_repo):
    repo = make_repo({"dags/a.toml": A})
    raw = _raw_commit(repo.path, b"Jos\xe9", b"caf\xe9 au lait\n\nbody\n")  # no encoding header: bytes as they are
    latin = _raw_commit(repo.path, b"Jos\xe9", b"caf\xe9 au lait\n", encoding=b"ISO-8859-1")  # git re-encodes it
    with Repo(repo.path) as r:
        info = r.commit_info(raw)
        assert (info.subject, info.author, info.email) == ("caf\ufffd au lait", "Jos\ufffd", "a@example.com")
        assert info.time == datetime(2023, 11, 14, 23, 13, 20, tzinfo=timezone(timedelta(hours=1)))
        assert (r.commit_info(latin).subject, r.commit_info(latin).author) == ("café au lait", "José")
        assert r.load(raw).commit.subject == "caf\ufffd au lait" and list(r.load(raw).dags) == ["a"]


def test_first_line_of_a_multi_line_subject(make_repo, tmp_path):
    repo = make_repo({"dags/a.toml": A})
    (tmp_path / "message").write_text("line one\nline two\n\nbody\n")
    git(repo.path, "commit", "-q", "--allow-empty", "-F", str(tmp_path / "message"))
    with Repo(repo.path) as r:
        assert r.commit_info(r.resolve()).subject == "line one"


def test_repository_path_with_spaces(make_repo, tmp_path):
    repo = make_repo({"dags/team a/a.toml": A}, name="my pipelines")
    bare = tmp_path / "bare copy.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo.path), str(bare))
    for path in (repo.path, bare):
        with Repo(path) as r:
            snap = r.load(r.resolve())
            assert snap.paths == ("dags/team a/a.toml",) and list(snap.dags) == ["a"] and snap.valid
            assert (r.checkout(r.resolve(), tmp_path / "check outs") / "dags" / "team a" / "a.toml").read_text() == A


def test_git_environment_variables_do_not_redirect_gitflowd(make_repo, monkeypatch):
    ours = make_repo({"dags/ours.toml": A})
    other = make_repo({"dags/other.toml": B})
    head = ours.head()
    monkeypatch.setenv("GIT_DIR", str(other.path / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other.path))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other.path / ".git" / "index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(other.path / ".git" / "objects"))
    with Repo(ours.path) as r:
        assert r.git_dir == ours.path / ".git" and r.resolve() == head
        assert list(r.load(r.resolve()).dags) == ["ours"]
    done = run_cli("--repo", str(ours.path), "list", env={"GIT_DIR": str(other.path / ".git"), "GIT_WORK_TREE": str(other.path)})
    assert done.returncode == 0, done.stderr
    assert "ours" in done.stdout and "other" not in done.stdout


def test_sub_directory_and_git_directory_name_the_top(make_repo):
    repo = make_repo({"dags/a.toml": A})
    for inner in (repo.path / "dags", repo.path / ".git", repo.path / ".git" / "refs"):
        with pytest.raises(RepoError, match=f"^{inner} is not the top of a Git repository \\(its top is {repo.path}\\)$"):
            Repo(inner)


def test_a_file_is_not_a_repository(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RepoError, match="file is not a Git repository"):
        Repo(tmp_path / "file")


def test_repository_deleted_under_an_open_repo(make_repo):
    repo = make_repo({"dags/a.toml": A})
    with Repo(repo.path) as r:
        sha = r.resolve()
        shutil.rmtree(repo.path)
        with pytest.raises(RepoError, match="repository .* does not exist$"):
            r.resolve()
        with pytest.raises(RepoError):
            r.load(sha)
        assert not r.is_ancestor(sha, sha)


def test_revisions_that_look_like_options_are_unknown(make_repo):
    repo = make_repo({"dags/a.toml": A})
    with Repo(repo.path) as r:
        for rev in ("--all", "-h", "HEAD..HEAD"):
            with pytest.raises(RepoError, match="unknown revision"):
                r.resolve(rev)
        with pytest.raises(RepoError, match="names a tree, not a commit"):
            r.resolve("HEAD^{tree}")
        assert not r.is_ancestor("--all", r.resolve())


def test_repository_of_another_user_is_one_line_naming_the_fix(make_repo, tmp_path, monkeypatch):
    repo = make_repo({"dags/a.toml": A})
    if os.geteuid() == 0:  # really another user's
        for dirpath, dirnames, filenames in os.walk(repo.path):
            for name in (".", *dirnames, *filenames):
                os.lchown(os.path.join(dirpath, name), 65534, 65534)
    else:  # giving it away needs root: git's own switch for its ownership check (git >= 2.35.2)
        monkeypatch.setenv("GIT_TEST_ASSUME_DIFFERENT_OWNER", "1")
    monkeypatch.setenv("HOME", str(tmp_path))  # no safe.directory from the real global config
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    with pytest.raises(RepoError) as info:
        Repo(repo.path)
    assert str(info.value) == (f"git refuses {repo.path}: it belongs to another user "
                               f"(allow it with: git config --global --add safe.directory {repo.path})")


@pytest.mark.parametrize("author", [
    b"Ana <ana@example.com> 1700000000 +0530", b"Bo Li <bo@example.com> 1700000000 -0700",
    b"<nobody@example.com> 1700000000 +0000", b"Zed Z. <z@example.com> 0 -0000",
])
def test_commit_info_is_what_git_log_shows(make_repo, author):
    """Commits are parsed from the raw object: the same author, email, time and subject as `git log`."""
    repo = make_repo({"dags/a.toml": A})
    tree = git(repo.path, "rev-parse", "HEAD^{tree}")
    signature = b"gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEz\n -----END PGP SIGNATURE-----\n"
    body = b"tree %s\nauthor %s\ncommitter c <c@example.com> 1 +0000\n%s\nsubject line\n\nbody\n" % (
        tree.encode(), author, signature)
    sha = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=repo.path, input=body,
                         capture_output=True, check=True).stdout.decode().strip()
    name, email, when = git(repo.path, "log", "-1", "--format=%an%x00%ae%x00%aI", sha).split("\0")
    with Repo(repo.path) as r:
        info = r.commit_info(sha)
        assert (info.sha, info.subject, info.author, info.email) == (sha, "subject line", name, email)
        assert info.time == datetime.fromisoformat(when) and info.time.utcoffset() == datetime.fromisoformat(when).utcoffset()
        assert list(r.load(sha).dags) == ["a"]


def test_damaged_author_line_still_loads(make_repo):
    repo = make_repo({"dags/a.toml": A})
    tree = git(repo.path, "rev-parse", "HEAD^{tree}")
    body = b"tree %s\nauthor somebody\ncommitter c <c@example.com> 1 +0000\n\nodd\n" % tree.encode()
    sha = subprocess.run(["git", "hash-object", "--literally", "-t", "commit", "-w", "--stdin"], cwd=repo.path,
                         input=body, capture_output=True, check=True).stdout.decode().strip()
    with Repo(repo.path) as r:
        info = r.commit_info(sha)
        assert (info.subject, info.author, info.email) == ("odd", "somebody", "")
        assert info.time == datetime.fromtimestamp(0, timezone.utc) and list(r.load(sha).dags) == ["a"]


def test_submodule_named_toml_and_a_dags_file_are_not_dags(make_repo):
    repo = make_repo({"dags/a.toml": A})
    head = repo.head()
    git(repo.path, "update-index", "--add", "--cacheinfo", f"160000,{head},dags/mod.toml")
    git(repo.path, "commit", "-q", "-m", "submodule")
    with Repo(repo.path) as r:
        assert r.load(r.resolve()).paths == ("dags/a.toml",)
    flat = make_repo({"dags": "not a directory\n"})
    with Repo(flat.path) as r:
        snap = r.load(r.resolve())
        assert snap.paths == () and snap.dags == {} and snap.valid


def test_sha256_repository(tmp_path):
    path = tmp_path / "sha256"
    path.mkdir()
    git(path, "init", "-q", "-b", "main", "--object-format=sha256")
    (path / "dags" / "deep").mkdir(parents=True)
    (path / "dags" / "deep" / "a.toml").write_text(A)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "sha-256")
    with Repo(path) as r:
        head = r.resolve()
        snap = r.load(head)
        assert len(head) == 64 and snap.commit.sha == head and snap.commit.subject == "sha-256"
        assert snap.paths == ("dags/deep/a.toml",) and list(snap.dags) == ["a"]
        assert snap.dags["a"].blob == git(path, "rev-parse", "HEAD:dags/deep/a.toml")
        assert (r.checkout(head, tmp_path / "co") / "dags" / "deep" / "a.toml").read_text() == A
