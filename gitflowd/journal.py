"""Append-only JSON-lines journals: one writer per file, every line checksummed.

Flow: `JournalWriter(path)` creates the file (fsyncing its directory) or opens it, keeps
the longest valid prefix and truncates a torn tail -> `append(*records)` stamps each record
with `v`, `seq`, `ts` and `crc`, writes the batch with one `write` and one `fsync` (group
commit; `sync=False` defers the fsync to the next batch) -> `read(path)` returns the records, dropping a torn tail with a warning and
raising `CorruptRecord` for a damaged record that is followed by valid ones.

A line is `{...canonical JSON of the record without crc...,"crc":N}` where N is the CRC-32
of exactly those canonical bytes (keys sorted, no spaces, `}` closing): the checksum is
verified on the bytes as written, without serialising again. A record counts only when
its newline is on disk too (a newline alone proves nothing, so both must hold).

Any failed write or fsync poisons the writer: it is never retried (a retried fsync can
succeed after the kernel dropped the data), the caller must stop and rebuild from disk.
This module imports nothing of gitflowd (see DESIGN.md section 3).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_CRC_MARK = b',"crc":'

# Event names (DESIGN.md section 4 and docs/journal.md).
RUN_CREATED = "run_created"
RUN_STARTED = "run_started"
TASK_STARTED = "task_started"
TASK_FINISHED = "task_finished"
TASK_SKIPPED = "task_skipped"
TASKS_CLEARED = "tasks_cleared"
RUN_RESUMED = "run_resumed"
RUN_FINISHED = "run_finished"


class CorruptRecord(ValueError):
    """A damaged record with valid records after it: corruption, not a torn tail."""

    def __init__(self, path: str, line: int, reason: str):
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: corrupt journal record: {reason}")


class JournalWriteError(OSError):
    """A write or fsync failed; the journal may have lost data and must not be used again."""


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 in UTC with microseconds and a `Z`, e.g. `2026-11-25T08:15:00.000000Z`."""
    moment = moment or datetime.now(UTC)
    # isoformat, not strftime: a third of the cost, and every record is stamped.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# One encoder for every record: json.dumps with these options builds a new one per call.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode(record: dict[str, Any]) -> bytes:
    """One journal line (with its newline) for a record that has no `crc` yet."""
    body = _ENCODER.encode(record).encode()
    return b"%s%s%d}\n" % (body[:-1], _CRC_MARK, zlib.crc32(body))


def _check(line: bytes) -> str:
    """'' if the line's checksum matches its body, else what is wrong."""
    cut = line.rfind(_CRC_MARK)
    if cut < 0 or not line.endswith(b"}"):
        return "no checksum"
    try:
        crc = int(line[cut + len(_CRC_MARK):-1])
    except ValueError:
        return "unreadable checksum"
    if zlib.crc32(b"}", zlib.crc32(memoryview(line)[:cut])) != crc:
        return "checksum mismatch"
    return ""


def decode(line: bytes) -> dict[str, Any]:
    """A record from one line without its newline; raises ValueError saying what is wrong."""
    problem = _check(line)
    if problem:
        raise ValueError(problem)
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"bad JSON: {exc}") from None
    if not isinstance(record, dict) or "event" not in record or "seq" not in record:
        raise ValueError("not a journal record")
    return record


