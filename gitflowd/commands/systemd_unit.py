"""`gitflowd systemd-unit`: print a hardened systemd service unit for this installation.

Flow: the paths (this Python, the repository, state and site) are resolved -> `unit_text`
fills the template below -> printed; install it as /etc/systemd/system/gitflowd.service.
examples/systemd/gitflowd.service is this template with `EXAMPLE` values (a test keeps
them equal), and the README ("Run as a service") explains every line.

Hardening is chosen so that tasks (shell commands, Python programs) still run: they may
write the state directory (their workspaces) and a private /tmp, and use the network.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from gitflowd import settings
from gitflowd.commands.daemon import seconds
from gitflowd.commands.run import positive_int
from gitflowd.errors import RepoError

STATE_DIRECTORY = Path("/var/lib/gitflowd")
HOME_DIRS = (Path("/home"), Path("/root"), Path("/run/user"))
TMP_DIRS = (Path("/tmp"), Path("/var/tmp"))  # PrivateTmp=yes gives the service empty ones of its own


@dataclass(frozen=True)
class UnitPaths:
    command: tuple[str, ...]  # how to start gitflowd, e.g. (python, "-m", "gitflowd")
    repo: Path
    state: Path
    site: Path
    user: str = "gitflowd"
    grace: float = 60.0
    watchdog: int = 30
    extra: tuple[str, ...] = ()  # further daemon options


EXAMPLE = UnitPaths(
    command=("/opt/gitflowd/bin/gitflowd",),
    repo=Path("/srv/gitflowd/pipelines.git"),
    state=STATE_DIRECTORY / "state",
    site=STATE_DIRECTORY / "site",
)

TEMPLATE = """\
# gitflowd as a systemd service: follows a Git repository, runs its DAGs on schedule,
# and writes the static status site. See the README, "Run as a service"; `gitflowd systemd-unit`
# prints this unit with the paths of an installation.
[Unit]
Description=gitflowd workflow daemon (DAGs from Git)
Documentation=https://github.com/gitflowd/gitflowd#run-as-a-service
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start}
# The daemon feeds the watchdog every WatchdogSec/2; a hung loop is restarted.
WatchdogSec={watchdog}
Restart=on-failure
RestartSec=5s
# SIGTERM goes to the daemon only: it stops scheduling, gives running tasks --grace
# seconds, then ends their process groups itself and records them interrupted.
# Whatever is left after TimeoutStopSec (above the grace period) is killed by systemd.
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec={stop_timeout}
User={user}
Group={user}
StateDirectory=gitflowd
StateDirectoryMode=0750
UMask=0027
Environment=PYTHONUNBUFFERED=1
# The repository may belong to another user (e.g. git); trust it explicitly.
Environment=GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory {safe_directory}

