"""The on-disk parse cache: a later Repo (another process) reuses parses, and never wrong ones."""

from __future__ import annotations

import os
from pathlib import Path

from gitflowd import parsecache
from gitflowd.parsecache import ParseCache
from gitflowd.repo import Repo

GOOD = """[dag]
schedule = "@daily"
start_date = 2026-01-01T06:00:00+09:00
params = { region = "seoul" }

[tasks.a]
cmd = "echo {{ ds }}"
retries = 2
timeout = "5m"

[tasks.b]
argv = ["true"]
deps = ["a"]
trigger_rule = "all_done"
"""
BAD = "[dag]\nschedul = '@daily'\n\n[tasks.x]\ncmd = 'true'\n"


def _load(path: Path, cache: Path) -> tuple[object, int]:
    with Repo(path, parse_cache=ParseCache(cache)) as repo:
        snapshot = repo.load(repo.resolve(None))
        return snapshot, repo.parsed


def test_a_second_repo_reuses_every_parse_with_the_same_dags_and_problems(make_repo, tmp_path: Path) -> None:
    repo = make_repo({"dags/good.toml": GOOD, "dags/bad.toml": BAD})
    first, parsed_first = _load(repo.path, tmp_path / "cache")
    second, parsed_second = _load(repo.path, tmp_path / "cache")
    assert (parsed_first, parsed_second) == (2, 0)
    assert second.dags["good"].dag == first.dags["good"].dag
    assert second.dags["good"].source == GOOD
    assert second.problems == first.problems and "schedul" in str(second.problems[0])


def test_only_changed_files_are_parsed_again(make_repo, tmp_path: Path) -> None:
    repo = make_repo({"dags/good.toml": GOOD, "dags/other.toml": GOOD})
    _load(repo.path, tmp_path / "cache")
    repo.commit({"dags/other.toml": GOOD.replace("retries = 2", "retries = 3")})
    snapshot, parsed = _load(repo.path, tmp_path / "cache")
    assert parsed == 1 and snapshot.dags["other"].dag.tasks["a"].retries == 3


def test_the_same_blob_under_another_path_is_another_dag(make_repo, tmp_path: Path) -> None:
    # the file stem is the DAG id: the path is part of the key, not only the blob
    repo = make_repo({"dags/one.toml": GOOD})
    _load(repo.path, tmp_path / "cache")
    repo.commit({"dags/two.toml": GOOD}, remove=("dags/one.toml",))
    snapshot, parsed = _load(repo.path, tmp_path / "cache")
    assert parsed == 1 and list(snapshot.dags) == ["two"]


def test_a_damaged_entry_is_parsed_again_and_rewritten(make_repo, tmp_path: Path) -> None:
    repo = make_repo({"dags/good.toml": GOOD})
    first, _ = _load(repo.path, tmp_path / "cache")
    (entry,) = (tmp_path / "cache").iterdir()
    for damage in (b"", b'{"dag": {"id": 1}, "problems": []}', b"\x00garbage"):
        entry.write_bytes(damage)
        snapshot, parsed = _load(repo.path, tmp_path / "cache")
        assert parsed == 1 and snapshot.dags["good"].dag == first.dags["good"].dag
        assert _load(repo.path, tmp_path / "cache")[1] == 0  # rewritten whole


def test_an_unusable_cache_directory_changes_nothing_but_speed(make_repo, tmp_path: Path) -> None:
    repo = make_repo({"dags/good.toml": GOOD})
    (tmp_path / "in-the-way").write_text("a file where the directory should be")
    snapshot, parsed = _load(repo.path, tmp_path / "in-the-way" / "dags")
    assert parsed == 1 and list(snapshot.dags) == ["good"]


def test_other_gitflowd_code_never_reads_these_parses(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "package"
    package.mkdir()
    (package / "loader.py").write_text("# version 1\n")
    monkeypatch.setattr(parsecache, "_PACKAGE", package)
    parsecache.code_fingerprint.cache_clear()
    try:
        before = parsecache.code_fingerprint()
        (package / "loader.py").write_text("# version 2\n")  # the same size: the mtime tells
        os.utime(package / "loader.py", ns=(1, 1))
        parsecache.code_fingerprint.cache_clear()
        assert parsecache.code_fingerprint() != before
    finally:
        parsecache.code_fingerprint.cache_clear()


def test_prune_keeps_the_newest_entries(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"{i:02d}.json").write_text("{}")
        os.utime(tmp_path / f"{i:02d}.json", ns=(i * 10**9, i * 10**9))
    parsecache.prune(tmp_path, keep=20)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i:02d}.json" for i in range(12, 30)]


def test_cli_commands_share_parses_but_validate_creates_no_state(make_repo, cli) -> None:
    repo = make_repo({"dags/good.toml": GOOD, "dags/bad.toml": BAD})
    assert cli("--repo", str(repo.path), "validate").returncode == 1
    assert not (repo.path / ".gitflowd").exists()
    state = repo.path.parent / "state"
    first = cli("--repo", str(repo.path), "--state", str(state), "run", "good", "--no-render")
    assert first.returncode == 0, first.stderr
    outputs = []
    for _ in range(2):  # the state directory exists now: the first parses and keeps, the second reuses
        checked = cli("--repo", str(repo.path), "--state", str(state), "validate")
        outputs.append((checked.returncode, checked.stdout, checked.stderr))
        assert len(list((state / "cache" / "dags").iterdir())) == 2
    assert outputs[0] == outputs[1] and outputs[0][0] == 1 and "bad.toml:2: unknown key" in outputs[0][1]
