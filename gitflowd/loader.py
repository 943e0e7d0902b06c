"""TOML text -> `Dag`, with every problem of a file reported as `path:line: message`.

Flow: `load_dag(text, path)` -> tomllib parses (a syntax error is the only problem then)
-> `toml_lines.locate` maps keys to lines -> `dag_from_data` reads the top level, `[dag]`,
`[defaults]` and each `[tasks.X]` through the per-key converters of fields.py, collecting problems
instead of stopping at the first -> checks the graph (unknown deps, self deps, cycles)
-> raises `DagFileError(problems)` sorted by line, or returns the frozen `Dag`.

Values the format fixes: durations are "90s", "10m", "1h30m", "2h", "1d" or a number of
seconds; `retry_backoff` must be >= 1.0 (a shrinking delay is never what a retry wants);
naive dates and datetimes are in the DAG's timezone; dates inside `params` become ISO
strings so that params stay JSON for the journal.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, tzinfo
from pathlib import PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

from gitflowd.dag import Dag, Task, graph_problems, is_valid_id, ordered
from gitflowd.errors import DagFileError, Problem
from gitflowd.errors import suggest
from gitflowd.fields import ALIASES, DAG_KEYS, DEFAULT_KEYS, HOME, ID_RULE, KEY_NOTES, TASK_KEYS, TOP_KEYS, BadValue, parse_duration, show
from gitflowd.templatecheck import param_keys
from gitflowd.toml_lines import LineMap, locate

__all__ = ["load_dag", "dag_from_data", "declared_id", "parse_duration", "suggest", "DAG_KEYS", "DEFAULT_KEYS", "TASK_KEYS"]

_TOML_POSITION = re.compile(r" \(at (?:line (\d+), column \d+|end of document)\)$")
LFS_POINTER = "version https://git-lfs.github.com/spec/"  # how every Git LFS pointer file starts


# -- public API -------------------------------------------------------------------------


def load_dag(text: str, path: str) -> Dag:
    """Parse one DAG file. `path` is repo-relative (`dags/x.toml`) and names the file in errors."""
    text = text.removeprefix("\ufeff")  # a byte order mark some editors write
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if text.startswith(LFS_POINTER):  # git-lfs is not installed, or the file was never fetched
            raise DagFileError([Problem(path, 1, "is a Git LFS pointer, not the DAG's TOML: keep DAG files "
                                                 f"out of LFS (git lfs untrack {path})")]) from None
        raise DagFileError([_syntax_problem(exc, text, path)]) from None
    except RecursionError:
        raise DagFileError([Problem(path, 1, "invalid TOML: arrays or tables nested too deeply")]) from None
    return dag_from_data(data, path, locate(text))


def dag_from_data(data: Mapping[str, Any], path: str, lines: LineMap | None = None) -> Dag:
    """Build a `Dag` from parsed TOML data; raise `DagFileError` with every problem found."""
    reader = _Reader(path, lines or LineMap())
    dag = reader.read(data)
    if reader.problems or dag is None:
        problems = sorted(dict.fromkeys(reader.problems), key=lambda p: p.line)
        raise DagFileError(problems or [Problem(path, 1, "invalid DAG file")])
    return dag


def declared_id(text: str, path: str) -> str:
    """The DAG id a file means, valid or not: its `[dag] id` when that reads as a string,
    else its stem. `gitflowd run ID` finds an invalid file's problems by it, and the registry
    a renamed file's DAG (which keeps its last valid version)."""
    text = text.removeprefix("\ufeff")
    try:
        table = tomllib.loads(text).get("dag")
    except (tomllib.TOMLDecodeError, RecursionError):
        table = {"id": _id_line(text)}
    declared = table.get("id") if isinstance(table, dict) else None
    return declared if isinstance(declared, str) else PurePosixPath(path).stem


def _id_line(text: str) -> str | None:
    """The `id = "..."` line of the `[dag]` table of a file TOML cannot parse (a syntax error
    elsewhere must not make a renamed file lose its DAG): each line read on its own."""
    in_dag = False
    for line in text.splitlines():
        if line.lstrip().startswith("["):
            in_dag = "".join(line.split("#", 1)[0].split()) == "[dag]"
        elif in_dag:
            try:
                value = tomllib.loads(line).get("id")
            except tomllib.TOMLDecodeError:
                continue
            if isinstance(value, str):
                return value
    return None


# -- messages ---------------------------------------------------------------------------


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str, path: str) -> Problem:
    message = str(exc)
    match = _TOML_POSITION.search(message)
    if match is None:
        return Problem(path, 1, f"invalid TOML: {message}")
    line = int(match.group(1)) if match.group(1) else max(len(text.splitlines()), 1)
    message = message[:match.start()]
    if message == "Illegal character '\\n'":
        message += " (a string left open on this line?)"
    return Problem(path, line, f"invalid TOML: {message}")


