"""Whole-file writes: atomic replacement, and in-place creation of new site pages."""

from __future__ import annotations

from gitflowd.atomic import write_atomic, write_page


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
