"""The service unit: the example file, `gitflowd systemd-unit`, `systemd-analyze verify` and `security`."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gitflowd.commands.systemd_unit import EXAMPLE, unit_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_FILE = ROOT / "examples" / "systemd" / "gitflowd.service"
ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture
def analyze() -> str:
    if ANALYZE is None:
        if os.environ.get("GITFLOWD_REQUIRE_SYSTEMD") == "1":
            pytest.fail("systemd-analyze is not installed but GITFLOWD_REQUIRE_SYSTEMD=1")
        pytest.skip("systemd-analyze is not installed")
    return ANALYZE


def settings_of(text: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            result.setdefault(key, []).append(value)
    return result


def verify(analyze: str, unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)


def exposure(analyze: str, unit: Path) -> float:
    done = subprocess.run([analyze, "security", "--offline=true", str(unit)], capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    return float(match.group(1))


def write_unit(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    unit = folder / "gitflowd.service"
    unit.write_text(text)
    return unit


def test_example_file_is_the_template_with_example_paths() -> None:
    assert EXAMPLE_FILE.read_text() == unit_text(EXAMPLE), "regenerate examples/systemd/gitflowd.service from unit_text(EXAMPLE)"


def test_example_has_the_required_settings() -> None:
    unit = settings_of(EXAMPLE_FILE.read_text())
    expected = {
        "Type": "notify", "Restart": "on-failure", "KillMode": "mixed", "StateDirectory": "gitflowd", "User": "gitflowd",
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/gitflowd", "ProtectHome": "yes", "PrivateTmp": "yes",
    }
    for key, value in expected.items():
        assert unit[key] == [value], key
    assert int(unit["WatchdogSec"][0]) > 0
    grace = float(re.search(r"--grace (\S+)", unit["ExecStart"][0]).group(1))
    assert float(unit["TimeoutStopSec"][0].rstrip("s")) > grace


def test_tasks_keep_what_they_need() -> None:
    """Shell and Python tasks need exec, W+X memory (JITs, ctypes), the network and a writable state dir."""
    unit = settings_of(EXAMPLE_FILE.read_text())
    for forbidden in ("MemoryDenyWriteExecute", "PrivateNetwork", "NoExecPaths", "IPAddressDeny", "ProcSubset"):
        assert forbidden not in unit
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(unit["RestrictAddressFamilies"][0].split())
    assert "@system-service" in unit["SystemCallFilter"]
    assert unit["SystemCallErrorNumber"] == ["EPERM"]  # a refused call fails, it does not kill the task


def test_example_passes_verify_once_its_program_exists(analyze: str, tmp_path: Path) -> None:
    text = EXAMPLE_FILE.read_text().replace("/opt/gitflowd/bin/gitflowd", sys.executable + " -m gitflowd")
    done = verify(analyze, write_unit(tmp_path, text))
    assert done.returncode == 0, done.stderr


def test_example_exposure_is_at_most_3(analyze: str) -> None:
    assert exposure(analyze, EXAMPLE_FILE) <= 3.0


def test_generated_unit_passes_verify_and_security(analyze: str, cli: Callable[..., subprocess.CompletedProcess[str]], make_repo: Callable[..., object], tmp_path: Path) -> None:
    repo = make_repo({"dags/a.toml": "[tasks.t]\ncmd = 'true'\n"})
    done = cli("systemd-unit", "--repo", str(repo.path), "--grace", "200", "--parallelism", "3")
    assert done.returncode == 0, done.stderr
    unit = settings_of(done.stdout)
    assert unit["ExecStart"][0].startswith(f"{sys.executable} -m gitflowd daemon --repo {repo.path} ")
    assert "--grace 200 --parallelism 3" in unit["ExecStart"][0]
    assert unit["TimeoutStopSec"] == ["230s"]
    path = write_unit(tmp_path / "unit", done.stdout)
    assert verify(analyze, path).returncode == 0, verify(analyze, path).stderr
    assert exposure(analyze, path) <= 3.0


def test_custom_paths_are_writable_quoted_and_home_is_read_only(analyze: str, cli: Callable[..., subprocess.CompletedProcess[str]], make_repo: Callable[..., object], tmp_path: Path) -> None:
    repo = make_repo({"dags/a.toml": "[tasks.t]\ncmd = 'true'\n"})
    state, site = tmp_path / "my state", Path("/home/ops/site")
    done = cli("systemd-unit", "--repo", str(repo.path), "--state", str(state), "--site", str(site))
    assert done.returncode == 0, done.stderr
    unit = settings_of(done.stdout)
    assert unit["ReadWritePaths"] == [f'"{state}" {site}']
    assert unit["ProtectHome"] == ["read-only"]
    assert f'--state "{state}"' in unit["ExecStart"][0]
    path = write_unit(tmp_path / "unit", done.stdout)
    assert verify(analyze, path).returncode == 0


def test_outside_a_repository_it_refuses_instead_of_printing_a_unit_for_it(cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    for args, where in (((), plain), (("--repo", str(tmp_path / "missing")), plain)):
        done = cli("systemd-unit", *args, cwd=where)
        assert done.returncode == 1 and done.stdout == "", done.stdout
        (line,) = done.stderr.splitlines()
        assert line.startswith("gitflowd: error: ") and "is not a Git repository" in line and "--repo" in line, line


def test_an_empty_bare_repository_is_fine(cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    bare = tmp_path / "pipelines.git"  # the README's step 1: the unit is made before the first push
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    done = cli("systemd-unit", "--repo", str(bare))
    assert done.returncode == 0 and f"--repo {bare} " in done.stdout, done.stderr


def test_a_secrets_file_under_home_keeps_home_readable() -> None:
    paths = dataclasses.replace(EXAMPLE, extra=("--secrets-file", "/home/ops/secrets"))
    assert settings_of(unit_text(EXAMPLE))["ProtectHome"] == ["yes"]
    assert settings_of(unit_text(paths))["ProtectHome"] == ["read-only"]  # with `yes` the daemon could not read it


def test_paths_under_tmp_get_a_note_that_the_service_cannot_see_them(cli: Callable[..., subprocess.CompletedProcess[str]], make_repo: Callable[..., object]) -> None:
    repo = make_repo({"dags/a.toml": "[tasks.t]\ncmd = 'true'\n"})
    assert str(repo.path).startswith(("/tmp/", "/var/tmp/"))  # pytest's tmp_path
    done = cli("systemd-unit", "--repo", str(repo.path))
    assert done.returncode == 0 and "ExecStart=" in done.stdout
    assert f"gitflowd: note: {repo.path} is under /tmp or /var/tmp" in done.stderr and "PrivateTmp" in done.stderr, done.stderr
    clean = cli("systemd-unit", "--repo", str(repo.path), "--state", "/srv/state", "--site", "/srv/site")
    assert "/srv/state is under /tmp" not in clean.stderr


@pytest.mark.parametrize("args, message", [
    (["--grace", "-5"], "argument --grace: must be a finite number of seconds, zero or more: -5"),
    (["--grace", "inf"], "argument --grace: must be a finite number of seconds, zero or more: inf"),
    (["--parallelism", "0"], "argument --parallelism: must be at least 1: 0"),
    (["--watchdog", "-1"], "argument --watchdog: must be a finite number of seconds, zero or more: -1"),
    (["--watchdog", "1.5"], "argument --watchdog: must be a whole number of seconds: 1.5"),
])
def test_values_the_daemon_would_refuse_are_refused_now_not_at_the_services_first_start(
        cli: Callable[..., subprocess.CompletedProcess[str]], make_repo: Callable[..., object], args: list[str], message: str) -> None:
    """`--grace -5` and `--parallelism 0` printed a unit whose daemon exited 2 at every start
    (a restart loop under Restart=on-failure); `--grace inf` was a traceback."""
    repo = make_repo({"dags/a.toml": "[tasks.t]\ncmd = 'true'\n"})
    done = cli("systemd-unit", "--repo", str(repo.path), "--state", "/srv/state", *args)
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert done.stderr.splitlines()[-1] == f"gitflowd systemd-unit: error: {message}" and "Traceback" not in done.stderr


def test_a_dollar_in_a_path_is_doubled_only_on_the_command_line(analyze: str, tmp_path: Path) -> None:
    """systemd expands `$` on ExecStart= only; in Environment= and ReadWritePaths= it is
    literal, so `$$` there named another directory (safe.directory did not match the repo)."""
    paths = dataclasses.replace(EXAMPLE, repo=Path("/srv/pipe$lines %x.git"), state=Path("/srv/st$te"), site=Path("/srv/site"))
    unit = settings_of(unit_text(paths))
    assert "--repo \"/srv/pipe$$lines %%x.git\"" in unit["ExecStart"][0] and "--state \"/srv/st$$te\"" in unit["ExecStart"][0]
    assert unit["Environment"][1] == 'GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory "GIT_CONFIG_VALUE_0=/srv/pipe$lines %%x.git"'
    assert unit["ReadWritePaths"] == ['"/srv/st$te" /srv/site']
    text = unit_text(dataclasses.replace(paths, command=(sys.executable, "-m", "gitflowd")))
    assert verify(analyze, write_unit(tmp_path, text)).returncode == 0


def test_a_state_or_site_that_does_not_exist_gets_a_note(cli: Callable[..., subprocess.CompletedProcess[str]], make_repo: Callable[..., object], tmp_path: Path) -> None:
    """ReadWritePaths= of a missing directory stops the service at start (226/NAMESPACE)."""
    repo = make_repo({"dags/a.toml": "[tasks.t]\ncmd = 'true'\n"})
    (tmp_path / "site").mkdir()
    done = cli("systemd-unit", "--repo", str(repo.path), "--state", str(tmp_path / "state"), "--site", str(tmp_path / "site"))
    assert done.returncode == 0 and "ExecStart=" in done.stdout
    assert f"gitflowd: note: {tmp_path / 'state'} does not exist; create it, owned by 'gitflowd'" in done.stderr
    assert f"{tmp_path / 'site'} does not exist" not in done.stderr
    default = cli("systemd-unit", "--repo", str(repo.path))  # under StateDirectory=, which systemd makes
    assert "does not exist" not in default.stderr


def test_a_secrets_file_that_does_not_exist_gets_a_note(cli: Callable[..., subprocess.CompletedProcess[str]], make_repo: Callable[..., object], tmp_path: Path) -> None:
    """The daemon refuses to start without it: the unit would fail at every start."""
    repo = make_repo({"dags/a.toml": "[tasks.t]\ncmd = 'true'\n"})
    missing = tmp_path / "secrets"
    done = cli("systemd-unit", "--repo", str(repo.path), "--secrets-file", str(missing))
    assert done.returncode == 0 and f"--secrets-file {missing}" in done.stdout
    assert f"gitflowd: note: the secrets file {missing} does not exist; create it (mode 600, owned by 'gitflowd')" in done.stderr
    missing.write_text("KEY=value\n")
    assert "does not exist" not in cli("systemd-unit", "--repo", str(repo.path), "--secrets-file", str(missing)).stderr
