"""The README, the CLI help and the code stay in step: every command and every option the
CLI accepts is documented in the README, and the Quickstart names the two dev.py commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from gitflowd.cli import COMMANDS, build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_readme_section(command: str) -> None:
    assert f"### `gitflowd {command}" in README


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_is_documented(command: str) -> None:
    parser = _subparsers()[command]
    options = {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    missing = sorted(o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", README))
    assert missing == [], f"gitflowd {command}: options missing from README.md: {missing}"


def test_quickstart_has_the_two_commands() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert "python3 dev.py demo" in quickstart and "python3 dev.py test" in quickstart


COMMON = {"--repo", "--state", "--site", "--verbose", "--help"}


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_section_names_its_options(command: str) -> None:
    """A reader of one command's section sees all its options (the synopsis or the text)."""
    section = re.split(r"\n##+ ", README.split(f"### `gitflowd {command}", 1)[1], maxsplit=1)[0]
    parser = _subparsers()[command]
    options = {o for a in parser._actions for o in a.option_strings if o.startswith("--")} - COMMON
    missing = sorted(o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", section))
    assert missing == [], f"the README section of gitflowd {command} does not name: {missing}"


def test_the_module_map_names_every_module() -> None:
    """A module added without a word in 'How it works' is invisible to a reader of the map."""
    module_map = README.split("Module map", 1)[1]
    named = set(re.findall(r"`(\w+)\.py`", module_map))
    package = Path(__file__).resolve().parent.parent / "gitflowd"
    modules = {p.stem for p in package.glob("*.py")} - {"__init__", "__main__"}
    assert sorted(modules - named) == [] and sorted(named - modules) == []
