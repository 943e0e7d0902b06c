"""`gitflowd daemon [--branch B] [--parallelism N] [--once] [--poll SECONDS] [--grace SECONDS] [--secrets-file F]`.

Follows a branch, reloads on every commit, runs DAGs on their schedules and takes
requests from the CLI until SIGTERM (see daemon.py). Logs go to stderr: with a level
prefix journald understands (`<6>`) when stderr is the journal, else with a timestamp;
never coloured. `--once` reloads, runs everything due (catch-up included), waits for it
and exits: for tests, demos and cron.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys

from gitflowd import settings
from gitflowd.commands.run import positive_int
from gitflowd.errors import UsageError
from gitflowd.secrets import load_file, resolve_path

# sd-daemon(3) priorities, so journald keeps the level of each line.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "daemon", parents=[common], help="follow the branch: reload on commits, run schedules, serve CLI requests",
        description="Run the gitflowd daemon: reload on every commit of the branch, run every DAG on its "
        "schedule (catch-up included), take run/resume/clear/backfill requests from the CLI, render the site. "
        "Stops cleanly on SIGTERM (running tasks get --grace seconds). One daemon per state directory.",
    )
    parser.add_argument("--branch", help="branch to follow (default: the repository's current branch)")
    parser.add_argument("--parallelism", type=positive_int, default=os.cpu_count() or 2, metavar="N",
                        help="tasks running at once over all runs (default: CPU count)")
    parser.add_argument("--once", action="store_true", help="reload, run everything due, wait for it, exit")
    parser.add_argument("--poll", type=seconds, metavar="SECONDS", help="poll the repository every SECONDS instead of using inotify")
    parser.add_argument("--grace", type=seconds, default=60.0, metavar="SECONDS",
                        help="on SIGTERM, how long running tasks may finish before they are ended (default 60; "
                        "a second SIGTERM or Ctrl-C ends them at once)")
    parser.add_argument("--secrets-file", metavar="FILE", help="KEY=VALUE secrets, mode 600 (env GITFLOWD_SECRETS_FILE)")
    parser.set_defaults(func=run)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < math.inf:  # also NaN; infinity is no deadline (and no TimeoutStopSec=)
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, zero or more: {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from gitflowd.daemon import Daemon, Options
    from gitflowd.notify import Notifier

    setup_logging(args.verbose)
    where = settings.resolve(args.repo, args.state, args.site)
    if args.poll == 0:
        raise UsageError("--poll must be more than 0 seconds")
    secrets_file = resolve_path(args.secrets_file)
    if secrets_file:
        load_file(secrets_file)  # refuse a missing or readable-by-others file before starting
    settings.exclude_from_git(where)
    options = Options(repo=where.repo, state=where.state, site=where.site, branch=args.branch, parallelism=args.parallelism,
                      once=args.once, poll=args.poll, grace=args.grace, secrets_file=secrets_file)
    daemon = Daemon(options, Notifier.from_env())
    return daemon.serve()


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITY.get(record.levelno, 6)}>" + super().format(record)


def setup_logging(verbosity: int) -> None:
    """INFO by default (-v: DEBUG); journald prefixes when stderr is the journal."""
    handler = logging.StreamHandler(sys.stderr)
    if _stderr_is_journal():
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbosity else logging.INFO, handlers=[handler], force=True)
    logging.getLogger("watchdog").setLevel(logging.WARNING)


def _stderr_is_journal() -> bool:
    """systemd sets JOURNAL_STREAM to the device:inode of the journal stream it connected."""
    try:
        device, inode = (int(part) for part in os.environ.get("JOURNAL_STREAM", "").split(":"))
        info = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (info.st_dev, info.st_ino) == (device, inode)
