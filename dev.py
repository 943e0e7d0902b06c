#!/usr/bin/env python3
"""The two Quickstart commands, with nothing but Python 3.11+ and git needed.

    python3 dev.py demo    # venv + install, example repo, validate, list, daemon --once, site
    python3 dev.py test    # venv + install with test extras, the whole test suite
    python3 dev.py bench   # the benchmarks of bench/ (figures go to BENCHMARKS.md)

Everything lands in ./.venv and ./demo/; run it again at any time.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
DEMO = ROOT / "demo"
PY = VENV / "bin" / "python"


def sh(*cmd: object, cwd: Path = ROOT, check: bool = True, env: dict[str, str] | None = None) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=cwd, check=check, env=env).returncode


def ensure_venv(extras: str = "") -> None:
    """Create .venv once and (re)install gitflowd into it, editable."""
    if sys.version_info < (3, 11):
        sys.exit(f"gitflowd needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    sh(PY, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", f".{extras}")


def make_demo_repo() -> Path:
    """A fresh Git repository holding examples/umbrella, committed."""
    repo = DEMO / "umbrella"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(ROOT / "examples" / "umbrella", repo)
    # Catch-up should have a few days of work whenever the demo runs, not a year's.
    dag = repo / "dags" / "umbrella_demand.toml"
    start = datetime.date.today() - datetime.timedelta(days=4)
    dag.write_text(re.sub(r"(?m)^start_date = \S+", f"start_date = {start.isoformat()}", dag.read_text()))
    env = {**os.environ, "GIT_AUTHOR_NAME": "gitflowd demo", "GIT_AUTHOR_EMAIL": "demo@example.com",
           "GIT_COMMITTER_NAME": "gitflowd demo", "GIT_COMMITTER_EMAIL": "demo@example.com"}
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "Add the umbrella demand pipeline", cwd=repo, env=env)
    return repo


def demo() -> int:
    ensure_venv()
    repo = make_demo_repo()
    gitflowd = [VENV / "bin" / "gitflowd", "--repo", repo, "--state", DEMO / "state", "--site", DEMO / "site"]
    for path in (DEMO / "state", DEMO / "site"):
        shutil.rmtree(path, ignore_errors=True)
    sh(*gitflowd[:1], "validate", *gitflowd[1:3])
    sh(*gitflowd, "list")
    # One pass of the daemon: loads the head and runs every due tick of the umbrella DAG
    # since its start_date (catch-up), both branches in parallel, then renders the site.
    sh(*gitflowd, "daemon", "--once")
    sh(*gitflowd, "status")
    print(f"""
Demo repository: {repo}
State (journals, logs): {DEMO / 'state'}
Site: open {DEMO / 'site' / 'index.html'} in a browser

Try next:
  {VENV / 'bin' / 'gitflowd'} --repo {repo} --state {DEMO / 'state'} --site {DEMO / 'site'} run umbrella_demand
  {VENV / 'bin' / 'gitflowd'} --repo {repo} --state {DEMO / 'state'} --site {DEMO / 'site'} daemon   # then commit in {repo}
""")
    return 0


def test() -> int:
    ensure_venv("[test]")
    return sh(PY, "-m", "pytest", *sys.argv[2:], check=False)


def bench() -> int:
    ensure_venv("[test]")
    return sh(PY, ROOT / "bench" / "run_all.py", *sys.argv[2:], check=False)


COMMANDS = {"demo": demo, "test": test, "bench": bench}


def main(command) -> int:
    """Run a command; Ctrl-C (which the step also got, and answered) or a failed step is one line."""
    try:
        return command()
    except KeyboardInterrupt:
        print("dev.py: interrupted", file=sys.stderr)
        return 130
    except subprocess.CalledProcessError as exc:
        print(f"dev.py: step failed (exit {exc.returncode}): {' '.join(str(c) for c in exc.cmd)}", file=sys.stderr)
        return exc.returncode if exc.returncode > 0 else 1


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(COMMANDS)}}} [args]")
    sys.exit(main(COMMANDS[sys.argv[1]]))
