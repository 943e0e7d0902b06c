"""The CLI starts without its heavy dependencies: each command imports them only when it runs.

Every check runs a fresh interpreter (a real subprocess) and reads its `sys.modules` after
the CLI did its work, so imports made by this test process cannot hide anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import GIT_ENV, GitRepo

HEAVY = ("git", "jinja2", "watchdog", "croniter", "gitflowd.daemon", "gitflowd.site", "gitflowd.watch")

# Runs gitflowd's main() with the given argv in this interpreter, then prints, as the last
# line of stdout, the exit code and the sorted names of every module imported meanwhile.
PROBE = """
import json, sys
from gitflowd.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _probe(*argv: str, cwd: Path | None = None) -> tuple[object, set[str]]:
    env = {**os.environ, **GIT_ENV}
    for key in ("GITFLOWD_REPO", "GITFLOWD_STATE", "GITFLOWD_SITE"):
        env.pop(key, None)
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


def _heavy(modules: set[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    """The modules among `modules` that are one of `names` or inside one of them."""
    return sorted(m for m in modules if any(m == name or m.startswith(name + ".") for name in names))


def test_building_the_parser_imports_no_heavy_dependency():
    code = "import sys, json; from gitflowd.cli import build_parser; build_parser(); print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout))
    assert "gitflowd.commands.run" in modules and "gitflowd.commands.daemon" in modules  # the parser was built
    assert _heavy(modules) == []


def test_version_and_help_import_no_heavy_dependency():
    for argv in (["--version"], ["--help"], ["run", "--help"], ["daemon", "--help"]):
        code, modules = _probe(*argv)
        assert code == 0, argv
        assert _heavy(modules) == [], argv


def test_status_imports_no_heavy_dependency(make_repo):
    repo = make_repo({"dags/quick.toml": '[dag]\n\n[tasks.a]\ncmd = "true"\n'})
    assert _probe("run", "quick", "--no-render", cwd=repo.path)[0] == 0
    for argv in (["status"], ["status", "quick"], ["status", "--json"]):
        code, modules = _probe(*argv, cwd=repo.path)
        assert code == 0, argv
        assert _heavy(modules) == [], argv


def test_run_no_render_imports_neither_the_site_nor_the_daemon(make_repo):
    repo: GitRepo = make_repo({"dags/quick.toml": '[dag]\n\n[tasks.a]\ncmd = "true"\n'})
    code, modules = _probe("run", "quick", "--no-render", cwd=repo.path)
    assert code == 0
    assert _heavy(modules, ("watchdog", "gitflowd.daemon", "gitflowd.site", "gitflowd.watch")) == []
    assert "gitflowd.repo" in modules  # it did load the DAG from Git: through the git command
    assert _heavy(modules, ("git", "gitdb")) == []  # not through GitPython (its import cost 31-40 ms)
    assert _heavy(modules, ("jinja2", "croniter")) == []  # plain commands and no schedule need neither
    # socket (the host name, sd_notify), uuid (request ids) and the platform module uuid pulls
    # in cost ~5 ms together and a run needs none of them.
    assert _heavy(modules, ("socket", "uuid", "platform", "gitflowd.notify")) == []


def test_templates_and_schedules_import_jinja_and_croniter_when_used(make_repo):
    repo = make_repo({"dags/quick.toml": '[dag]\nschedule = "0 3 * * *"\nstart_date = 2026-01-01\n\n'
                                         '[tasks.a]\ncmd = "echo {{ ds }} {% if params %}x{% endif %}"\n'})
    code, modules = _probe("run", "quick", "--no-render", cwd=repo.path)
    assert code == 0
    assert "jinja2" in modules and "croniter" in modules


def test_run_with_the_site_imports_the_site(make_repo):
    # The other side of the lazy import: without --no-render the site renderer is still used.
    repo = make_repo({"dags/quick.toml": '[dag]\n\n[tasks.a]\ncmd = "true"\n'})
    code, modules = _probe("run", "quick", cwd=repo.path)
    assert code == 0
    assert "gitflowd.site" in modules
    assert (repo.path / ".gitflowd" / "site" / "index.html").is_file()
