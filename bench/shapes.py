"""The DAG shapes the overhead benchmarks run, as dependency maps and as gitflowd TOML.

chain: WIDTH = 8 independent chains, task i depends on task i-8.
fan:   one start task, N-2 parallel tasks, one join task.
"""

from __future__ import annotations

WIDTH = 8


def chain(n: int) -> dict[str, list[str]]:
    return {f"t{i}": ([f"t{i - WIDTH}"] if i >= WIDTH else []) for i in range(n)}


def fan(n: int) -> dict[str, list[str]]:
    middle = [f"t{i}" for i in range(1, n - 1)]
    deps: dict[str, list[str]] = {"t0": []}
    deps.update({name: ["t0"] for name in middle})
    deps[f"t{n - 1}"] = middle
    return deps


SHAPES = {"chain": chain, "fan": fan}


def to_toml(dag_id: str, deps: dict[str, list[str]], cmd: str = "true") -> str:
    """A manual-only DAG whose every task runs `cmd`."""
    lines = [f'[dag]\nid = "{dag_id}"\nmax_active_tasks = 64\n']
    for task, task_deps in deps.items():
        lines.append(f'[tasks.{task}]\ncmd = "{cmd}"')
        if task_deps:
            lines.append("deps = [" + ", ".join(f'"{d}"' for d in task_deps) + "]")
        lines.append("")
    return "\n".join(lines)


def pipeline(dag_id: str, tasks: int = 20, schedule: str | None = "@daily", start: str = "2026-01-01",
             variant: int = 0) -> str:
    """A realistic scheduled DAG file: settings, defaults, `tasks` templated commands (each
    naming its DAG, so no two files share a command) in WIDTH-wide chains. `variant` changes
    one command, to make a new version of the file."""
    head = ['[dag]', f'description = "Benchmark pipeline {dag_id}"']
    if schedule:
        head += [f'schedule = "{schedule}"', f'start_date = {start}', 'catchup = false']
    head += ['max_active_tasks = 4', 'params = { region = "seoul" }', '',
             '[defaults]', 'retries = 1', 'retry_delay = "30s"', 'timeout = "10m"', '']
    body = []
    for task, deps in chain(tasks).items():
        body.append(f'[tasks.{task}]\ncmd = "echo {dag_id}.{task} {{{{ ds }}}} {{{{ params.region }}}} v{variant if task == "t0" else 0}"')
        if deps:
            body.append("deps = [" + ", ".join(f'"{d}"' for d in deps) + "]")
        body.append("")
    return "\n".join(head + body)
