#!/usr/bin/env python3
"""Run every benchmark and report each figure beside its floor or budget, PASS or MISS.

Flow: for each workload (1-2 overhead, 3 reload, 4 latency, 5 site, 6 journal, 7 idle)
a fresh interpreter (`run_all.py --worker NAME --out FILE`, so that no workload measures
another's leftovers: caches, threads, a big heap) calls its module's `figures(quick)` and
writes the figures as JSON -> one markdown report (machine, load, the table, any
benchmark that could not run) -> printed, and written into BENCHMARKS.md between the
RESULTS markers (the rest of the file, e.g. the profiles, is left alone).

    python3 bench/run_all.py [--quick] [--only NAME[,NAME...]] [--no-write]

`--quick` uses smaller sizes (budgets are for the full sizes: indicative only);
`--only` runs some workloads and never writes the file. `python3 dev.py bench` runs this
with the project's .venv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import bench_idle
import bench_journal
import bench_latency
import bench_overhead
import bench_reload
import bench_site
from common import BENCH, TABLE_HEAD, TRASH, Figure, machine

REPORT = BENCH.parent / "BENCHMARKS.md"
BEGIN, END = "<!-- RESULTS:BEGIN (written by bench/run_all.py) -->", "<!-- RESULTS:END -->"
OVERHEAD_BUDGETS = {1000: 1.6, 10000: 1.3}  # ratio to the Python floor
SCALING_BUDGET = 1.5  # per-task overhead at 10,000 / at 1,000


def overhead_figures(quick: bool = False) -> list[Figure]:
    """Workloads 1 and 2 from bench_overhead.measure, as figures."""
    sizes = [100, 1000] if quick else [100, 1000, 10000]
    result = []
    for shape in bench_overhead.SHAPES:
        per_task = {}
        for n in sizes:
            try:
                m = bench_overhead.measure(shape, n)
            except subprocess.TimeoutExpired:  # larger N would only take longer
                result.append(Figure("1 overhead", f"{shape} N={n:,}: gitflowd run TIMED OUT", bench_overhead.TIMEOUT, "s", 0.0))
                break
            per_task[n] = m["per_task_ms"]
            floors = f"floor {m['floor']:.2f} s, xargs -P2 {m['xargs']:.2f} s, a file created in {m['create_us']:.0f} us"
            result += [
                Figure("1 overhead", f"{shape} N={n:,}: gitflowd run --no-render wall time", m["gitflowd"], "s", reference=floors),
                Figure("1 overhead", f"{shape} N={n:,}: ratio to the Python floor (median of 5 adjacent triples)",
                       m["ratio"], "x", OVERHEAD_BUDGETS.get(n)),
                Figure("1 overhead", f"{shape} N={n:,}: overhead per task", per_task[n], "ms", reference="info"),
                Figure("1 overhead", f"{shape} N={n:,}: contract floor (log file, journal, group fsync) / floor",
                       m["contract_ratio"], "x", reference=f"info, {m['contract']:.2f} s"),
                Figure("1 overhead", f"{shape} N={n:,}: gitflowd / contract floor", m["over_contract"], "x", reference="info"),
                Figure("1 overhead", f"{shape} N={n:,}: gitflowd run with the site rendered, ratio to the floor",
                       m["gitflowd_site"] / m["floor"], "x", reference="info"),
            ]
        if 10000 in per_task and per_task[1000] > 0:
            result.append(Figure("2 scaling", f"{shape}: overhead per task at N=10,000 / at N=1,000",
                                 per_task[10000] / per_task[1000], "x", SCALING_BUDGET))
    return result


WORKLOADS: dict[str, Callable[[bool], list[Figure]]] = {
    "overhead": overhead_figures,
    "reload": bench_reload.figures,
    "latency": bench_latency.figures,
    "site": bench_site.figures,
    "journal": bench_journal.figures,
    "idle": bench_idle.figures,
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def header(quick: bool, started: datetime, load: tuple[float, float, float]) -> list[str]:
    end = os.getloadavg()
    lines = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()} ({cpu_model()}).",
        f"Load average when the run started: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min), "
        f"when it ended: {end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f}; "
        "anything near or above the core count means other work shared the machine and the figures are noisy.",
        f"Scratch repositories, state and sites under `{tempfile.gettempdir()}` (set TMPDIR to move them).",
    ]
    if quick:
        lines.append("**Quick run (`--quick`): reduced sizes; the budgets are for the full sizes and only indicative here.**")
    return lines


def run(names: list[str], quick: bool) -> tuple[list[Figure], list[str]]:
    figures: list[Figure] = []
    failures: list[str] = []
    for name in names:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            found = run_isolated(name, quick)
        except RuntimeError as exc:  # one broken benchmark must not hide the others
            failures.append(f"- `{name}` could not run: {exc}")
            continue
        for figure in found:
            print(figure.row(), flush=True)
        figures += found
        print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    return figures, failures


def run_isolated(name: str, quick: bool) -> list[Figure]:
    """The figures of one workload, measured in a fresh interpreter (its stderr shows here)."""
    with tempfile.TemporaryDirectory(prefix="gitflowd-bench-") as temp:
        out = Path(temp) / "figures.json"
        command = [sys.executable, __file__, "--worker", name, "--out", str(out), *(["--quick"] if quick else [])]
        done = subprocess.run(command, stdout=subprocess.DEVNULL)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"its worker exited with {done.returncode} (its error is printed above)")
        return [Figure(**data) for data in json.loads(out.read_text())]


def worker(name: str, quick: bool, out: Path) -> None:
    out.write_text(json.dumps([asdict(f) for f in WORKLOADS[name](quick)]))


def report(figures: list[Figure], failures: list[str], quick: bool, started: datetime,
           load: tuple[float, float, float]) -> str:
    misses = [f for f in figures if f.verdict == "MISS"]
    summary = f"{sum(f.verdict == 'PASS' for f in figures)} PASS, {len(misses)} MISS"
    lines = [*header(quick, started, load), "", *TABLE_HEAD, *(f.row() for f in figures), "", f"Budgets: {summary}."]
    if failures:
        lines += ["", "Benchmarks that could not run:", *failures]
    return "\n".join(lines)


def write(text: str) -> None:
    block = f"{BEGIN}\n{text}\n{END}"
    old = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n## Results\n\n" + block + "\n"
    REPORT.write_text(new)
    print(f"written into {REPORT}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    parser.add_argument("--only", help=f"comma-separated workloads: {', '.join(WORKLOADS)} (the file is not written)")
    parser.add_argument("--no-write", action="store_true", help="print the report, leave BENCHMARKS.md alone")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: measure one workload ...
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)  # ... and write its figures here
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.quick, args.out)
        return 0
    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    started, load = datetime.now(timezone.utc), os.getloadavg()
    trash = tempfile.mkdtemp(prefix="gitflowd-bench-trash-")
    os.environ[TRASH] = trash  # the workers' clean-ups wait until every figure is taken
    try:
        figures, failures = run(names, args.quick)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    text = report(figures, failures, args.quick, started, load)
    print("\n" + text)
    if not (args.only or args.no_write):
        write(text)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
