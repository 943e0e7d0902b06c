#!/usr/bin/env python3
"""Workload 3: reloading a repository of 1,000 DAG files of 20 tasks each.

Builds the repository once (real Git commits), then times, median of REPEATS:
  cold load      `Repo(path).load(head)` with a fresh Repo (empty blob cache)
  cached load    the same with the parses another process left in STATE/cache/dags/ (info:
                 what the next CLI command and a restarted daemon do)
  daemon cold    what the daemon's reload does at start: resolve the head, load it, record
                 the registry (STATE/dags.json, reloads.jsonl) and read it back
  one file       commit a change to one file, then the warm Repo loads the new head
  daemon one     the same through the daemon's reload steps (load + registry)
  site           the DAG pages and index the daemon re-renders after such a reload (info)
Budgets: cold <= 3 s, one-file change <= 50 ms.

    python3 bench/bench_reload.py [--quick] [--profile]
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from common import Figure, cleanup, commit, main, make_repo, median_time, profile, scratch
from shapes import pipeline

from gitflowd import registry
from gitflowd.parsecache import ParseCache
from gitflowd.repo import Repo, Snapshot
from gitflowd.site import Site

FILES, QUICK_FILES = 1000, 100
TASKS = 20
REPEATS = 3
COLD_BUDGET, CHANGE_BUDGET_MS = 3.0, 50.0
CHANGED = "p0007"


def build(root: Path, files: int) -> Path:
    texts = {f"dags/{name}.toml": pipeline(name, TASKS) for name in names(files)}
    return make_repo(root / "repo", texts, f"{files} pipelines")


def names(files: int) -> list[str]:
    return [f"p{i:04d}" for i in range(files)]


def load_head(repo: Repo, files: int) -> Snapshot:
    snapshot = repo.load(repo.resolve())
    if len(snapshot.dags) != files or snapshot.problems:  # a benchmark of failures is no benchmark
        raise SystemExit(f"bench_reload: expected {files} valid DAGs, got {len(snapshot.dags)}: {snapshot.problems[:3]}")
    return snapshot


def cold_load(path: Path, files: int) -> None:
    with Repo(path) as repo:
        load_head(repo, files)


def cached_load(path: Path, cache: Path, files: int) -> None:
    with Repo(path, parse_cache=ParseCache(cache)) as repo:
        load_head(repo, files)
        assert repo.parsed == 0, "every file's parse must come from the cache"


def daemon_reload(repo: Repo, state: Path, files: int) -> list[registry.DagChange]:
    """The steps of Daemon.reload before its render: resolve, load, record, read back."""
    changes = registry.record_snapshot(state, load_head(repo, files), datetime.now(timezone.utc))
    active = {k: v for k, v in registry.read_registry(state).dags.items() if not v.retired}
    assert len(active) == files
    return changes


def daemon_cold(path: Path, root: Path, files: int) -> None:
    state = Path(tempfile.mkdtemp(prefix="state-cold-", dir=root))  # deleting the last one's 1,000 files is no part of a start
    with Repo(path) as repo:
        daemon_reload(repo, state, files)


class Changer:
    """A warm Repo and state; each step commits a new version of one file and reloads."""

    def __init__(self, path: Path, root: Path, files: int):
        self.path, self.files, self.variant = path, files, 0
        self.repo = Repo(path)
        self.state, self.site = root / "state", root / "site"
        daemon_reload(self.repo, self.state, files)
        self.renderer = Site(self.state, self.site)
        start = time.perf_counter()
        self.renderer.render_dags(names(files))
        self.cold_render = time.perf_counter() - start

    def commit_one(self) -> None:
        self.variant += 1
        commit(self.path, {f"dags/{CHANGED}.toml": pipeline(CHANGED, TASKS, variant=self.variant)}, f"change {self.variant}")

    def load(self) -> float:
        self.commit_one()
        parsed = self.repo.parsed
        start = time.perf_counter()
        load_head(self.repo, self.files)
        elapsed = time.perf_counter() - start
        assert self.repo.parsed == parsed + 1, "a one-file change must parse one file"
        return elapsed

    def reload(self) -> float:
        self.commit_one()
        start = time.perf_counter()
        changes = daemon_reload(self.repo, self.state, self.files)
        elapsed = time.perf_counter() - start
        assert [c.dag_id for c in changes] == [CHANGED], changes
        return elapsed

    def reload_and_render(self) -> float:
        self.commit_one()
        start = time.perf_counter()
        changes = daemon_reload(self.repo, self.state, self.files)
        self.renderer.render_dags([c.dag_id for c in changes])
        return time.perf_counter() - start

    def close(self) -> None:
        self.repo.close()


def median_of(fn) -> float:
    return sorted(fn() for _ in range(REPEATS))[REPEATS // 2]


def figures(quick: bool = False) -> list[Figure]:
    files = QUICK_FILES if quick else FILES
    size = f"{files:,} files x {TASKS} tasks"
    root = scratch("reload")
    try:
        path = build(root, files)
        cold = median_time(REPEATS, lambda: cold_load(path, files))
        dcold = median_time(REPEATS, lambda: daemon_cold(path, root, files))
        with Repo(path, parse_cache=ParseCache(root / "parse-cache")) as repo:
            load_head(repo, files)  # fills the cache, as the command before would have
        cached = median_time(REPEATS, lambda: cached_load(path, root / "parse-cache", files))
        changer = Changer(path, root, files)
        try:
            one, done, rendered = median_of(changer.load), median_of(changer.reload), median_of(changer.reload_and_render)
        finally:
            changer.close()
    finally:
        cleanup(root)
    w = "3 reload"
    return [
        Figure(w, f"cold load of the head, Repo.load ({size})", cold, "s", COLD_BUDGET),
        Figure(w, "cold daemon reload (load + registry)", dcold, "s", COLD_BUDGET),
        Figure(w, "cold load, parses from the on-disk cache (next command, daemon restart)", cached, "s", reference="info"),
        Figure(w, "one-file change, Repo.load of the new head", one * 1000, "ms", CHANGE_BUDGET_MS),
        Figure(w, "one-file change, daemon reload (load + registry)", done * 1000, "ms", CHANGE_BUDGET_MS),
        Figure(w, "one-file change, reload + site (its DAG page, index)", rendered * 1000, "ms", reference="info"),
        Figure(w, f"site after a cold reload ({files:,} DAG pages + index)", changer.cold_render, "s", reference="info"),
    ]


def profiles(quick: bool = False) -> None:
    files = QUICK_FILES if quick else FILES
    root = scratch("reload-profile")
    try:
        path = build(root, files)
        print("## cold load\n" + profile(lambda: cold_load(path, files)))
        changer = Changer(path, root, files)
        changer.commit_one()
        changes: list[registry.DagChange] = []
        print("## one-file change, daemon reload\n" + profile(lambda: changes.extend(daemon_reload(changer.repo, changer.state, files))))
        print("## one-file change, site render\n" + profile(lambda: changer.renderer.render_dags([c.dag_id for c in changes])))
        changer.close()
    finally:
        cleanup(root)


if __name__ == "__main__":
    main(figures, profiles)