def _label(where: tuple[str, ...]) -> str:
    """`[tasks.fetch]` or `[tasks."a b"]`."""
    parts = [p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else json.dumps(p) for p in where]
    return "[" + ".".join(parts) + "]"


# -- reading ----------------------------------------------------------------------------


MAX_TASK_ID = 200


class _Reader:
    """Reads one parsed file, collecting problems located through the line map."""

    def __init__(self, path: str, lines: LineMap):
        self.path, self.lines = path, lines
        self.problems: list[Problem] = []

    def problem(self, where: tuple[str, ...], message: str) -> None:
        self.problems.append(Problem(self.path, self.lines.line(*where), message))

    def read(self, data: Mapping[str, Any]) -> Dag | None:
        self.check_keys((), data, TOP_KEYS)
        dag = self.table(("dag",), data.get("dag", {}), DAG_KEYS)
        defaults = self.table(("defaults",), data.get("defaults", {}), DEFAULT_KEYS)
        dag_id = dag.get("id") or self.stem_id()
        dates = self.dates(dag, ZoneInfo(dag.get("timezone", "UTC")))
        tasks = self.tasks(data, defaults, dag.get("env", {}))
        raw_dag = data.get("dag", {})
        if tasks and isinstance(raw_dag, dict) and ("params" in dag or "params" not in raw_dag):  # else said already
            self.check_params(tasks, dag.get("params", {}), dag.get("env", {}))
        if tasks:
            self.check_secrets_not_in_env(tasks, dag.get("secrets", ()), dag.get("env", {}))
        if self.problems or dag_id is None or tasks is None:
            return None
        settings = {k: v for k, v in dag.items() if k not in ("id", "start_date", "end_date")}
        return Dag(id=dag_id, tasks=tasks, path=self.path, **settings, **dates)

    def stem_id(self) -> str | None:
        stem = PurePosixPath(self.path).stem
        if is_valid_id(stem):
            return stem
        self.problem((), f"invalid DAG id {stem!r} (from the file name): {ID_RULE}; rename the file or set id in [dag]")
        return None

    def check_keys(self, where: tuple[str, ...], table: Mapping[str, Any], known: Mapping[str, Any]) -> None:
        for key in table:
            if key not in known:
                # A key of another table says where it belongs before a look-alike is suggested:
                # `timeout` in [dag] is a task's timeout, not a misspelt `timezone`.
                alias = ALIASES.get(where[0] if where else "", {}).get(key)
                hint = (f" (did you mean {alias!r}?)" if alias in known else f" ({KEY_NOTES[key]})" if key in KEY_NOTES else
                        f" ({key} belongs in {HOME[key]})" if key in HOME else suggest(key, known))
                place = f"in {_label(where)}" if where else "at the top level"
                self.problem(where + (key,), f"unknown key {key!r} {place}{hint}")

    def table(self, where: tuple[str, ...], table: Any, spec: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
        """Convert every known key of a table; report unknown keys and bad values."""
        if not isinstance(table, dict):
            self.problem(where, f"{_label(where)} must be a table, got {show(table)}")
            return {}
        self.check_keys(where, table, spec)
        result: dict[str, Any] = {}
        for key, value in table.items():
            if key in spec:
                try:
                    result[key] = spec[key](value)
                except BadValue as bad:
                    self.problem(where + (key,), f"{_label(where)} {key}{bad.tail}")
        return result

    def dates(self, dag: dict[str, Any], zone: tzinfo) -> dict[str, datetime | None]:
        result = {key: _aware(dag[key], zone) if key in dag else None for key in ("start_date", "end_date")}
        start, end = result["start_date"], result["end_date"]
        if start and end and start > end:
            self.problem(("dag", "end_date"), f"[dag] start_date {show(dag['start_date'])} is after end_date {show(dag['end_date'])}")
        return result

    def tasks(self, data: Mapping[str, Any], defaults: dict[str, Any], dag_env: dict[str, str]) -> dict[str, Task] | None:
        raw = data.get("tasks")
        if not isinstance(raw, dict) or not raw:
            self.no_tasks(raw)
            return None
        tasks: dict[str, Task] = {}
        for task_id, table in raw.items():
            task = self.task(task_id, table, defaults, dag_env)
            if task is not None:
                tasks[task_id] = task
        self.graph({tid: t.get("deps", []) if isinstance(t, dict) else [] for tid, t in raw.items()})
        return tasks

    def check_params(self, tasks: dict[str, Task], params: Mapping[str, Any], dag_env: Mapping[str, str]) -> None:
        """A template reading a param the DAG does not declare would fail every run."""
        fields = [(("dag", "env", k), f"[dag] env.{k}", (v,)) for k, v in dag_env.items()]
        for task in tasks.values():
            label = _label(("tasks", task.id))
            fields += [(("tasks", task.id, "cmd"), f"{label} cmd", (task.cmd,) if task.cmd else ()),
                       (("tasks", task.id, "argv"), f"{label} argv", task.argv or ())]
            fields += [(("tasks", task.id, "env", k), f"{label} env.{k}", (v,)) for k, v in task.env.items() if dag_env.get(k) != v]
        for where, label, texts in fields:
            unknown = [k for k in param_keys(texts) if k not in params]
            if unknown:
                listed = ", ".join(f"{k!r}{suggest(k, list(params))}" for k in unknown)
                self.problem(where, f"{label}: unknown param{'s' if len(unknown) > 1 else ''} {listed}; declare "
                                    f"{'them' if len(unknown) > 1 else 'it'} in [dag] params (--param overrides only those)")

    def check_secrets_not_in_env(self, tasks: dict[str, Task], secrets: tuple[str, ...], dag_env: Mapping[str, str]) -> None:
        """A name both in `secrets` and in an `env` table: the env value (from Git) reached the
        task, and the secret was silently dropped."""
        named = set(secrets)
        places = [(("dag", "env", k), "[dag] env", k) for k in dag_env if k in named]
        for task in tasks.values():
            places += [(("tasks", task.id, "env", k), f"{_label(('tasks', task.id))} env", k)
                       for k in task.env if k in named and dag_env.get(k) != task.env[k]]
        for where, label, name in places:
            self.problem(where, f"{label}: {name!r} is also in [dag] secrets: its value comes from the secrets file, "
                                "not from Git; remove it from env")

    def no_tasks(self, raw: Any) -> None:
        if raw is None:
            self.problem((), "no [tasks] table: a DAG needs at least one task, e.g. [tasks.hello] with cmd = \"echo hello\"")
        elif isinstance(raw, dict):
            self.problem(("tasks",), "[tasks] is empty: a DAG needs at least one task")
        else:
            self.problem(("tasks",), f"'tasks' must be a table of tasks, got {show(raw)}")

    def task(self, task_id: str, table: Any, defaults: dict[str, Any], dag_env: dict[str, str]) -> Task | None:
        where = ("tasks", task_id)
        if not is_valid_id(task_id):
            self.problem(where, f"invalid task id {task_id!r}: {ID_RULE}")
        elif len(task_id) > MAX_TASK_ID:  # it names files: <task>.<attempt>.log, .<task>.<attempt>.log.masking
            self.problem(where, f"task id {show(task_id)} is {len(task_id)} characters long; task ids are at most "
                                f"{MAX_TASK_ID} (they name log files, and a file name is at most 255 bytes)")
        if not isinstance(table, dict):
            self.problem(where, f"task {task_id!r} must be a table (e.g. {_label(where)} with cmd = ...), got {show(table)}")
            return None
        values = {**defaults, **self.table(where, table, TASK_KEYS)}
        self.check_kind(task_id, table)
        values["env"] = {**dag_env, **values.get("env", {})}
        return Task(id=task_id, line=self.lines.line(*where), **values)

    def check_kind(self, task_id: str, table: Mapping[str, Any]) -> None:
        kinds = [k for k in ("cmd", "argv", "call") if k in table]
        where = ("tasks", task_id)
        if not kinds:
            self.problem(where, f"task {task_id!r} needs exactly one of cmd, argv, call")
        elif len(kinds) == 2:
            self.problem(where + (kinds[1],), f"task {task_id!r} has both {kinds[0]} and {kinds[1]}; use exactly one")
        elif len(kinds) == 3:
            self.problem(where + ("call",), f"task {task_id!r} has cmd, argv and call; use exactly one")

    def graph(self, raw_deps: dict[str, Any]) -> None:
        """Unknown deps (with suggestions) here; self deps and cycles from dag.graph_problems."""
        ids = list(raw_deps)
        known: dict[str, list[str]] = {}
        for task_id, deps in raw_deps.items():
            deps = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
            known[task_id] = [d for d in deps if d in raw_deps]
            for dep in deps:
                if dep not in raw_deps:
                    others = [i for i in ids if i != task_id]
                    message = f"task {task_id!r} depends on unknown task {dep!r}{suggest(dep, others)}"
                    self.problem(("tasks", task_id, "deps"), message)
        if ordered(known) is None:  # the one-pass check; graph_problems only to say what is wrong
            for task_id, message in graph_problems(known):
                self.problem(("tasks", task_id, "deps"), message)


def _aware(value: date, zone: tzinfo) -> datetime:
    """A TOML date or datetime as an aware datetime; naive ones are in the DAG's timezone."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)

