"""TOML text -> `Dag`, with every problem of a file reported as `path:line: message`.

Flow: `load_dag(text, path)` -> tomllib parses (a syntax error is the only problem then)
-> `toml_lines.locate` maps keys to lines -> `dag_from_data` reads the top level, `[dag]`,
`[defaults]` and each `[tasks.X]` through small per-key converters, collecting problems
instead of stopping at the first -> checks the graph (unknown deps, self deps, cycles)
-> raises `DagFileError(problems)` sorted by line, or returns the frozen `Dag`.

Values the format fixes: durations are "90s", "10m", "1h30m", "2h", "1d" or a number of
seconds; `retry_backoff` must be >= 1.0 (a shrinking delay is never what a retry wants);
naive dates and datetimes are in the DAG's timezone; dates inside `params` become ISO
strings so that params stay JSON for the journal.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, tzinfo
from pathlib import PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from gitflowd.dag import Dag, Task, TriggerRule, graph_problems, is_valid_id
from gitflowd.errors import DagFileError, Problem
from gitflowd.schedule import check_schedule
from gitflowd.toml_lines import LineMap, locate

ID_RULE = "ids match [A-Za-z0-9_][A-Za-z0-9_.-]*"
DURATION_HINT = '(use "90s", "10m", "1h30m" or seconds)'
MAX_DURATION = 365 * 86400.0
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALL = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_TOML_POSITION = re.compile(r" \(at (?:line (\d+), column \d+|end of document)\)$")
_TEMPLATES = jinja2.Environment()


class _Bad(Exception):
    """A value is wrong; `tail` follows `[table] key` in the message."""

    def __init__(self, tail: str):
        super().__init__(tail)
        self.tail = tail


# -- public API -------------------------------------------------------------------------


def load_dag(text: str, path: str) -> Dag:
    """Parse one DAG file. `path` is repo-relative (`dags/x.toml`) and names the file in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DagFileError([_syntax_problem(exc, text, path)]) from None
    return dag_from_data(data, path, locate(text))


def dag_from_data(data: Mapping[str, Any], path: str, lines: LineMap | None = None) -> Dag:
    """Build a `Dag` from parsed TOML data; raise `DagFileError` with every problem found."""
    reader = _Reader(path, lines or LineMap())
    dag = reader.read(data)
    if reader.problems or dag is None:
        problems = sorted(dict.fromkeys(reader.problems), key=lambda p: p.line)
        raise DagFileError(problems or [Problem(path, 1, "invalid DAG file")])
    return dag


def parse_duration(value: Any) -> float:
    """Seconds from "90s" / "10m" / "1h30m" / "2h" / "1d" / a number; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if value.strip().replace(".", "", 1).isdigit():
            return float(value)
        if not value.strip() or match is None:
            raise ValueError(f"invalid duration {value!r}")
        days, hours, minutes, seconds = (float(g or 0) for g in match.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return float(value)


def suggest(word: str, choices: Any) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


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


def _show(value: Any) -> str:
    """A value as the user wrote it in TOML, short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:37] + "...", ensure_ascii=False)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "an array" if value else "[]"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _label(where: tuple[str, ...]) -> str:
    """`[tasks.fetch]` or `[tasks."a b"]`."""
    parts = [p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else json.dumps(p) for p in where]
    return "[" + ".".join(parts) + "]"


def _expected(what: str, value: Any) -> _Bad:
    return _Bad(f" must be {what}, got {_show(value)}")


# -- converters: value -> Python value, or raise _Bad -------------------------------------


