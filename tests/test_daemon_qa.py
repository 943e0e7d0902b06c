"""The daemon as a long-lived service meets it: found by the daemon QA pass.

Real daemon processes, real Git, real files; waits are generous and poll for an outcome.
The helpers (DaemonProcess, start, wait_for, toml) are test_daemon.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gitflowd.sitecache import SiteCache
from gitflowd.state import RunStatus
from tests.conftest import GitRepo
from tests.test_daemon import DaemonProcess, daemons, journal_of, start, toml, wait_for  # noqa: F401 (a fixture)


def test_a_render_that_waits_holds_up_neither_the_start_nor_the_loop(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                                                     daemons: list[DaemonProcess]) -> None:
    """The start rendered the whole site before READY=1, and the loop rendered after each
    reload: a site with years of runs (minutes to render) or another process rendering it
    (`gitflowd render` holds the site's lock) kept the daemon from starting (systemd's start
    timeout), from feeding the watchdog and from answering the CLI. Here another renderer
    holds the site's lock all along."""
    repo = make_repo({"dags/one.toml": toml("echo one")})
    home = tmp_path / "home"
    with SiteCache(home / "site").locked():
        daemon = start(daemons, repo.path, home)  # READY: before the site is rendered
        done = daemon.cli("run", "one", "--repo", str(repo.path), "--no-wait")
        assert done.returncode == 0, done.stderr
        run_id = done.stdout.split()[0]
        wait_for(lambda: journal_of(daemon.state, "one", run_id).state is RunStatus.SUCCESS, what="the run to end")
        sha = repo.commit({"dags/two.toml": toml("echo two")})
        daemon.wait_log(rf"reloaded {sha} 'change': 2 DAG\(s\) active; two added")
        assert not (daemon.site / "index.html").exists()
    index = daemon.site / "index.html"
    wait_for(lambda: index.exists() and 'data-dag="two"' in index.read_text(), what="the site once the lock is free")
    wait_for(lambda: (daemon.site / "dags" / "one" / "runs" / run_id / "index.html").exists(), what="the run's page")
