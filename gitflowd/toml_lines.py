"""Where keys and tables sit in a TOML text, since tomllib reports no positions.

Flow: `locate(text)` scans the text line by line, skipping the insides of multi-line
strings, and records for each table header (`[tasks.fetch]`, `[tasks."a.b"]`, `[[x]]`)
and each `key = value` line (also dotted keys, and the keys of a one-line inline table)
the full key path -> its first line. `LineMap.line(*path)` answers with the line of the
path, else of its nearest recorded parent, else 1.

This is a best-effort reader of valid TOML for error messages, not a parser: on text
it does not understand it records nothing, which only makes messages less precise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BARE = re.compile(r"[A-Za-z0-9_-]+")
# The common shapes, matched without the general key parser (a 10,000-task file has 30,000
# of them): `[a.b]` of bare keys, and `key = value` whose value opens no inline table or
# multi-line string.
_PLAIN_HEADER = re.compile(r"\[([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)\]\s*(?:#.*)?")
_PLAIN_KEY = re.compile(r"([A-Za-z0-9_-]+)\s*=\s*(?![{\s]|\"\"\"|\'\'\')")
_ESCAPE = re.compile(r'\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)')
_SIMPLE_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


@dataclass
class LineMap:
    """Key path -> 1-based line of its first mention."""

    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def line(self, *path: str) -> int:
        """The line of `path`, else of its nearest recorded parent, else 1."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return 1

    def record(self, path: tuple[str, ...], line: int) -> None:
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)


def locate(text: str) -> LineMap:
    """Scan `text` and map every table header and key to its line."""
    result = LineMap()
    table: tuple[str, ...] = ()
    closer: str | None = None  # the delimiter of a multi-line string we are inside
    for number, raw in enumerate(text.splitlines(), start=1):
        if closer is not None:
            closer = None if closer in raw else closer
            continue
        stripped = raw.strip()
        plain = _PLAIN_KEY.match(stripped)
        if plain:
            result.record(table + (plain.group(1),), number)
            continue
        if stripped.startswith("["):
            plain = _PLAIN_HEADER.fullmatch(stripped)
            header = tuple(plain.group(1).split(".")) if plain else _header(stripped)
            if header is not None:
                table = header
                result.record(table, number)
            continue
        closer = _key_line(stripped, table, number, result)
    return result


def _header(line: str) -> tuple[str, ...] | None:
    """The key path of `[a.b]` or `[[a.b]]`, or None."""
    double = line.startswith("[[")
    keys, rest = parse_key(line[2:] if double else line[1:])
    if keys is None:
        return None
    rest = rest.lstrip()
    closing = "]]" if double else "]"
    return tuple(keys) if rest.startswith(closing) else None


def _key_line(line: str, table: tuple[str, ...], number: int, result: LineMap) -> str | None:
    """Record `key = value` (and a one-line inline table); return an open multi-line delimiter."""
    keys, rest = parse_key(line)
    if keys is None or not rest.lstrip().startswith("="):
        return None
    path = table + tuple(keys)
    result.record(path, number)
    value = rest.lstrip()[1:].strip()
    if value.startswith("{"):
        _inline_keys(value[1:], path, number, result)
    for delimiter in ('"""', "'''"):
        if value.startswith(delimiter) and value.count(delimiter) == 1:
            return delimiter
    return None


def _inline_keys(body: str, path: tuple[str, ...], number: int, result: LineMap) -> None:
    """Record the keys of `{ a = 1, b.c = "x" }` (flat values only; best effort)."""
    for part in _split_top_level(body.rstrip().rstrip("}")):
        keys, rest = parse_key(part)
        if keys is not None and rest.lstrip().startswith("="):
            result.record(path + tuple(keys), number)


def _split_top_level(body: str) -> list[str]:
    """Split at commas that are outside strings, arrays and nested tables."""
    parts, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(body):
        if quote:
            quote = "" if char == quote and body[index - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(body[start:index])
            start = index + 1
    parts.append(body[start:])
    return parts


def parse_key(text: str) -> tuple[list[str] | None, str]:
    """Parse a (dotted, quoted) TOML key at the start of `text`: (parts, rest) or (None, text)."""
    parts: list[str] = []
    rest = text
    while True:
        part, rest = _key_part(rest.lstrip())
        if part is None:
            return None, text
        parts.append(part)
        after = rest.lstrip()
        if not after.startswith("."):
            return parts, rest
        rest = after[1:]


def _key_part(text: str) -> tuple[str | None, str]:
    if text.startswith('"'):
        end = _closing_quote(text)
        if end < 0:
            return None, text
        return _ESCAPE.sub(_unescape, text[1:end]), text[end + 1:]
    if text.startswith("'"):
        end = text.find("'", 1)
        return (text[1:end], text[end + 1:]) if end > 0 else (None, text)
    match = _BARE.match(text)
    return (match.group(), text[match.end():]) if match else (None, text)


def _closing_quote(text: str) -> int:
    index = 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index
        index += 1
    return -1


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code[0] in "uU" and len(code) > 1:
        try:
            return chr(int(code[1:], 16))
        except ValueError:
            return code
    return _SIMPLE_ESCAPES.get(code, code)