def _scan(path: str, data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The valid records and the byte length of the valid prefix.

    Raises CorruptRecord when a damaged line is followed by a whole one, or a whole line
    is not the record expected there.
    """
    good: list[bytes] = []
    bad: tuple[int, str] | None = None
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):  # the last piece lacks its newline
        problem = _check(line)
        if problem:
            bad = bad or (number, problem)
        elif bad:  # a whole record after a damaged one: not a torn tail
            raise CorruptRecord(path, *bad)
        else:
            good.append(line)
    return _parse_all(path, good), sum(len(line) + 1 for line in good)


def _parse_all(path: str, lines: list[bytes]) -> list[dict[str, Any]]:
    """Checksummed lines -> records (one JSON parse for all: twice as fast as line by line)."""
    try:
        records = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        records = []
        for number, line in enumerate(lines, start=1):
            try:
                records.append(decode(line))
            except ValueError as exc:
                raise CorruptRecord(path, number, str(exc)) from None
    for index, record in enumerate(records):
        if not isinstance(record, dict) or "event" not in record:
            raise CorruptRecord(path, index + 1, "not a journal record")
        if record.get("seq") != index:
            raise CorruptRecord(path, index + 1, f"sequence number {record.get('seq')}, expected {index}")
    return records


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every whole record of a journal; a torn or garbage tail is dropped with a warning."""
    data = Path(path).read_bytes()
    records, end = _scan(str(path), data)
    if end < len(data):
        # With no whole record it is a creation cut short (no run: the caller passes over it),
        # not news on every read.
        log.log(logging.WARNING if records else logging.DEBUG, "%s: dropping a torn tail of %d bytes after record %d",
                path, len(data) - end, len(records))
    return records


def read_first(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The first record alone (a run's `run_created`), without reading the rest: None when
    the journal has no whole record, as `read` would find; CorruptRecord when a damaged first
    line is followed by a whole one."""
    with open(path, "rb") as fh:
        line = fh.readline()
        if not line.endswith(b"\n"):
            return None  # a creation cut short
        problem = _check(line[:-1])
        if problem:
            if any(not _check(rest.rstrip(b"\n")) for rest in fh if rest.endswith(b"\n")):
                raise CorruptRecord(str(path), 1, problem)
            return None
    records = _parse_all(str(path), [line[:-1]])
    return records[0]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """mkdir -p that fsyncs each parent of a directory it creates."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        _fsync_dir(new.parent)


class JournalWriter:
    """The single writer of one journal file. Not thread-safe; one per run."""

    def __init__(self, path: str | os.PathLike[str], *, exclusive: bool = False,
                 clock: Callable[[], datetime] | None = None):
        """Open (or create) `path`; `exclusive=True` fails with FileExistsError if it exists."""
        self.path = Path(path)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._broken: BaseException | None = None
        make_dirs(self.path.parent)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | (os.O_EXCL if exclusive else 0)
        existed = self.path.exists()
        self._fd = os.open(self.path, flags, 0o644)
        if not existed:
            _fsync_dir(self.path.parent)
        self.records_on_open = self._recover()
        self.next_seq = len(self.records_on_open)
        self.durable_seq = self.next_seq - 1  # every record up to this seq is on disk
        self._written_seq = self.next_seq - 1  # every record up to this seq is written

    def _recover(self) -> list[dict[str, Any]]:
        """Keep the longest valid prefix; a torn tail is cut off before we append."""
        size = os.fstat(self._fd).st_size
        data = os.pread(self._fd, size, 0) if size else b""
        records, end = _scan(str(self.path), data)
        if end < size:
            log.warning("%s: truncating a torn tail of %d bytes after record %d", self.path, size - end, len(records))
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        return records

    def append(self, *records: dict[str, Any], sync: bool = True) -> list[dict[str, Any]]:
        """Stamp and write records as one batch; returns the stamped records.

        With `sync=False` the batch is written (readers see it) but made durable only by
        the next synced batch: for records nobody acts on, e.g. that a task started.
        """
        self.check()
        if not records:
            return []
        ts = utc_timestamp(self._clock())
        stamped = []
        for record in records:
            seq = self.next_seq + len(stamped)
            stamped.append({**record, "v": FORMAT_VERSION, "seq": seq, "ts": record.get("ts", ts)})
        self._written_seq = self.next_seq + len(stamped) - 1
        self._write_all(b"".join(encode(r) for r in stamped), sync)
        self.next_seq += len(stamped)
        return stamped

    def _write_all(self, data: bytes, sync: bool) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            raise self._fail(exc) from exc
        if sync:
            self.sync()

    def _fail(self, exc: OSError) -> JournalWriteError:
        self._broken = self._broken or exc
        error = JournalWriteError(f"{self.path}: journal write failed: {exc.strerror or exc}")
        error.errno = exc.errno
        return error

    def sync(self) -> None:
        """Make everything written so far durable, now, on the caller's thread."""
        self.check()
        target = self._written_seq
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise self._fail(exc) from exc
        self.durable_seq = max(self.durable_seq, target)

    def check(self) -> None:
        """Raise JournalWriteError if an earlier write or fsync failed."""
        if self._broken is not None:
            raise JournalWriteError(f"{self.path}: journal unusable after an earlier failure: {self._broken}")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def signal_name(code: int | None) -> str | None:
    """'SIGKILL' for the exit code -9 of a process a signal ended (a task_finished record's
    exit_code is minus the signal then); None for an exit."""
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def exit_text(code: int | None, none: str) -> str:
    """An exit code as people read it: '3', 'SIGKILL' for -9, `none` if the task never exited."""
    return none if code is None else signal_name(code) or str(code)
