"""Repo on repositories that are not tidy: what a new user's repository throws at gitflowd."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections import Counter

import pytest
from conftest import git

from gitflowd.errors import RepoError
from gitflowd.repo import Repo, load_worktree

A = '[tasks.a]\ncmd = "sh scripts/run.sh"\n'


def test_checkout_keeps_export_ignore_and_export_subst_files_as_committed(make_repo, tmp_path):
    repo = make_repo({
        "dags/a.toml": A,
        ".gitattributes": "scripts/secret.sh export-ignore\nscripts/version.txt export-subst\n",
        "scripts/secret.sh": "echo secret\n",
        "scripts/version.txt": "$Format:%H$\n",
        "scripts/run.sh": "#!/bin/sh\necho hi\n",
    })
    (repo.path / "scripts" / "run.sh").chmod(0o755)
    os.symlink("run.sh", repo.path / "scripts" / "link.sh")
    head = repo.commit(message="exec bit and a link")
    git(repo.path, "config", "core.symlinks", "false")  # as a clone made on Windows has it
    git(repo.path, "config", "core.autocrlf", "true")
    with Repo(repo.path) as r:
        tree = r.checkout(head, tmp_path / "co")
    assert (tree / "scripts" / "secret.sh").read_text() == "echo secret\n"  # git archive dropped it
    assert (tree / "scripts" / "version.txt").read_text() == "$Format:%H$\n"  # git archive rewrote it
    assert (tree / "scripts" / "run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"  # no CR from core.autocrlf
    assert (tree / "scripts" / "run.sh").stat().st_mode & stat.S_IXUSR
    assert os.readlink(tree / "scripts" / "link.sh") == "run.sh"
    assert sorted(p.name for p in tree.parent.iterdir()) == [head]  # no temporary index left
    assert git(repo.path, "status", "--porcelain") == ""  # the repository's own index untouched


def test_an_ambiguous_abbreviated_sha_is_said_to_be_ambiguous(make_repo, tmp_path):
    repo = make_repo({"dags/a.toml": A})
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for i in range(1500):  # enough objects that two shas share their first 4 digits (fixed contents: always the same)
        (blobs / str(i)).write_text(f"{i}\n")
    listing = "\n".join(str(blobs / str(i)) for i in range(1500))
    shas = subprocess.run(["git", "hash-object", "-w", "--stdin-paths"], cwd=repo.path, input=listing,
                          capture_output=True, text=True, check=True).stdout.split()
    prefix = next(p for p, n in Counter(s[:4] for s in shas).items() if n > 1)
    with Repo(repo.path) as r:
        with pytest.raises(RepoError, match=rf"^revision '{prefix}' is ambiguous in .*give more digits"):
            r.resolve(prefix)
        with pytest.raises(RepoError, match=r"^unknown revision 'nosuch' in "):
            r.load("nosuch")
        assert r.resolve(repo.head()[:7]) == repo.head()


def test_a_git_lfs_pointer_where_a_dag_should_be_says_so(make_repo):
    pointer = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
    repo = make_repo({"dags/a.toml": A, "dags/big.toml": pointer})
    with Repo(repo.path) as r:
        snap = r.load(repo.head())
    assert list(snap.dags) == ["a"]
    assert [(p.path, p.line, p.message) for p in snap.problems] == [
        ("dags/big.toml", 1, "is a Git LFS pointer, not the DAG's TOML: keep DAG files out of LFS "
                             "(git lfs untrack dags/big.toml)")]


def test_a_dags_link_or_submodule_is_a_problem_not_silence(make_repo):
    linked = make_repo({"pipelines/a.toml": A})
    os.symlink("pipelines", linked.path / "dags")  # the work tree shows dags/a.toml; the commit has a link
    linked.commit(message="dags as a link")
    sub = make_repo({"README": "x\n"})
    git(sub.path, "update-index", "--add", "--cacheinfo", f"160000,{sub.head()},dags")
    git(sub.path, "commit", "-q", "-m", "dags as a submodule")
    fine = make_repo({"dags/a.toml": A})
    with Repo(linked.path) as a, Repo(sub.path) as b, Repo(fine.path) as c:
        assert [str(p) for p in a.load(linked.head()).problems] == [
            "dags:1: is a symbolic link (to pipelines); gitflowd reads DAG files from a real dags/ directory in the commit"]
        assert [str(p) for p in b.load(sub.head()).problems] == [
            "dags:1: is a submodule; gitflowd reads DAG files from a dags/ directory of the repository itself"]
        assert c.load(fine.head()).valid and a.dag_files(linked.head()) == {}


def test_a_revision_beyond_a_shallow_clone_says_the_clone_is_shallow(make_repo, tmp_path):
    origin = make_repo({"dags/a.toml": A})
    origin.commit({"dags/b.toml": A}, message="second")
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin.path}", "shallow")
    with Repo(tmp_path / "shallow") as r:
        assert list(r.load(r.resolve("origin/main")).dags) == ["a", "b"]
        with pytest.raises(RepoError, match=r"^unknown revision 'HEAD~1' in .*shallow: a shallow clone, .*--unshallow"):
            r.resolve("HEAD~1")
    with Repo(origin.path) as r, pytest.raises(RepoError, match=r"^unknown revision 'HEAD~2' in \S+$"):
        r.resolve("HEAD~2")


def test_a_failing_upstream_or_reflog_revision_is_named_and_leaves_the_reader_alive(make_repo):
    repo = make_repo({"dags/a.toml": A})
    first = repo.head()
    repo.commit({"dags/b.toml": A}, message="second")
    with Repo(repo.path) as r:
        assert r.resolve() == repo.head()
        reader = r._objects.pid
        with pytest.raises(RepoError, match=r"^unknown revision 'HEAD@\{upstream\}' in \S+: no upstream configured"):
            r.resolve("HEAD@{upstream}")  # cat-file died of it: 'cannot read repository: git cat-file stopped'
        with pytest.raises(RepoError, match=r"^unknown revision 'main@\{99\}' in \S+$"):
            r.load("main@{99}")
        assert r.resolve("main@{1}") == first and list(r.load("main@{1}").dags) == ["a"]
        assert r._objects.pid == reader


def test_a_revision_naming_a_tree_or_a_blob_says_what_it_names(make_repo):
    repo = make_repo({"dags/a.toml": A})
    git(repo.path, "tag", "tree-tag", "HEAD^{tree}")
    git(repo.path, "tag", "-a", "-m", "annotated", "blob-tag", "HEAD:dags/a.toml")
    blob = git(repo.path, "rev-parse", "HEAD:dags/a.toml")
    with Repo(repo.path) as r:
        for rev, kind in (("tree-tag", "tree"), ("blob-tag", "blob"), ("HEAD:dags", "tree"), (blob, "blob")):
            with pytest.raises(RepoError, match=rf"^revision '{rev}' in \S+ names a {kind}, not a commit$"):
                r.resolve(rev)
        with pytest.raises(RepoError, match=rf"^revision 'tree-tag' in \S+ names a tree, not a commit$"):
            r.load("tree-tag")


def test_message_search_revisions_with_spaces_resolve(make_repo):
    repo = make_repo({"dags/a.toml": A})
    fixed = repo.commit({"dags/b.toml": A}, message="fix the bug")
    repo.commit(message="later")
    with Repo(repo.path) as r:
        assert r.resolve(":/fix the bug") == fixed == r.resolve("HEAD^{/fix the}") == r.resolve(":/fix")
        assert list(r.load(":/fix the").dags) == ["a", "b"]
        for rev in (":/no such message", "HEAD^{/no such}", "no such"):
            with pytest.raises(RepoError, match=rf"^unknown revision '{re.escape(rev)}' in \S+$"):
                r.resolve(rev)
        assert r.resolve() == repo.head()  # the reader still answers


def test_a_utf16_dag_file_is_named_as_utf16(make_repo):
    repo = make_repo({"dags/a.toml": A})
    (repo.path / "dags" / "win.toml").write_bytes(A.encode("utf-16"))  # with its BOM, as PowerShell's > writes
    repo.commit(message="utf-16")
    expected = ["dags/win.toml:1: is UTF-16 text; DAG files must be UTF-8 (save it as UTF-8)"]
    with Repo(repo.path) as r:
        assert [str(p) for p in r.load(repo.head()).problems] == expected
    assert [str(p) for p in load_worktree(repo.path).problems] == expected


def test_a_separate_git_dir_or_a_linked_worktrees_git_dir_points_to_its_work_tree(tmp_path, make_repo):
    work, separate = tmp_path / "work", tmp_path / "separate.git"
    git(tmp_path, "init", "-q", "-b", "main", "--separate-git-dir", str(separate), str(work))
    (work / "dags").mkdir()
    (work / "dags" / "a.toml").write_text(A)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "first")
    with Repo(work) as r:
        assert list(r.load(r.resolve()).dags) == ["a"]
    for path, where in ((separate, ""), (separate / "refs", f"inside {separate}, ")):
        with pytest.raises(RepoError, match=rf"^{re.escape(str(path))} is {re.escape(where)}the Git directory of a "
                                            "work tree elsewhere: pass --repo that work tree$"):
            Repo(path)
    main = make_repo({"dags/a.toml": A})
    git(main.path, "worktree", "add", "-q", str(tmp_path / "linked"))
    with pytest.raises(RepoError, match="the Git directory of a work tree elsewhere"):
        Repo(main.path / ".git" / "worktrees" / "linked")
    with Repo(tmp_path / "linked") as r:
        assert r.branch == "linked" and list(r.load(r.resolve()).dags) == ["a"]


def test_a_link_under_dags_to_a_directory_of_dag_files_is_a_problem(make_repo):
    repo = make_repo({"dags/a.toml": A, "team/nested/t.toml": A, "scripts/run.sh": "echo\n"})
    os.symlink("../team", repo.path / "dags" / "team")
    os.symlink("../scripts", repo.path / "dags" / "scripts")  # no DAG files there: fine
    os.symlink("/etc", repo.path / "dags" / "outside")  # outside the repository: not checked
    os.symlink("a.toml", repo.path / "dags" / "b.toml")
    repo.commit(message="links")
    with Repo(repo.path) as r:
        snap = r.load(repo.head())
        assert list(snap.dags) == ["a"] and r.dag_files(repo.head()) == {"dags/a.toml": snap.dags["a"].blob}
    assert [str(p) for p in snap.problems] == [
        "dags/b.toml:1: is a symbolic link; DAG files must be regular files",
        "dags/team:1: is a symbolic link to the directory team/; gitflowd does not follow links, "
        "so no DAG file under it is read"]


def test_a_worktree_whose_git_directory_went_says_where_its_dot_git_points(make_repo, tmp_path):
    main = make_repo({"dags/a.toml": A})
    git(main.path, "worktree", "add", "-q", str(tmp_path / "linked"))
    gone = main.path / ".git" / "worktrees" / "linked"
    gone.rename(tmp_path / "elsewhere")
    with pytest.raises(RepoError, match=rf"^{re.escape(str(tmp_path / 'linked'))}/\.git points to {re.escape(str(gone))}, "
                                        r"which is not a Git directory \(moved or deleted\? `git worktree repair`"):
        Repo(tmp_path / "linked")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepoError, match=r"is not a Git repository \(git init it, or pass --repo DIR\)$"):
        Repo(plain)
