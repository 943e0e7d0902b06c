"""Inbox requests: atomic hand-over, oldest first, replies, bad files set aside."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gitflowd import inbox
from gitflowd.errors import StateError


def test_submit_read_answer_round_trip(tmp_path: Path) -> None:
    first = inbox.submit(tmp_path, inbox.Request("run", {"dag": "a", "params": {"k": "v"}}))
    second = inbox.submit(tmp_path, inbox.Request("backfill", {"dag": "b"}))
    assert inbox.pending(tmp_path) == [first, second]
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temp files left
    request = inbox.read(first)
    assert request.kind == "run" and request.args == {"dag": "a", "params": {"k": "v"}}
    inbox.answer(tmp_path, first, request.id, inbox.Reply(ok=True, runs=[("a", "manual__1")]))
    assert inbox.pending(tmp_path) == [second]
    reply = inbox.wait_reply(tmp_path, request.id, timeout=5)
    assert reply.ok and reply.runs == [("a", "manual__1")]
    assert not (inbox.replies_dir(tmp_path) / f"{request.id}.json").exists()


def test_reply_written_by_another_thread_is_awaited(tmp_path: Path) -> None:
    path = inbox.submit(tmp_path, inbox.Request("resume", {"dag": "a", "run_id": "r"}))
    request = inbox.read(path)
    timer = threading.Timer(0.2, inbox.answer, (tmp_path, path, request.id, inbox.Reply(ok=False, error="unknown run 'r'")))
    timer.start()
    reply = inbox.wait_reply(tmp_path, request.id, timeout=20)
    timer.join()
    assert not reply.ok and reply.error == "unknown run 'r'"


def test_no_reply_from_a_dead_daemon_is_a_clear_error(tmp_path: Path) -> None:
    # A daemon killed (kill -9) while a command waited was asked 'is it stopping or hung?'.
    request = inbox.Request("run", {"dag": "a"})
    inbox.submit(tmp_path, request)
    with pytest.raises(StateError, match=f"^the daemon exited before it took request {request.id} .*: request withdrawn, nothing done$"):
        inbox.wait_reply(tmp_path, request.id, timeout=30, alive=lambda: False)


def test_no_reply_from_a_silent_daemon_says_it_may_be_stopping_or_hung(tmp_path: Path) -> None:
    request = inbox.Request("run", {"dag": "a"})
    inbox.submit(tmp_path, request)
    with pytest.raises(StateError, match=f"did not answer request {request.id} nor take it \\(is it stopping or hung\\?"):
        inbox.wait_reply(tmp_path, request.id, timeout=0.2, alive=lambda: True)


def test_a_request_given_up_on_is_withdrawn_unless_the_daemon_took_it(tmp_path: Path) -> None:
    unclaimed = inbox.Request("run", {"dag": "a"})
    path = inbox.submit(tmp_path, unclaimed)
    with pytest.raises(StateError, match=f"exited before it took request {unclaimed.id} .*: request withdrawn, nothing done"):
        inbox.wait_reply(tmp_path, unclaimed.id, timeout=30, alive=lambda: False)
    assert inbox.pending(tmp_path) == [] and inbox.claim(path) is None  # a later daemon never sees it
    taken = inbox.Request("run", {"dag": "b"})
    claimed = inbox.claim(inbox.submit(tmp_path, taken))
    assert claimed is not None and inbox.pending(tmp_path) == [] and inbox.read(claimed) == taken
    with pytest.raises(StateError, match=f"exited after it took request {taken.id}, before answering .*: it may have done it"):
        inbox.wait_reply(tmp_path, taken.id, timeout=30, alive=lambda: False)
    inbox.answer(tmp_path, claimed, taken.id, inbox.Reply(ok=True))
    assert not claimed.exists() and not inbox.withdraw(tmp_path, taken.id)  # answered: not withdrawn
    assert inbox.withdraw(tmp_path, "never-submitted")


@pytest.mark.parametrize("text", ["{", "[]", '{"kind": "run"}', '{"kind": "explode", "args": {}, "id": "x"}', ""])
def test_bad_request_files_are_named_and_set_aside(tmp_path: Path, text: str) -> None:
    folder = inbox.inbox_dir(tmp_path)
    folder.mkdir(parents=True)
    bad = folder / "5-bad.json"
    bad.write_text(text)
    with pytest.raises(ValueError, match="5-bad.json"):
        inbox.read(bad)
    inbox.set_aside(tmp_path, bad, "unreadable")
    assert inbox.pending(tmp_path) == [] and (folder / "bad" / "5-bad.json").exists()


def test_unknown_kind_is_refused_at_submit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown request kind 'nap'"):
        inbox.submit(tmp_path, inbox.Request("nap", {}))


def test_unwritable_inbox_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "inbox").write_text("a file where a directory should be")
    with pytest.raises(StateError, match="cannot write a request into"):
        inbox.submit(tmp_path, inbox.Request("run", {"dag": "a"}))


def test_old_uncollected_replies_are_pruned(tmp_path: Path) -> None:
    import os
    import time

    for name, age in (("old", 2 * 86400), ("new", 60)):
        path = inbox.submit(tmp_path, inbox.Request("run", {"dag": "a"}, id=name))
        inbox.answer(tmp_path, path, name, inbox.Reply(ok=True))
        reply = inbox.replies_dir(tmp_path) / f"{name}.json"
        os.utime(reply, (time.time() - age, time.time() - age))
    assert inbox.prune_replies(tmp_path) == 1
    assert [p.name for p in inbox.replies_dir(tmp_path).iterdir()] == ["new.json"]


def test_a_request_a_dead_daemon_took_is_dropped_at_the_next_start_not_run_again(tmp_path: Path) -> None:
    taken = inbox.Request("run", {"dag": "a"})
    claimed = inbox.claim(inbox.submit(tmp_path, taken))  # the daemon died before answering
    waiting = inbox.submit(tmp_path, inbox.Request("run", {"dag": "b"}))
    assert inbox.drop_stale_claims(tmp_path) == [claimed.name.removeprefix(inbox.CLAIMED)]
    assert not claimed.exists() and inbox.pending(tmp_path) == [waiting]  # a pending one is still handled
    assert inbox.drop_stale_claims(tmp_path) == []
