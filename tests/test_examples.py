"""The example repository does real work: both DAGs run to success through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import GitRepo

ROOT = Path(__file__).parent.parent


def example_repo(tmp_path: Path) -> GitRepo:
    shutil.copytree(ROOT / "examples" / "umbrella", tmp_path / "umbrella")
    repo = GitRepo(tmp_path / "umbrella")
    repo.commit(message="example")
    return repo


def test_umbrella_demand_trains_and_deploys_a_model(cli, tmp_path):
    repo = example_repo(tmp_path)
    state = tmp_path / "state"
    done = cli("run", "umbrella_demand", "--date", "2026-11-24", "--state", str(state), cwd=repo.path)
    assert done.returncode == 0, done.stdout + done.stderr
    deployed = list(state.glob("workspaces/umbrella_demand/*/deployed/model-2026-11-24.json"))
    assert len(deployed) == 1
    model = json.loads(deployed[0].read_text())
    assert model["r2"] > 0.9 and 8 < model["coef"]["rain_mm"] < 10 and model["rows"] >= 40
    assert not list(repo.path.rglob("*.csv"))  # tasks ran in a checkout and wrote to the workspace only
    assert list(state.glob("workspaces/umbrella_demand/*/joined.csv"))


def test_flaky_reports_retries_then_succeeds_and_skips_the_failure_branch(cli, tmp_path):
    repo = example_repo(tmp_path)
    state = tmp_path / "state"
    done = cli("run", "flaky_reports", "--date", "2026-11-24", "--state", str(state), cwd=repo.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "extract: success (attempt 3" in done.stdout
    assert "page_oncall: skipped" in done.stdout and "notify: success" in done.stdout
    reports = list(state.glob("workspaces/flaky_reports/*/report.txt"))
    assert len(reports) == 1 and reports[0].read_text().splitlines()[-1].split() == ["total", "442"]
