"""The TOML line locator: table headers, keys, dotted and quoted keys, inline tables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given
from hypothesis import strategies as st

from gitflowd import toml_lines
from gitflowd.toml_lines import locate, parse_key

TEXT = '''\
# comment
[dag]
schedule = "@daily"
params = { region = "seoul", "my key" = 1 }

[defaults]
retries = 1

[tasks.fetch]
cmd = """
[tasks.not_a_header]
retries = 9
"""
deps = ["x"]

[tasks."a.b"]
cmd = 'x'
env.FOO = "1"

[tasks]
c = { cmd = "true", retrys = 1 }
'''


def test_headers_and_keys():
    lines = locate(TEXT)
    assert lines.line("dag") == 2
    assert lines.line("dag", "schedule") == 3
    assert lines.line("defaults", "retries") == 7
    assert lines.line("tasks", "fetch") == 9
    assert lines.line("tasks", "fetch", "cmd") == 10
    assert lines.line("tasks", "fetch", "deps") == 14


def test_multiline_strings_are_skipped():
    lines = locate(TEXT)
    assert ("tasks", "not_a_header") not in lines.lines
    assert lines.line("tasks", "fetch", "retries") == 9  # falls back to the table header


def test_quoted_and_dotted_keys():
    lines = locate(TEXT)
    assert lines.line("tasks", "a.b") == 16
    assert lines.line("tasks", "a.b", "env", "FOO") == 18
    assert lines.line("tasks", "a.b", "env") == 18


def test_inline_tables():
    lines = locate(TEXT)
    assert lines.line("dag", "params", "region") == 4
    assert lines.line("dag", "params", "my key") == 4
    assert lines.line("tasks", "c", "retrys") == 21


def test_fallbacks():
    lines = locate(TEXT)
    assert lines.line("dag", "nope") == 2
    assert lines.line("nothing", "here") == 1
    assert locate("").line("dag") == 1
    assert locate("garbage [[[ = = =\n\"unclosed").line("x") == 1


def test_parse_key():
    assert parse_key('a.b = 1') == (["a", "b"], " = 1")
    assert parse_key('"x\\u0041y" . \'lit\' = 2') == (["xAy", "lit"], " = 2")
    assert parse_key("= 1") == (None, "= 1")
    assert parse_key('"open') == (None, '"open')


LINES = st.sampled_from([
    "[dag]", "[tasks.a]", "[tasks.b-c] # note", '[tasks."x.y"]', "[[arr]]", "[ tasks.d ]", "[tasks.e]]",
    'k = 1', 'k=1', 'cmd = "echo {{ ds }}"', "deps = ['a']", 'env = { A = "1", b.c = 2 }', 'e = {}',
    'x.y = 2', '"q k" = 3', 'm = """', 'm = """one"""', "n = '''", '"""', "'''", 'k =', 'k = {x=1}',
    '', '# c', '  indented = true', 'k\t= 2', '= 3', 'weird',
])


@given(st.lists(LINES, max_size=25))
def test_fast_paths_agree_with_the_general_reader(lines: list[str]) -> None:
    """The regex fast paths record exactly what the general key parser records."""
    text = "\n".join(lines)
    fast = locate(text).lines
    with _fast_paths_off():
        assert locate(text).lines == fast


@contextmanager
def _fast_paths_off() -> Iterator[None]:
    saved = toml_lines._PLAIN_KEY, toml_lines._PLAIN_HEADER
    toml_lines._PLAIN_KEY = toml_lines._PLAIN_HEADER = re.compile(r"(?!)")  # matches nothing
    try:
        yield
    finally:
        toml_lines._PLAIN_KEY, toml_lines._PLAIN_HEADER = saved
