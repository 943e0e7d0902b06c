"""`gitflowd render [--state DIR] [--site DIR] [--secrets-file F]`: rebuild the whole static site from state.

Reads only the state directory (run journals, logs, the DAG registry), never Git, and
prints the path of index.html to open in a browser. Logs are masked on disk when their
attempt ends; the secrets file's values are masked again in every log published, and
without a DAG's secrets the log of an attempt that never ended (still running, or its
runner died) is not published at all.
"""

from __future__ import annotations

import argparse
import sys

from gitflowd import settings
from gitflowd.errors import StateError
from gitflowd.secrets import load_file, resolve_path


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "render", parents=[common], help="render the static status site from the state directory",
        description="Render every page of the status site (index, DAGs, runs, logs, status.json) "
        "from the state directory into the site directory and print the path of index.html.",
    )
    parser.add_argument("--secrets-file", metavar="FILE",
                        help="mask these secrets in the logs published, and publish the logs of unfinished "
                             "attempts (env GITFLOWD_SECRETS_FILE)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitflowd.site import Site

    where = settings.resolve(args.repo, args.state, args.site)
    if not where.state.is_dir():
        raise StateError(f"no state directory at {where.state}: run a DAG first, or pass --state DIR")
    if where.site.exists() and not where.site.is_dir():
        raise StateError(f"site path {where.site} exists and is not a directory")
    secrets_file = resolve_path(args.secrets_file)
    secrets = load_file(secrets_file) if secrets_file else {}  # an unusable file stops us: nothing written
    settings.exclude_from_git(where)
    site = Site(where.state, where.site, secrets=secrets)
    print(site.render_all())
    if site.skipped:  # rendered without them, as `status` lists the others: still an error to report
        print(f"gitflowd: error: {len(site.skipped)} run journal(s) could not be read and are not on the site (see above)", file=sys.stderr)
        return 1
    return 0
