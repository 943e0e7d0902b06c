"""The argparse face of gitflowd: every command is a thin call into the parts below.

Each command lives in `gitflowd/commands/<name>.py` and exposes
`register(subparsers, common) -> None` (adds its parser, sets `func`) and a
`run(args) -> int`. `main()` turns every `GitflowdError` into one line on stderr and
its exit code; usage errors exit 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gitflowd import __version__
from gitflowd.errors import GitflowdError

# Order here is the order of `gitflowd --help`.
COMMANDS = ["validate", "list", "show", "run", "resume", "clear", "stop", "status", "logs", "render", "backfill", "daemon", "systemd-unit"]


COMMON_DEFAULTS = {"repo": None, "state": None, "site": None, "verbose": 0}


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand's copy of these options must not reset a value given before it
    # (`gitflowd --repo X validate`); main() supplies the defaults instead.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = common.add_argument_group("locations")
    group.add_argument("--repo", metavar="DIR", help="Git repository with dags/ (env GITFLOWD_REPO; default: the repository containing the current directory)")
    group.add_argument("--state", metavar="DIR", help="state directory (env GITFLOWD_STATE; default: REPO/.gitflowd/state)")
    group.add_argument("--site", metavar="DIR", help="static site directory (env GITFLOWD_SITE; default: REPO/.gitflowd/site)")
    group.add_argument("-v", "--verbose", action="count", help="more log output (-vv for debug)")
    return common


class _CommandParser(argparse.ArgumentParser):
    """A command's parser: options may come between its positionals (`status DAG --repo R
    RUN_ID`), which plain argparse refuses once an optional positional was passed over."""

    _mixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._mixing:  # parse_known_intermixed_args calls back here for its two passes
            return super().parse_known_args(args, namespace)
        self._mixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._mixing = False


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="gitflowd",
        description="A Git-backed workflow daemon: DAGs in TOML, committed to Git, run on schedule.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"gitflowd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_CommandParser)
    # Every command module is imported here, even for --version and --help, so each keeps its
    # top-level imports light and imports the heavy parts (the loader, Jinja2, watchdog, croniter,
    # the daemon, the site) in the functions that run the command (tests/test_cli_startup.py).
    for name in COMMANDS:
        importlib.import_module(f"gitflowd.commands.{name.replace('-', '_')}").register(subparsers, common)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv, namespace=argparse.Namespace(**COMMON_DEFAULTS))
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except GitflowdError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"gitflowd: error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gitflowd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main())
