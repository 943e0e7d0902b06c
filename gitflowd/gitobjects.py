"""Git's raw tree and commit objects, as `git cat-file --batch` prints them.

A tree is a run of entries `<octal mode> <name>NUL<binary object id>`; a commit is header
lines (`tree`, `parent`, `author`, `committer`, `encoding`...; a line that starts with a
space continues the one before it, as a signature does) up to a blank line, then the
message (git's Documentation/gitformat-commit.txt). Reading them here, from the one
cat-file process a Repo keeps, spares a `git ls-tree` and a `git log` process per load.
Malformed objects raise ValueError.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

TREE = 0o040000
SYMLINK = 0o120000
SUBMODULE = 0o160000
# `Name <email> 1732500000 +0900`; an empty name leaves no space before `<`.
_PERSON = re.compile(rb"(.*?) ?<([^>\n]*)> (\d+) ([+-])(\d\d)(\d\d)")


@dataclass(frozen=True)
class TreeEntry:
    mode: int
    name: str
    sha: str


@dataclass(frozen=True)
class Commit:
    tree: str
    author: str
    email: str
    time: datetime  # author time, in the author's offset
    message: str


def tree_entries(data: bytes, id_bytes: int) -> list[TreeEntry]:
    """The entries of a tree whose object ids are `id_bytes` long (20 for SHA-1, 32 for SHA-256)."""
    entries, pos = [], 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        end = nul + 1 + id_bytes
        if end > len(data):
            raise ValueError("tree entry cut short")
        name = data[space + 1:nul].decode(errors="replace")
        entries.append(TreeEntry(int(data[pos:space], 8), name, data[nul + 1:end].hex()))
        pos = end
    return entries


def parse_commit(data: bytes) -> Commit:
    """A commit object's tree, author and message, decoded as `git log --encoding=UTF-8` would."""
    head, _, body = data.partition(b"\n\n")
    headers: dict[bytes, bytes] = {}
    for line in head.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key and not line.startswith(b" "):
            headers.setdefault(key, value)
    if b"tree" not in headers:
        raise ValueError("commit without a tree")
    codec = _codec(headers.get(b"encoding"))
    name, email, when = _person(headers.get(b"author", b""), codec)
    return Commit(headers[b"tree"].decode(), name, email, when, body.decode(codec, errors="replace"))


def _codec(encoding: bytes | None) -> str:
    """The commit's declared encoding if Python knows it, else UTF-8 (git's default)."""
    if encoding:
        try:
            return codecs.lookup(encoding.decode("ascii", errors="replace")).name
        except LookupError:
            pass
    return "utf-8"


def _person(value: bytes, codec: str) -> tuple[str, str, datetime]:
    match = _PERSON.fullmatch(value)
    if match is None:  # a damaged author line: git log shows the epoch too
        return value.decode(codec, errors="replace"), "", datetime.fromtimestamp(0, UTC)
    name, email, seconds, sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours), minutes=int(minutes)) * (-1 if sign == b"-" else 1)
    try:
        zone = timezone(offset)
    except ValueError:  # an offset of a day or more
        zone = UTC
    return (name.decode(codec, errors="replace"), email.decode(codec, errors="replace"),
            datetime.fromtimestamp(int(seconds), zone))
