"""Whole-file writes that a concurrent reader never sees half done.

`write_atomic(path, data)` writes a temporary file beside `path`, renames it over `path`
(atomic on POSIX), and, when `durable`, fsyncs the file and the directory so the new
content survives a power loss. Site pages skip the fsyncs (they can be rebuilt from state);
the DAG registry does not. `write_page` is the site's variant: new pages are created in
place, existing ones replaced atomically.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, durable: bool = False) -> None:
    """Replace `path` with `data` in one step; parent directories are created."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def write_page(path: Path, data: str) -> None:
    """A site page: created in place when new, else replaced with `write_atomic`.

    Creating in place is safe because the site writes a page before any page that links to
    it, so no reader is sent to a half-written new file; it is several times cheaper than
    a temporary file and a rename (which matters for 20,000 log pages).
    """
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(data)
    except FileExistsError:
        write_atomic(path, data)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_page(path, data)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PageWriter:
    """`write_page` on a thread of its own, in order, so that creating files (a syscall that
    releases the GIL and can take 0.3 ms on a busy disk) overlaps with rendering the next page.

    `put` queues a page (blocking when `depth` pages wait, to bound memory); `flush` waits
    until everything queued is on disk and raises the first error a write hit. One writer
    keeps the order of `put`, which the site relies on (targets before links).
    """

    def __init__(self, depth: int = 64):
        self._queue: queue.Queue[tuple[Path, str] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="page-writer", daemon=True)
        self._thread.start()

    def put(self, path: Path, data: str) -> None:
        if self._error is not None:
            self.flush()
        self._queue.put((path, data))

    def flush(self) -> None:
        self._queue.join()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join()

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                if self._error is None:  # after a failure, drop the rest until flush reports it
                    write_page(*item)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by flush()
                self._error = exc
            finally:
                self._queue.task_done()
        self._queue.task_done()
