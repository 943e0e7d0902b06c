"""What the site remembers between renders, so that one run costs one DAG page.

Flow: under `SITE/.cache/v4/` (a new layout gets a new directory, never a misread):
`<dag>/runs.json` holds every run of a DAG as a `RunRow`, oldest first; `<dag>/cells/<run>.json`
the task states of one run (read only for the runs a grid page shows); `index.json` each
DAG's line on the index; `skipped.json` the journals the last full render could not read. `upsert` places a run among the rows and says which grid pages
changed. A missing or unreadable cache is `CacheMissing`: the caller renders everything.
All of it is rebuilt by `Site.render_all()`; none of it is state.
"""

from __future__ import annotations

import bisect
import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gitflowd import sitedata
from gitflowd.atomic import write_atomic
from gitflowd.sitedata import RunRow

VERSION = "v4"  # v3: a RunRow holds the first start and the latest one; v4: and whether it was cleared

Cells = dict[str, tuple[str, int]]


class CacheMissing(Exception):
    """The cache cannot answer (first render, deleted or damaged): render everything."""


class SiteCache:
    def __init__(self, site_root: Path):
        self.dir = Path(site_root) / ".cache" / VERSION
        self._cells: dict[tuple[str, str], Cells] = {}

    def forget(self) -> None:
        """Drop what is held in memory (other processes may have written since)."""
        self._cells.clear()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One renderer at a time per site (daemon, run and render may overlap)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def rows(self, dag_id: str) -> list[RunRow]:
        path = self.dir / dag_id / "runs.json"
        try:
            return [RunRow.from_json(r) for r in self._read(path)]
        except (TypeError, ValueError, AttributeError) as exc:  # JSON, but not rows: a hand edit, another layout
            raise CacheMissing(f"{path}: {exc}") from None

    def save_rows(self, dag_id: str, rows: list[RunRow]) -> None:
        self._write(self.dir / dag_id / "runs.json", [r.to_json() for r in rows])

    def cells(self, dag_id: str, run_id: str) -> Cells:
        if (dag_id, run_id) not in self._cells:
            try:
                data = self._read(self.dir / dag_id / "cells" / f"{run_id}.json")
            except CacheMissing:
                data = {}  # a grid cell left blank is better than a full render
            self._cells[(dag_id, run_id)] = {t: (s, int(n)) for t, (s, n) in data.items()}
        return self._cells[(dag_id, run_id)]

    def save_cells(self, dag_id: str, run_id: str, cells: Cells) -> None:
        self._cells[(dag_id, run_id)] = cells
        self._write(self.dir / dag_id / "cells" / f"{run_id}.json", cells)

    def skipped(self) -> list[str]:
        """What the last full render could not read (journals left off the site)."""
        try:
            return list(self._read(self.dir / "skipped.json"))
        except CacheMissing:
            return []

    def save_skipped(self, errors: list[str]) -> None:
        self._write(self.dir / "skipped.json", errors)

    def index(self) -> dict[str, dict[str, Any]]:
        path = self.dir / "index.json"
        index = self._read(path)
        try:
            for entry in index.values():  # what the index page reads of each entry
                for row in entry["recent"]:
                    RunRow.from_json(row)
                int(entry["total"]), int(entry["running"])
        except (TypeError, ValueError, AttributeError, KeyError) as exc:  # JSON, but not the index
            raise CacheMissing(f"{path}: {exc!r}") from None
        return index

    def save_index(self, index: dict[str, dict[str, Any]]) -> None:
        self._write(self.dir / "index.json", index)

    def _read(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CacheMissing(f"{path}: {exc}") from None

    def _write(self, path: Path, data: Any) -> None:
        write_atomic(path, json.dumps(data, separators=(",", ":")))


def upsert(rows: list[RunRow], row: RunRow) -> set[int]:
    """Put `row` in place (rows stay sorted oldest first); returns the grid pages that changed.

    Pages count from the oldest run, so a new newest run changes only the last page (and the
    one before when a page is added: its "newer" link appears); a backfilled old run shifts
    the pages after it.
    """
    before = sitedata.page_count(rows)
    old = next((i for i in range(len(rows) - 1, -1, -1) if rows[i].run_id == row.run_id), None)
    if old is not None and rows[old].key == row.key:
        rows[old] = row
        return {sitedata.page_of(old)}
    if old is not None:
        del rows[old]
    position = bisect.bisect(rows, row.key, key=lambda r: r.key)
    rows.insert(position, row)
    first = min(position, old if old is not None else position)
    pages = set(range(sitedata.page_of(first), sitedata.page_count(rows) + 1))
    return pages | ({before} if sitedata.page_count(rows) > before else set())