# Hardening. Tasks run as this user: they may write the state directory and a private
# /tmp, and use the network (AF_INET/AF_INET6); everything else is read-only or hidden.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={writable}
ProtectHome={protect_home}
PrivateTmp=yes
PrivateMounts=yes
PrivateDevices=yes
PrivateUsers=yes
ProtectHostname=yes
ProtectClock=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
KeyringMode=private
DevicePolicy=closed
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
"""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "systemd-unit", parents=[common], help="print a hardened systemd unit for this installation",
        description="Print a systemd service unit (Type=notify, watchdog, hardening) that runs "
        "`gitflowd daemon` with this installation's Python and the given --repo, --state and --site "
        f"(default state and site: under {STATE_DIRECTORY}). Save it as /etc/systemd/system/gitflowd.service.",
    )
    parser.add_argument("--user", default="gitflowd", help="the dedicated user the service runs as (default: gitflowd)")
    # checked as `gitflowd daemon` checks them: a unit that fails at its first start helps nobody
    parser.add_argument("--grace", type=seconds, default=60.0, metavar="SECONDS", help="grace period for running tasks at stop (default 60)")
    parser.add_argument("--watchdog", type=_watchdog, default=30, metavar="SECONDS", help="WatchdogSec (default 30; 0: no watchdog)")
    parser.add_argument("--branch", help="branch to follow (default: the repository's current branch)")
    parser.add_argument("--parallelism", type=positive_int, metavar="N", help="global limit of concurrent tasks")
    parser.add_argument("--secrets-file", metavar="FILE", help="KEY=VALUE secrets for tasks (outside Git, mode 0600)")
    parser.set_defaults(func=run)


def _watchdog(text: str) -> int:
    value = seconds(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds: {text}")
    return int(value)


def run(args: argparse.Namespace) -> int:
    where = settings.resolve(args.repo, args.state or str(STATE_DIRECTORY / "state"), args.site or str(STATE_DIRECTORY / "site"))
    if not settings.looks_like_repository(where.repo):  # a unit for it would only fail at its first start
        raise RepoError(f"{where.repo} is not a Git repository: pass --repo with the repository the service "
                        "follows (a work tree, or a bare repository you push to)")
    extra: list[str] = []
    for flag, value in (("--branch", args.branch), ("--parallelism", args.parallelism), ("--secrets-file", args.secrets_file)):
        if value is not None:
            extra += [flag, str(Path(value).absolute()) if flag == "--secrets-file" else str(value)]
    paths = UnitPaths((sys.executable, "-m", "gitflowd"), where.repo, where.state, where.site, args.user, args.grace, args.watchdog, tuple(extra))
    print(unit_text(paths), end="")
    if _under_home(Path(sys.executable)):
        print(f"gitflowd: note: {sys.executable} is under a home directory; user {args.user!r} must be able to read it "
              "(install gitflowd in a system location, e.g. a venv under /opt, for a service)", file=sys.stderr)
    for path in _writable(paths):
        if path != STATE_DIRECTORY and not path.exists():  # StateDirectory= makes only that one
            print(f"gitflowd: note: {path} does not exist; create it, owned by {args.user!r}, before the service starts "
                  "(systemd refuses to start a unit whose ReadWritePaths= is missing)", file=sys.stderr)
    if args.secrets_file and not Path(args.secrets_file).exists():
        print(f"gitflowd: note: the secrets file {Path(args.secrets_file).absolute()} does not exist; create it (mode 600, "
              f"owned by {args.user!r}) before the service starts: the daemon refuses to start without it", file=sys.stderr)
    for path in _used_paths(paths):
        if any(path.is_relative_to(tmp) for tmp in TMP_DIRS):
            print(f"gitflowd: note: {path} is under /tmp or /var/tmp, which the service does not see (PrivateTmp=yes "
                  "gives it private ones); use a path such as /srv or /var/lib", file=sys.stderr)
    return 0


def unit_text(paths: UnitPaths) -> str:
    """The unit file for `paths`."""
    daemon = [*paths.command, "daemon", "--repo", str(paths.repo), "--state", str(paths.state), "--site", str(paths.site), "--grace", f"{paths.grace:g}", *paths.extra]
    return TEMPLATE.format(
        exec_start=" ".join(_quote(word) for word in daemon),
        watchdog=paths.watchdog,
        stop_timeout=f"{int(paths.grace) + 30}s",
        user=paths.user,
        safe_directory=_quote(f"GIT_CONFIG_VALUE_0={paths.repo}", expands=False),
        writable=" ".join(_quote(str(p), expands=False) for p in _writable(paths)),
        protect_home="read-only" if any(_under_home(p) for p in _used_paths(paths)) else "yes",
    )


def _writable(paths: UnitPaths) -> list[Path]:
    """State and site, folded into the StateDirectory when they live there."""
    result: list[Path] = []
    for path in (paths.state, paths.site):
        entry = STATE_DIRECTORY if path.is_relative_to(STATE_DIRECTORY) else path
        if entry not in result:
            result.append(entry)
    return result


def _used_paths(paths: UnitPaths) -> list[Path]:
    """Every path the service reads or writes (a secrets file included)."""
    secrets = [Path(value) for flag, value in zip(paths.extra, paths.extra[1:]) if flag == "--secrets-file"]
    return [Path(paths.command[0]), paths.repo, paths.state, paths.site, *secrets]


def _under_home(path: Path) -> bool:
    return any(path.is_relative_to(home) for home in HOME_DIRS)


def _quote(word: str, expands: bool = True) -> str:
    """systemd quoting of one word: plain when safe, else double quotes with escapes.
    `%` is a specifier everywhere; `$` is expanded only on command lines (`expands`), and
    is literal in Environment= and path lists, where `$$` would stay two dollars."""
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", word):
        return word.replace("%", "%%")
    quoted = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return '"' + (quoted.replace("$", "$$") if expands else quoted) + '"'
