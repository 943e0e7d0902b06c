"""Secrets: values from a private file, given only to the DAGs that name them, masked in logs.

Flow: `secrets_for(dag, path)` reads the secrets file (`KEY=VALUE` lines, `#` comments;
refused if group or others may read it) and returns the values the DAG names (a missing
name is an error at run start) -> the engine puts them in the task's environment ->
`Masker(values).mask_file(log)` rewrites an attempt's log once the task has ended,
streaming with constant memory -> `Masker.mask_bytes` masks again when a log is shown.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from gitflowd.dag import Dag
from gitflowd.errors import GitflowdError, RunError

log = logging.getLogger(__name__)

ENV_VAR = "GITFLOWD_SECRETS_FILE"
MASK = b"***"
MIN_MASKED_LENGTH = 3  # shorter values would mask ordinary text everywhere
_CHUNK = 1 << 20
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretsError(GitflowdError):
    """The secrets file cannot be used (unsafe mode, bad line, unreadable)."""


def _check_private(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SecretsError(f"secrets file {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(
            f"secrets file {path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )


def load_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a secrets file; errors cite `file:line`."""
    path = Path(path)
    _check_private(path)
    values: dict[str, str] = {}
    for number, raw in enumerate(_read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not _KEY.fullmatch(key):
            raise SecretsError(f"{path}:{number}: expected KEY=VALUE")
        values[key] = _unquote(value.strip())
    return values


def _read_text(path: Path) -> str:
    """The file's text; SecretsError for a directory, an unreadable file or one not UTF-8
    (a traceback before: `--secrets-file /etc/gitflowd`, a file saved as Latin-1)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SecretsError(f"secrets file {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SecretsError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None


class SecretsFile:
    """A secrets file that is read again when it changes: a daemon runs for months, and a
    rotated secret must be masked on the site from the next render, not from the next restart.

    A file that turns bad (unreadable, readable by others, a bad line) keeps the last good
    values, and says why once. Thread-safe: the site renders from more than one thread.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._values = load_file(self.path)  # a bad file at start is the caller's error to report
        self._complaint = ""

    def current(self) -> dict[str, str]:
        with self._lock:
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._values, self._complaint = load_file(self.path), ""
                    log.info("secrets file %s changed: read again", self.path)
                except (OSError, SecretsError, UnicodeDecodeError) as exc:
                    if str(exc) != self._complaint:
                        self._complaint = str(exc)
                        log.warning("secrets file %s: %s; keeping the values read before", self.path, exc)
            return dict(self._values)

    def _stat(self) -> tuple[int, ...] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns  # ctime: a chmod too


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def resolve_path(flag: str | None) -> str | None:
    """--secrets-file wins over GITFLOWD_SECRETS_FILE."""
    return flag or os.environ.get(ENV_VAR) or None


def secrets_for(dag: Dag, path: str | None) -> dict[str, str]:
    """The values of the secrets `dag` names; RunError if the file or a name is missing."""
    if not dag.secrets:
        return {}
    if not path:
        raise RunError(f"DAG {dag.id!r} needs secrets {', '.join(dag.secrets)} but no secrets file is given "
                       f"(--secrets-file or {ENV_VAR})")
    available = load_file(path)
    missing = [name for name in dag.secrets if name not in available]
    if missing:
        raise RunError(f"DAG {dag.id!r} needs secrets missing from {path}: {', '.join(missing)}")
    return {name: available[name] for name in dag.secrets}


class Masker:
    """Replaces secret values with `***` in bytes, streams and files."""

    def __init__(self, values: Iterable[str]):
        secrets = sorted({v.encode() for v in values if len(v) >= MIN_MASKED_LENGTH}, key=len, reverse=True)
        self._secrets = secrets
        self._pattern = re.compile(b"|".join(re.escape(s) for s in secrets)) if secrets else None
        self._keep = max((len(s) for s in secrets), default=1) - 1  # bytes a match may still need

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask_bytes(self, data: bytes) -> bytes:
        return self._pattern.sub(MASK, data) if self._pattern else data

    def mask_stream(self, src: BinaryIO, dst: BinaryIO) -> None:
        """Copy src to dst masked, holding at most one chunk plus the longest secret."""
        writer = MaskingWriter(self, dst)
        while chunk := src.read(_CHUNK):
            writer.write(chunk)
        writer.close()

    def _write_safe_part(self, buffer: bytes, dst: BinaryIO) -> int:
        """Write the masked prefix that no later byte can change; return where it ends."""
        if self._pattern is None:
            dst.write(buffer)
            return len(buffer)
        limit = len(buffer) - self._keep  # a match starting before here is entirely in buffer
        pieces, pos = [], 0
        for match in self._pattern.finditer(buffer):
            if match.start() >= limit:
                break
            pieces += [buffer[pos:match.start()], MASK]
            pos = match.end()
        cut = max(pos, limit)
        # Hold back only from where a secret could still start: a line is not kept waiting
        # for the next write (`logs -f`) because a secret might be as long as its end.
        while cut < len(buffer) and not any(s.startswith(buffer[cut:cut + len(s)]) for s in self._secrets):
            cut += 1
        pieces.append(buffer[pos:cut])
        dst.write(b"".join(pieces))
        return cut

    def mask_file(self, path: str | os.PathLike[str]) -> None:
        """Rewrite a file masked (write a sibling, rename over); no-op without secrets."""
        if not self._pattern:
            return
        path = Path(path)
        temp = path.with_name(f".{path.name}.masking")
        try:
            with path.open("rb") as src, temp.open("wb") as dst:
                self.mask_stream(src, dst)
            os.replace(temp, path)
        except FileNotFoundError:
            temp.unlink(missing_ok=True)


class MaskingWriter:
    """Writes bytes that arrive in pieces masked: a secret split between two pieces is
    held back until the next one shows whether it completes; close() writes the rest."""

    def __init__(self, masker: Masker, dst: BinaryIO):
        self._masker, self._dst, self._carry = masker, dst, b""

    def write(self, data: bytes) -> None:
        buffer = self._carry + data
        self._carry = buffer[self._masker._write_safe_part(buffer, self._dst):]

    def close(self) -> None:
        self._dst.write(self._masker.mask_bytes(self._carry))
        self._carry = b""
