"""Journal: checksummed lines, torn tails recovered at every byte, corruption reported, fsync batching."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitflowd import journal
from gitflowd.dag import Dag, Task
from gitflowd.errors import JournalCorrupt
from gitflowd.state import read_run, replay
from gitflowd.statedir import StateDir


def _dag() -> Dag:
    return Dag("d", {"a": Task("a", cmd="true"), "b": Task("b", cmd="true", deps=("a",))})


def _created() -> dict:
    return {"event": "run_created", "dag_id": "d", "run_id": "manual__20260101T000000Z", "kind": "manual",
            "logical_date": "2026-01-01T00:00:00+00:00", "commit": "c" * 40, "params": {}, "dag": _dag().to_dict()}


def _write_run(path: Path) -> list[dict]:
    with journal.JournalWriter(path) as writer:
        writer.append(_created())
        writer.append({"event": "run_started", "pid": 1, "host": "h"})
        writer.append({"event": "task_started", "task": "a", "attempt": 1, "pid": 2, "pgid": 2, "host": "h", "log": "x"})
        writer.append({"event": "task_finished", "task": "a", "attempt": 1, "state": "success", "exit_code": 0, "duration": 0.1})
        writer.append({"event": "task_started", "task": "b", "attempt": 1, "pid": 3, "pgid": 3, "host": "h", "log": "y"})
    return journal.read(path)


def _summary(run) -> dict:
    return {"state": run.state.value, "last_seq": run.last_seq,
            "tasks": {t: (s.state.value, [(a.number, a.state.value) for a in s.attempts]) for t, s in run.tasks.items()}}


def test_lines_are_canonical_json_with_a_crc_of_the_rest(tmp_path: Path) -> None:
    records = _write_run(tmp_path / "j.jsonl")
    assert [r["seq"] for r in records] == list(range(5))
    line = (tmp_path / "j.jsonl").read_text().splitlines()[1]
    record = json.loads(line)
    crc = record.pop("crc")
    import zlib
    assert zlib.crc32(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()) == crc
    assert record["v"] == 1 and record["ts"].endswith("Z")
    datetime.fromisoformat(record["ts"])


def test_truncating_the_last_line_at_every_offset_gives_the_state_before_it(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _write_run(path)
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    before = _summary(replay(journal.read(path)[:-1]))
    after = _summary(replay(journal.read(path)))
    assert before != after
    for cut in range(last_start, len(data) + 1):
        path.write_bytes(data[:cut])
        state = _summary(read_run(path))
        assert state == (after if cut == len(data) else before), cut


def test_the_first_record_alone_agrees_with_reading_the_whole_journal_at_every_cut(tmp_path: Path) -> None:
    """read_first (the scheduler's view of a run) finds what read finds first, at every byte
    offset a crash could leave, and the same damage in a first line followed by a whole one."""
    path = tmp_path / "j.jsonl"
    _write_run(path)
    data = path.read_bytes()
    second_end = data.index(b"\n", data.index(b"\n") + 1) + 1
    for cut in range(second_end + 1):
        path.write_bytes(data[:cut])
        records = journal.read(path)
        assert journal.read_first(path) == (records[0] if records else None), cut
    path.write_bytes(data.replace(b'"seq":0', b'"seq":9', 1))
    with pytest.raises(journal.CorruptRecord) as info:
        journal.read(path)
    with pytest.raises(journal.CorruptRecord) as first:
        journal.read_first(path)
    assert (first.value.line, first.value.reason) == (info.value.line, info.value.reason) == (1, "checksum mismatch")


def test_writer_truncates_a_torn_tail_then_appends(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _write_run(path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])
    with journal.JournalWriter(path) as writer:
        assert writer.next_seq == 4
        writer.append({"event": "run_finished", "state": "failed"})
    records = journal.read(path)
    assert [r["seq"] for r in records] == [0, 1, 2, 3, 4] and records[-1]["event"] == "run_finished"


@pytest.mark.parametrize("garbage", [b"\x00" * 300, b"{not json}\n", b"\n\n\xff\xfe garbage\n{\"a\":1}\n", b'{"event":"x","seq":5}\n'])
def test_garbage_tail_is_dropped_by_readers_and_cut_by_the_writer(tmp_path: Path, garbage: bytes, caplog) -> None:
    path = tmp_path / "j.jsonl"
    records = _write_run(path)
    with path.open("ab") as fh:
        fh.write(garbage)
    assert journal.read(path) == records
    assert "torn tail" in caplog.text
    with journal.JournalWriter(path) as writer:
        writer.append({"event": "run_finished", "state": "failed"})
    assert len(journal.read(path)) == len(records) + 1


def test_a_corrupt_middle_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _write_run(path)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"pid":2', b'"pid":7')  # still JSON, checksum now wrong
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(journal.CorruptRecord) as info:
        journal.read(path)
    assert info.value.line == 3 and "checksum mismatch" in str(info.value)
    with pytest.raises(JournalCorrupt, match=rf"{path}:3: corrupt journal record: checksum mismatch"):
        read_run(path)
    with pytest.raises(journal.CorruptRecord):
        journal.JournalWriter(path)  # never truncates acknowledged records away
    assert path.read_bytes() == b"\n".join(lines)


def test_a_missing_record_in_the_middle_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _write_run(path)
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:2] + lines[3:]))
    with pytest.raises(journal.CorruptRecord, match="sequence number 3, expected 2"):
        journal.read(path)


def test_one_corrupt_journal_does_not_hide_the_other_runs(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    good = state.journal_path("d", "manual__20260101T000000Z")
    bad = state.journal_path("d", "manual__20260102T000000Z")
    _write_run(good)
    _write_run(bad)
    data = bad.read_bytes()
    bad.write_bytes(data[:40] + b"X" + data[41:])
    runs = state.runs()
    assert [r.run_id for r in runs] == ["manual__20260101T000000Z"]
    assert len(state.broken) == 1 and str(bad) in state.broken[0][0] and ":1: corrupt" in state.broken[0][1]


def test_each_batch_is_one_write_and_one_fsync(tmp_path: Path) -> None:
    """Counted with strace when available: group commit means one fsync per append()."""
    script = textwrap.dedent(f"""
        from gitflowd import journal
        w = journal.JournalWriter({str(tmp_path / 'j.jsonl')!r})
        w.append(*[{{"event": "x", "n": i}} for i in range(50)])
        w.append({{"event": "y"}}, sync=False)
        w.append({{"event": "z"}})
    """)
    strace = shutil.which("strace")
    if strace is None:  # CI installs it (.ci/run): there a missing strace fails, never skips
        if os.environ.get("GITFLOWD_REQUIRE_STRACE") == "1":
            pytest.fail("strace is not installed but GITFLOWD_REQUIRE_STRACE=1")
        pytest.skip("strace not installed")
    done = subprocess.run([strace, "-f", "-e", "trace=fsync,write", "-o", str(tmp_path / "trace"), sys.executable, "-c", script],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    trace = (tmp_path / "trace").read_text()
    journal_writes = [line for line in trace.splitlines() if " write(" in line and '{\\"event\\"' in line]
    assert len([line for line in trace.splitlines() if "fsync(" in line]) == 3  # the directory, then two synced batches
    assert len(journal_writes) == 3


def test_a_failed_write_poisons_the_writer_and_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    """A real EFBIG on the Nth write (RLIMIT_FSIZE), N = 1, 2, 3...: acknowledged records survive."""
    for limit in (600, 1200, 2000):
        path = tmp_path / f"j{limit}.jsonl"
        script = textwrap.dedent(f"""
            import resource, signal, sys
            from gitflowd import journal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
            w = journal.JournalWriter({str(path)!r})
            acked = 0
            try:
                for i in range(1000):
                    w.append({{"event": "x", "payload": "p" * 100, "i": i}})
                    acked += 1
            except journal.JournalWriteError as exc:
                print(acked, exc.errno)
            try:
                w.append({{"event": "again"}})
            except journal.JournalWriteError as exc:
                print("poisoned", "earlier failure" in str(exc))
        """)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        first, second = done.stdout.split("\n")[:2]
        acked = int(first.split()[0])
        assert second == "poisoned True"
        records = journal.read(path)  # the torn last record is dropped, never fatal
        assert len(records) == acked and [r["i"] for r in records] == list(range(acked))
        with journal.JournalWriter(path) as writer:  # recovers and appends after the limit is gone
            writer.append({"event": "after"})
        assert journal.read(path)[-1]["event"] == "after"


def test_timestamps_are_utc_with_a_z(tmp_path: Path) -> None:
    clock = lambda: datetime(2026, 11, 25, 8, 15, tzinfo=UTC)  # noqa: E731
    with journal.JournalWriter(tmp_path / "j.jsonl", clock=clock) as writer:
        (record,) = writer.append({"event": "x"})
    assert record["ts"] == "2026-11-25T08:15:00.000000Z"
