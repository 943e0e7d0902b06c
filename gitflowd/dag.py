"""Dag and Task: frozen values, and the graph questions asked of them.

A `Dag` is what one TOML file under `dags/` means once loaded (see loader.py) and what a
run journal snapshots (`to_dict` / `from_dict`), so that a journal alone can resume and
render its run. Graph checks use the standard library's graphlib.

This module imports nothing of gitflowd: graph problems are returned as `(task, message)`
pairs so that the loader can attach file and line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from graphlib import CycleError, TopologicalSorter
from typing import Any

MAX_RETRY_DELAY = 365 * 86400.0  # as the longest duration a DAG file may give
ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def is_valid_id(value: str) -> bool:
    """DAG and task ids become file and URL names, so they are restricted."""
    return bool(ID_PATTERN.fullmatch(value)) and value not in (".", "..")


class TriggerRule(str, Enum):
    """When a task may start, judged from the final states of its direct upstream tasks."""

    ALL_SUCCESS = "all_success"
    ALL_DONE = "all_done"
    ALL_FAILED = "all_failed"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    NONE_FAILED = "none_failed"
    ALWAYS = "always"


@dataclass(frozen=True)
class Task:
    """One node of a DAG. Exactly one of `cmd`, `argv`, `call` is set."""

    id: str
    cmd: str | None = None
    argv: tuple[str, ...] | None = None
    call: str | None = None
    deps: tuple[str, ...] = ()
    retries: int = 0
    retry_delay: float = 0.0
    retry_backoff: float = 1.0
    timeout: float | None = None
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    env: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    line: int = 0

    @property
    def kind(self) -> str:
        """'cmd', 'argv' or 'call': how the executor starts it."""
        return "cmd" if self.cmd is not None else "argv" if self.argv is not None else "call"

    def retry_delay_for(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt + 1`, after `attempt` failed (1-based); at
        most MAX_RETRY_DELAY: `retry_backoff ** n` overflows a float (or a timedelta) long
        before `retries` runs out (2.0 ** 1024), and that ended the runner in a traceback."""
        if self.retry_delay == 0 or self.retry_backoff == 1:
            return self.retry_delay
        try:
            return min(self.retry_delay * self.retry_backoff ** max(attempt - 1, 0), MAX_RETRY_DELAY)
        except OverflowError:
            return MAX_RETRY_DELAY

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _field_names(Task)}
        data["argv"] = list(self.argv) if self.argv is not None else None
        data["deps"] = list(self.deps)
        data["trigger_rule"] = self.trigger_rule.value
        data["env"] = dict(self.env)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        known = _field_names(cls)
        values = {k: v for k, v in data.items() if k in known}
        if values.get("argv") is not None:
            values["argv"] = tuple(values["argv"])
        values["deps"] = tuple(values.get("deps", ()))
        values["trigger_rule"] = TriggerRule(values.get("trigger_rule", "all_success"))
        values["env"] = dict(values.get("env", {}))
        return cls(**values)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """dataclasses.fields() costs more than the rest of Task.from_dict: ask once per class."""
    return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class Dag:
    """A pipeline: settings plus tasks in file order. Construction checks the graph."""

    id: str
    tasks: Mapping[str, Task]
    path: str = ""
    description: str = ""
    schedule: str | None = None
    timezone: str = "UTC"
    start_date: datetime | None = None
    end_date: datetime | None = None
    catchup: bool = False
    paused: bool = False  # no scheduled runs (Flux's `suspend`); manual runs and backfills still work
    max_active_runs: int = 1
    max_active_tasks: int = 16
    params: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self._order is None:
            problems = graph_problems({t.id: t.deps for t in self.tasks.values()})
            raise ValueError("; ".join(f"{task}: {msg}" for task, msg in problems) or "invalid task graph")

    # -- graph ------------------------------------------------------------------------

    def topological_order(self) -> list[str]:
        """Task ids, every task after its dependencies; ties keep file order."""
        return list(self._order or ())

    @functools.cached_property
    def _order(self) -> list[str] | None:
        return ordered({t.id: t.deps for t in self.tasks.values()})

    def upstream(self, task_id: str) -> tuple[str, ...]:
        """Direct dependencies of a task."""
        return self.tasks[task_id].deps

    def downstream_map(self) -> dict[str, list[str]]:
        """task -> direct dependents, in file order."""
        result: dict[str, list[str]] = {t: [] for t in self.tasks}
        for task in self.tasks.values():
            for dep in task.deps:
                result[dep].append(task.id)
        return result

    def downstream(self, task_ids: Iterable[str]) -> set[str]:
        """Every task that transitively depends on any of `task_ids` (excluding them)."""
        children = self.downstream_map()
        seen: set[str] = set()
        stack = list(task_ids)
        while stack:
            for child in children[stack.pop()]:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen - set(task_ids)

    def ancestors(self, task_id: str) -> set[str]:
        """Every task that `task_id` transitively depends on."""
        seen: set[str] = set()
        stack = list(self.tasks[task_id].deps)
        while stack:
            dep = stack.pop()
            if dep not in seen:
                seen.add(dep)
                stack.extend(self.tasks[dep].deps)
        return seen

    # -- snapshot for the journal -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON snapshot (journal, registry): built once per Dag, shared, never to be mutated."""
        return self._snapshot

    @functools.cached_property
    def _snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "description": self.description,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "end_date": self.end_date.isoformat() if self.end_date else None,
            "catchup": self.catchup,
            **({"paused": True} if self.paused else {}),  # absent when false: older snapshots keep their versions
            "max_active_runs": self.max_active_runs,
            "max_active_tasks": self.max_active_tasks,
            "params": dict(self.params),
            "env": dict(self.env),
            "secrets": list(self.secrets),
            "tags": list(self.tags),
            "tasks": [t.to_dict() for t in self.tasks.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Dag:
        tasks = {t["id"]: Task.from_dict(t) for t in data["tasks"]}
        dates = {k: datetime.fromisoformat(data[k]) if data.get(k) else None for k in ("start_date", "end_date")}
        return cls(
            id=data["id"],
            tasks=tasks,
            path=data.get("path", ""),
            description=data.get("description", ""),
            schedule=data.get("schedule"),
            timezone=data.get("timezone", "UTC"),
            catchup=bool(data.get("catchup", False)),
            paused=bool(data.get("paused", False)),
            max_active_runs=int(data.get("max_active_runs", 1)),
            max_active_tasks=int(data.get("max_active_tasks", 16)),
            params=dict(data.get("params", {})),
            env=dict(data.get("env", {})),
            secrets=tuple(data.get("secrets", ())),
            tags=tuple(data.get("tags", ())),
            **dates,
        )


def ordered(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Task ids, every task after its dependencies, ties in the mapping's order; None if a
    dependency is unknown, the task itself or on a cycle (graph_problems says which).

    Kahn's algorithm level by level, as graphlib's get_ready()/done() rounds with each round
    sorted by position: one pass, where graphlib took three times as long for a valid DAG.
    """
    position = {task_id: i for i, task_id in enumerate(deps)}
    children: dict[str, list[str]] = {task_id: [] for task_id in deps}
    waiting: dict[str, int] = {}
    for task_id, task_deps in deps.items():
        waiting[task_id] = len(task_deps)
        for dep in task_deps:
            if dep == task_id or dep not in children:
                return None
            children[dep].append(task_id)
    order: list[str] = []
    ready = [task_id for task_id, count in waiting.items() if not count]
    while ready:
        order.extend(ready)
        unlocked = []
        for task_id in ready:
            for child in children[task_id]:
                waiting[child] -= 1
                if not waiting[child]:
                    unlocked.append(child)
        ready = sorted(unlocked, key=position.__getitem__)
    return order if len(order) == len(deps) else None


def graph_problems(deps: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """Unknown or self dependencies and cycles, as (task id, message) pairs.

    A cycle is reported once, as a path that starts and ends at the same task,
    e.g. `cycle: a -> b -> c -> a`, attributed to the first task of the path.
    """
    problems: list[tuple[str, str]] = []
    clean: dict[str, list[str]] = {}
    for task_id, task_deps in deps.items():
        clean[task_id] = []
        for dep in task_deps:
            if dep == task_id:
                problems.append((task_id, f"task {task_id!r} depends on itself"))
            elif dep not in deps:
                problems.append((task_id, f"task {task_id!r} depends on unknown task {dep!r}"))
            else:
                clean[task_id].append(dep)
    problems.extend(_cycles(clean))
    return problems


def _cycles(deps: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Every independent cycle graphlib finds, each named as a path."""
    problems: list[tuple[str, str]] = []
    remaining = {k: list(v) for k, v in deps.items()}
    while True:
        try:
            TopologicalSorter(remaining).prepare()
            return problems
        except CycleError as exc:
            # graphlib gives [n0, n1, ..., n0], each node a dependency of the next:
            # execution order, as users read arrows. Start it at the first task in file.
            cycle = list(exc.args[1])
            start = cycle.index(min(cycle[:-1], key=list(deps).index))
            path = cycle[start:-1] + cycle[:start] + [cycle[start]]
            problems.append((path[0], "cycle: " + " -> ".join(path)))
            # break this cycle so the next one (if any) can be found
            first, second = path[0], path[1]
            before = len(remaining[second])
            remaining[second] = [d for d in remaining[second] if d != first]
            if len(remaining[second]) == before:  # cannot happen; never loop forever
                return problems
