"""Logs as the site shows them: read, cleaned, masked.

Flow: `has_output` says whether an attempt's log gets a page at all (an empty or missing one
does not); `log_withheld` whether it may be shown (an unfinished attempt's log holds its
secrets in clear on disk); `read_log` turns the file into text for its page: whole when
small, else its tail; UTF-8 (lossy), ANSI colour codes dropped, control characters shown as
U+FFFD, secrets masked, each line redrawn with carriage returns (a progress bar) at its last
state. `copy_masked` writes the whole log, masked, for the raw link. `visible` cleans any
text the templates print (sitetemplates.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitflowd import secrets as secrets_module
from gitflowd.state import AttemptState, RunState


LOG_TAIL = 256 * 1024  # bytes of a large log shown inline (the rest is linked)


MASK = secrets_module.MASK.decode()  # as on disk and in `gitflowd logs`


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


# C0 controls other than tab, newline and carriage return, and DEL: invalid in HTML (a NUL
# made grep call the page binary); shown as U+FFFD, as undecodable bytes are.
_CONTROLS = dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F], "\ufffd")


_HAS_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class LogText:
    text: str
    size: int  # bytes of the whole log
    truncated: bool  # True: `text` is only the tail
    missing: bool = False
    withheld: bool = False  # not shown: it may hold secrets this render cannot mask
    shown: int = 0  # bytes of the log that `text` shows


WITHHELD = LogText("", 0, False, withheld=True)


def log_withheld(run: RunState, attempt: AttemptState, known: Collection[str]) -> bool:
    """Whether an attempt's log must not be published: the engine masks a log only when its
    attempt ends (its task_finished record is written after), so the log of an attempt still
    running, or cut short by a runner that died, holds its secrets in clear; a render that
    lacks any of the DAG's secrets cannot mask them."""
    return attempt.ended is None and not set(run.dag.secrets) <= set(known)


def _maskable(secrets: Iterable[str]) -> list[str]:
    """The engine's rule: values shorter than MIN_MASKED_LENGTH would mask ordinary text."""
    return [s for s in secrets if len(s) >= secrets_module.MIN_MASKED_LENGTH]


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Every whole secret value in `text` as MASK, the longest first."""
    for value in sorted(_maskable(secrets), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def visible(text: str) -> str:
    """Text without the control characters HTML cannot hold (TOML strings may carry them:
    "\u0000"), each shown as U+FFFD, as in logs."""
    return text.translate(_CONTROLS) if _HAS_CONTROL.search(text) else text


def clean_text(raw: bytes, secrets: Iterable[str]) -> str:
    """Log bytes to display text: UTF-8 (lossy), ANSI colour codes dropped, other control
    characters shown as U+FFFD, secrets masked."""
    return mask_secrets(_ANSI.sub("", raw.decode("utf-8", errors="replace")).translate(_CONTROLS), secrets)


def as_terminal_shows(text: str) -> str:
    """Each line as a terminal leaves it after carriage returns: its last rewrite. A progress
    bar (tqdm, curl, pip) redraws one line thousands of times; a browser breaks lines at a
    lone CR and would show every redraw. Line ends (CRLF too) are kept."""
    if "\r" not in text:
        return text
    return "\n".join(_last_rewrite(line) for line in text.split("\n"))


def _last_rewrite(line: str) -> str:
    body = line.rstrip("\r")
    return body.rsplit("\r", 1)[-1] + line[len(body):]


def has_output(path: Path) -> bool:
    """Whether a log has anything to show: an empty or missing one gets no page (a run of
    10,000 quiet tasks would otherwise spend most of its render on them)."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def read_log(path: Path, secrets: Sequence[str], tail: int = LOG_TAIL) -> LogText:
    """A log for its page: whole when small, else its last `tail` bytes from a line start, or
    from within a line that fills most of them (cut, marked with "…": dropping it would leave
    next to nothing; the cut's first characters go too, as they may be the end of a secret)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return LogText("", 0, False, missing=True)
    try:
        size = os.fstat(fd).st_size
        raw = os.pread(fd, tail, max(0, size - tail))  # one call: 20,000 logs in a full render
    finally:
        os.close(fd)
    truncated, partial = size > tail, False
    if truncated:
        cut = raw.find(b"\n")
        if 0 <= cut < len(raw) // 2:
            raw = raw[cut + 1:]
        else:
            partial = True  # one line fills most of the tail: its end, rather than next to nothing
    text = as_terminal_shows(clean_text(raw, secrets))
    if partial:  # the cut may fall inside a secret, whose piece no mask would match: drop what it can be
        text = f"…{text[max((len(v.encode()) for v in _maskable(secrets)), default=1) - 1:]}"
    return LogText(text, size, truncated, shown=len(raw))


def copy_masked(source: Path, target: Path, secrets: Sequence[str], chunk: int = 1 << 20) -> None:
    """The full log, masked, for the raw link; memory stays bounded even for a log of one
    gigabyte-long line (chunks end at a newline when there is one, so secrets stay whole).
    It starts with a byte order mark: a browser guesses a text file's encoding from its first
    bytes, and a log that starts in ASCII would show its later UTF-8 as windows-1252."""
    temp = target.with_name(f".{target.name}.tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(temp, "w", encoding="utf-8-sig") as dst:
        carry = b""
        while block := src.read(chunk):
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) < 4 * chunk:  # no line end yet: keep the line whole, up to a bound
                carry = data
                continue
            cut = cut or len(data)
            dst.write(clean_text(data[:cut], secrets))
            carry = data[cut:]
        dst.write(clean_text(carry, secrets))
    temp.replace(target)
