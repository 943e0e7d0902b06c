"""The values of a DAG file, key by key: what each accepts and what it becomes.

Each converter takes the TOML value of one key and returns the Python value the `Dag`
holds, or raises `BadValue` whose `tail` completes the message after `[table] key`
(e.g. ` must be an integer >= 0, got "3"`). The key tables (`DAG_KEYS`, `DEFAULT_KEYS`,
`TASK_KEYS`) are the format: a key not in them is unknown. loader.py walks the file and
attaches lines; this module knows nothing of lines.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from gitflowd.dag import TriggerRule, is_valid_id
from gitflowd.errors import suggest
from gitflowd.schedule import check_schedule
from gitflowd.templatecheck import TemplateProblem, check_templates

ID_RULE = "ids match [A-Za-z0-9_][A-Za-z0-9_.-]*"
DURATION_HINT = '(use "90s", "10m", "1h30m" or seconds)'
MAX_DURATION = 365 * 86400.0
RESERVED_ENV_PREFIX = "GITFLOWD_"  # the variables gitflowd gives every task
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", re.ASCII)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALL = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")  # module:function or module:Class.method


class BadValue(Exception):
    """A value is wrong; `tail` follows `[table] key` in the message."""

    def __init__(self, tail: str):
        super().__init__(tail)
        self.tail = tail


def parse_duration(value: Any) -> float:
    """Seconds from "90s" / "10m" / "1h30m" / "2h" / "1d" / a number; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a duration: {value!r}")
    if not isinstance(value, str):
        return float(value)
    text = value.strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"invalid duration {value!r}")
    days, hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def show(value: Any) -> str:
    """A value as the user wrote it in TOML, short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value if len(value) <= 40 else value[:37] + "...", ensure_ascii=False)
        return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "an array" if value else "[]"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _expected(what: str, value: Any) -> BadValue:
    return BadValue(f" must be {what}, got {show(value)}")


# -- converters: value -> Python value, or raise BadValue --------------------------------


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
            raise BadValue(f": invalid duration {value!r} {DURATION_HINT}") from None
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
    raise BadValue(f" must be one of {', '.join(valid)}, got {show(value)}{hint}")


def _timezone(value: Any) -> str:
    name = _string(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        hint = suggest(name, sorted(available_timezones()))
        raise BadValue(f": unknown timezone {name!r}{hint or ' (use an IANA name such as Europe/Berlin or UTC)'}") from None
    return name


def _schedule(value: Any) -> str:
    expr = _string(value)
    problem = check_schedule(expr)
    if problem:
        raise BadValue(f": {problem}")
    return expr


def _when(value: Any) -> date:
    if isinstance(value, (date, datetime)):
        return value
    hint = " (write it unquoted)" if isinstance(value, str) else ""
    raise BadValue(f" must be a TOML date or datetime such as 2026-01-01{hint}, got {show(value)}")


def _dag_id(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_id(value):
        raise BadValue(f" must be a DAG id ({ID_RULE}), got {show(value)}")
    return value


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _expected("a table of NAME = \"value\" strings", value)
    for name, item in value.items():
        _check_env_name(name)
        if not isinstance(item, str):
            raise BadValue(f".{name} must be a string, got {show(item)}")
        _no_nul(item, f".{name}")
        _not_a_shell_reference(name, item)
        try:
            _template(item)  # values are templates, as cmd and argv (checked the same way)
        except BadValue as bad:
            raise BadValue(f".{name}{bad.tail}") from None
    return dict(value)


_SHELL_REFERENCE = re.compile(r"\$(\{)?([A-Za-z_][A-Za-z0-9_]*)(?(1)\})")


def _not_a_shell_reference(name: str, value: str) -> None:
    """`PATH = "$PATH:/opt/bin"` reached tasks as the text `$PATH:/opt/bin` (no shell reads
    env values; dagu and docker-compose expand them, Airflow does not), and then no program
    was found: refuse it, and say where a shell would expand it. A value that must reach the
    task with a `$` in it (GIT_SSH_COMMAND, read by a shell later) writes it as {{ '$' }}."""
    found = _SHELL_REFERENCE.search(value)
    if found:
        raise BadValue(f".{name}: {found.group(0)} is not expanded in env values (the task would get the text "
                       f"{show(value)}); set it in a cmd instead, where the shell expands it: {name}=\"{value}\" your-command"
                       " (for a literal $, write {{ '$' }})")


def _secrets(value: Any) -> tuple[str, ...]:
    names = _string_list(value)
    for name in names:
        _check_env_name(name)
    return names


def _check_env_name(name: str) -> None:
    """A name a task's environment may take from the DAG: not gitflowd's own (DESIGN.md section 1
    promises every task the GITFLOWD_* variables, so a DAG cannot replace them)."""
    if not _ENV_NAME.fullmatch(name):
        raise BadValue(f": {name!r} is not a valid environment variable name")
    if name.startswith(RESERVED_ENV_PREFIX):
        raise BadValue(f": {name!r} is set by gitflowd for every task ({RESERVED_ENV_PREFIX}* names are reserved)")


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


def _templates(texts: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return check_templates(texts)
    except TemplateProblem as problem:
        raise BadValue(problem.tail) from None


def _template(text: str) -> str:
    return _templates((text,))[0]


def _cmd(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        as_argv = json.dumps(value, ensure_ascii=False)
        as_argv = as_argv if len(as_argv) <= 60 else "[...]"
        raise BadValue(f" must be a shell command string, got an array (a program and its arguments, run without a shell, are argv = {as_argv})")
    if not isinstance(value, str) or not value.strip():
        raise _expected("a non-empty shell command string", value)
    return _template(_fits(_no_nul(value)))


def _argv(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        raise BadValue(f" must be an array of strings, got a string (a shell command string is cmd = {show(value)})")
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _expected("a non-empty array of strings", value)
    if not value[0].strip() or value[0] != value[0].strip():  # every attempt failed: no program named "" or " x"
        raise BadValue(f"[0] must name the program to run, got {show(value[0])}")
    return _templates(tuple(_fits(_no_nul(v), f"[{i}]") for i, v in enumerate(value)))


def _fits(text: str, where: str = "") -> str:
    """Linux takes no single program argument over MAX_ARG_STRLEN (32 pages, with its NUL):
    such a command passed validate and failed every attempt with 'Argument list too long'."""
    size = len(text.encode())
    if size >= MAX_ARGUMENT:
        raise BadValue(f"{where} is {size:,} bytes; one program argument may hold at most {MAX_ARGUMENT - 1:,} "
                       "(put the command in a script in the repository)")
    return text


MAX_ARGUMENT = 32 * 4096


def _no_nul(text: str, where: str = "") -> str:
    """TOML allows "\\u0000" in a string; the OS takes no NUL in a program's arguments or environment."""
    if "\0" in text:
        raise BadValue(f"{where} contains a NUL character (\\u0000), which no process argument or environment variable can hold")
    return text