def _integer(minimum: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _expected(f"an integer >= {minimum}", value)
        return value

    return convert


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _expected("a string", value)
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _expected("true or false", value)
    return value


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _expected("an array of strings", value)
    return tuple(value)


def _duration(positive: bool) -> Callable[[Any], float]:
    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _expected('a duration ("90s", "10m", "1h30m" or seconds)', value)
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise _Bad(f": invalid duration {value!r} {DURATION_HINT}") from None
        if not math.isfinite(seconds) or seconds > MAX_DURATION:
            raise _expected("a duration of at most 365 days", value)
        if seconds < 0 or (positive and seconds == 0):
            raise _expected("a duration > 0" if positive else "a duration >= 0", value)
        return seconds

    return convert


def _backoff(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1.0 <= value <= 100.0:
        raise _expected("a number from 1.0 (fixed delay) to 100.0", value)
    return float(value)


def _trigger_rule(value: Any) -> TriggerRule:
    valid = [rule.value for rule in TriggerRule]
    if isinstance(value, str) and value in valid:
        return TriggerRule(value)
    hint = suggest(value, valid) if isinstance(value, str) else ""
    raise _Bad(f" must be one of {', '.join(valid)}, got {_show(value)}{hint}")


def _timezone(value: Any) -> str:
    name = _string(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        from zoneinfo import available_timezones

        hint = suggest(name, sorted(available_timezones()))
        raise _Bad(f": unknown timezone {name!r}{hint or ' (use an IANA name such as Europe/Berlin or UTC)'}") from None
    return name


def _schedule(value: Any) -> str:
    expr = _string(value)
    problem = check_schedule(expr)
    if problem:
        raise _Bad(f": {problem}")
    return expr


def _when(value: Any) -> date:
    if isinstance(value, (date, datetime)):
        return value
    hint = " (write it unquoted)" if isinstance(value, str) else ""
    raise _Bad(f" must be a TOML date or datetime such as 2026-01-01{hint}, got {_show(value)}")


def _dag_id(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_id(value):
        raise _Bad(f" must be a DAG id ({ID_RULE}), got {_show(value)}")
    return value


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _expected("a table of NAME = \"value\" strings", value)
    for name, item in value.items():
        if not _ENV_NAME.fullmatch(name):
            raise _Bad(f": {name!r} is not a valid environment variable name")
        if not isinstance(item, str):
            raise _Bad(f".{name} must be a string, got {_show(item)}")
    return dict(value)


def _secrets(value: Any) -> tuple[str, ...]:
    names = _string_list(value)
    for name in names:
        if not _ENV_NAME.fullmatch(name):
            raise _Bad(f": {name!r} is not a valid environment variable name")
    return names


def _params(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _expected("a table", value)
    return _json_safe(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, (date, time)):
        return value.isoformat()
    return value


def _template(text: str) -> str:
    try:
        _TEMPLATES.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise _Bad(f": invalid template: {exc.message}") from None
    return text


def _cmd(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _expected("a non-empty shell command string", value)
    return _template(value)


def _argv(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _expected("a non-empty array of strings", value)
    return tuple(_template(v) for v in value)


def _call(value: Any) -> str:
    if not isinstance(value, str) or not _CALL.fullmatch(value):
        raise _Bad(f" must be \"module:function\" (e.g. \"jobs.report:main\"), got {_show(value)}")
    return value


def _deps(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _expected("an array of task ids", value)
    return tuple(dict.fromkeys(value))


DAG_KEYS: dict[str, Callable[[Any], Any]] = {
    "id": _dag_id, "description": _string, "schedule": _schedule, "timezone": _timezone,
    "start_date": _when, "end_date": _when, "catchup": _boolean,
    "max_active_runs": _integer(1), "max_active_tasks": _integer(1),
    "params": _params, "env": _env, "secrets": _secrets, "tags": _string_list,
}
DEFAULT_KEYS: dict[str, Callable[[Any], Any]] = {
    "retries": _integer(0), "retry_delay": _duration(False), "retry_backoff": _backoff,
    "timeout": _duration(True), "trigger_rule": _trigger_rule,
}
TASK_KEYS: dict[str, Callable[[Any], Any]] = {
    "cmd": _cmd, "argv": _argv, "call": _call, "deps": _deps, "env": _env, "description": _string,
    **DEFAULT_KEYS,
}
TOP_KEYS = {"dag": DAG_KEYS, "defaults": DEFAULT_KEYS, "tasks": {}}
_HOME = {**{k: "[dag]" for k in DAG_KEYS}, **{k: "a [tasks.X] table" for k in TASK_KEYS}, **{k: "[defaults] or a task" for k in DEFAULT_KEYS}}


# -- reading ----------------------------------------------------------------------------


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
                hint = suggest(key, known) or (f" ({key} belongs in {_HOME[key]})" if key in _HOME else "")
                place = f"in {_label(where)}" if where else "at the top level"
                self.problem(where + (key,), f"unknown key {key!r} {place}{hint}")

    def table(self, where: tuple[str, ...], table: Any, spec: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
        """Convert every known key of a table; report unknown keys and bad values."""
        if not isinstance(table, dict):
            self.problem(where, f"{_label(where)} must be a table, got {_show(table)}")
            return {}
        self.check_keys(where, table, spec)
        result: dict[str, Any] = {}
        for key, value in table.items():
            if key in spec:
                try:
                    result[key] = spec[key](value)
                except _Bad as bad:
                    self.problem(where + (key,), f"{_label(where)} {key}{bad.tail}")
        return result

    def dates(self, dag: dict[str, Any], zone: tzinfo) -> dict[str, datetime | None]:
        result = {key: _aware(dag[key], zone) if key in dag else None for key in ("start_date", "end_date")}
        start, end = result["start_date"], result["end_date"]
        if start and end and start > end:
            self.problem(("dag", "end_date"), f"[dag] start_date {_show(dag['start_date'])} is after end_date {_show(dag['end_date'])}")
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

    def no_tasks(self, raw: Any) -> None:
        if raw is None:
            self.problem((), "no [tasks] table: a DAG needs at least one task, e.g. [tasks.hello] with cmd = \"echo hello\"")
        elif isinstance(raw, dict):
            self.problem(("tasks",), "[tasks] is empty: a DAG needs at least one task")
        else:
            self.problem(("tasks",), f"'tasks' must be a table of tasks, got {_show(raw)}")

    def task(self, task_id: str, table: Any, defaults: dict[str, Any], dag_env: dict[str, str]) -> Task | None:
        where = ("tasks", task_id)
        if not is_valid_id(task_id):
            self.problem(where, f"invalid task id {task_id!r}: {ID_RULE}")
        if not isinstance(table, dict):
            self.problem(where, f"task {task_id!r} must be a table (e.g. [tasks.{task_id}] with cmd = ...), got {_show(table)}")
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
        for task_id, message in graph_problems(known):
            self.problem(("tasks", task_id, "deps"), message)


def _aware(value: date, zone: tzinfo) -> datetime:
    """A TOML date or datetime as an aware datetime; naive ones are in the DAG's timezone."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)

