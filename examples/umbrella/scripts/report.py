"""The report step of flaky_reports, run as `call = "scripts.report:build"`."""

import json
import os


def build() -> None:
    """Summarise the extract into report.txt in the run's workspace."""
    workspace = os.environ.get("GITFLOWD_WORKSPACE", ".")
    with open(os.path.join(workspace, "extract.json")) as fh:
        rows = json.load(fh)
    total = sum(row["orders"] for row in rows)
    lines = [f"{row['region']:<6} {row['orders']:>5}" for row in rows] + [f"{'total':<6} {total:>5}"]
    with open(os.path.join(workspace, "report.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"report: {len(rows)} regions, {total} orders")
