"""Whole-file writes: atomic replacement, in-place creation of new pages, the page writer."""

from __future__ import annotations

import os

import pytest

from gitflowd.atomic import PageWriter, write_atomic, write_page


def test_write_atomic_replaces_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "a" / "b.json"
    write_atomic(target, "one", durable=True)
    inode = target.stat().st_ino
    write_atomic(target, b"two")
    assert target.read_text() == "two" and target.stat().st_ino != inode  # a new file, renamed over
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.json"]


def test_write_page_creates_new_files_in_place_and_replaces_old_ones(tmp_path):
    page = tmp_path / "x" / "p.html"
    write_page(page, "new")
    first = page.stat().st_ino
    write_page(page, "newer")
    assert page.read_text() == "newer" and page.stat().st_ino != first


def test_page_writer_keeps_order_and_reports_the_first_error_at_flush(tmp_path):
    writer = PageWriter(depth=2)
    for n in range(50):
        writer.put(tmp_path / "p.html", str(n))  # the same file over and over: the last one wins
    writer.flush()
    assert (tmp_path / "p.html").read_text() == "49"
    (tmp_path / "blocker").write_text("a file, not a directory")
    writer.put(tmp_path / "blocker" / "page.html", "x")
    writer.put(tmp_path / "after.html", "dropped after the failure")
    with pytest.raises(OSError):
        writer.flush()
    assert not (tmp_path / "after.html").exists()
    writer.put(tmp_path / "later.html", "ok")  # usable again once the error was reported
    writer.close()
    assert (tmp_path / "later.html").read_text() == "ok"