def _call(value: Any) -> str:
    # A module ending in `.py` is a file name (`report.py:main` would import report, then look
    # for a submodule `py` in it), not a package `py`.
    if not isinstance(value, str) or not _CALL.fullmatch(value) or value.partition(":")[0].endswith(".py"):
        raise BadValue(f" must be \"module:function\" (e.g. \"jobs.report:main\"), got {show(value)}{_call_hint(value)}")
    return value


def _call_hint(value: Any) -> str:
    """A file path where a module name goes (`scripts/report.py:build`): the name it means.
    A template: call is not one (what varies per run reaches the function through env)."""
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return " (call is not a template: pass run values through env, e.g. env = { DAY = \"{{ ds }}\" })"
    if not isinstance(value, str) or ":" not in value:
        return ""
    module, _, function = value.rpartition(":")
    if "/" not in module and not module.endswith(".py"):
        return ""
    dotted = module.removeprefix("./").removesuffix(".py").replace("/", ".")
    fixed = f"{dotted}:{function}"
    return f" (a module is named with dots, not as a file: {show(fixed)})" if _CALL.fullmatch(fixed) else ""


def _deps(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _expected("an array of task ids", value)
    return tuple(dict.fromkeys(value))


DAG_KEYS: dict[str, Callable[[Any], Any]] = {
    "id": _dag_id, "description": _string, "schedule": _schedule, "timezone": _timezone,
    "start_date": _when, "end_date": _when, "catchup": _boolean, "paused": _boolean,
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
# What other workflow tools call our keys (Airflow, Argo, dagu, Luigi, GitHub Actions...):
# a user coming from one gets "did you mean" where spelling alone finds nothing close.
ALIASES = {
    "tasks": {"depends_on": "deps", "depends": "deps", "dependencies": "deps", "upstream": "deps", "needs": "deps",
              "requires": "deps", "after": "deps", "command": "cmd", "bash_command": "cmd", "script": "cmd",
              "run": "cmd", "args": "argv", "arguments": "argv", "python_callable": "call",
              "callable": "call", "function": "call", "execution_timeout": "timeout", "timeout_seconds": "timeout",
              "time_limit": "timeout", "max_retries": "retries", "retry": "retries", "environment": "env",
              "env_vars": "env", "doc": "description", "doc_md": "description"},
    "dag": {"schedule_interval": "schedule", "cron": "schedule", "tz": "timezone", "concurrency": "max_active_tasks",
            "max_active_tis_per_dag": "max_active_tasks", "doc_md": "description", "environment": "env"},
    "": {"steps": "tasks", "jobs": "tasks", "default_args": "defaults", "dag_args": "dag"},
}
ALIASES["defaults"] = ALIASES["tasks"]  # those that name a [defaults] key (the caller checks)
# Keys of other tools that have no counterpart here, with what to do instead.
KEY_NOTES = {"shell": 'cmd runs /bin/sh -c; for bash write argv = ["bash", "-c", "..."]'}


TOP_KEYS = {"dag": DAG_KEYS, "defaults": DEFAULT_KEYS, "tasks": {}}
HOME = {**{k: "[dag]" for k in DAG_KEYS}, **{k: "a [tasks.X] table" for k in TASK_KEYS}, **{k: "[defaults] or a task" for k in DEFAULT_KEYS},
        **{k: "[dag] or a task" for k in DAG_KEYS.keys() & TASK_KEYS.keys()}}  # env, description
