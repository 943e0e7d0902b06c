"""The values of a DAG file, key by key: what each accepts and what it becomes.

Each converter takes the TOML value of one key and returns the Python value the `Dag`
holds, or raises `BadValue` whose `tail` completes the message after `[table] key`
(e.g. ` must be an integer >= 0, got "3"`). The key tables (`DAG_KEYS`, `DEFAULT_KEYS`,
`TASK_KEYS`) are the format: a key not in them is unknown. loader.py walks the file and
attaches lines; this module knows nothing of lines.
"""

from __future__ import annotations

import difflib
import json
import math
import functools
import re
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from gitflowd.dag import TriggerRule, is_valid_id
from gitflowd.schedule import check_schedule

ID_RULE = "ids match [A-Za-z0-9_][A-Za-z0-9_.-]*"
DURATION_HINT = '(use "90s", "10m", "1h30m" or seconds)'
MAX_DURATION = 365 * 86400.0
RESERVED_ENV_PREFIX = "GITFLOWD_"  # the variables gitflowd gives every task
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", re.ASCII)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALL = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")  # module:function or module:Class.method
_SIMPLE_EXPRESSION = re.compile(r"(?<!\{)\{\{ *([A-Za-z_]\w*)(?:\.[A-Za-z_]\w*)* *\}\}")
# The names templating.py gives every task (tests/test_loader.py checks the two agree).
TEMPLATE_NAMES = frozenset({
    "ds", "ds_nodash", "ts", "ts_nodash", "logical_date", "data_interval_start", "data_interval_end",
    "run_id", "dag_id", "task_id", "commit", "params",
})


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


def suggest(word: str, choices: Any) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
    """Check Jinja syntax and names now, so a typo fails `validate`, not a run at 3 a.m.
    Every unknown name of the field (of all its argv items) goes in the one problem."""
    unknown = dict.fromkeys(name for text in texts for name in _unknown_names(text))
    if unknown:
        hints = {name: _template_hint(name) for name in unknown}
        listed = ", ".join(f"{name!r}{hint}" for name, hint in hints.items())
        raw = next((hint for hint in map(_raw_hint, texts) if hint), "")
        known = "" if all(hints.values()) or raw else f"; the variables are {', '.join(_TEMPLATE_ORDER)}"
        raise BadValue(f": unknown template variable{'s' if len(unknown) > 1 else ''} {listed}{known}{raw}")
    return texts


# Airflow's template names, for a user who brings them: what stands in for them here.
_AIRFLOW_TEMPLATE_NAMES = {
    "execution_date": " (did you mean 'logical_date'?)",
    "macros": " (Airflow's; for date arithmetic use {{ ds | ds_add(-1) }})",
    "prev_ds": " (Airflow's; use {{ ds | ds_add(-1) }}, or data_interval_start for the previous tick)",
    "yesterday_ds": " (Airflow's; use {{ ds | ds_add(-1) }})",
    "tomorrow_ds": " (Airflow's; use {{ ds | ds_add(1) }})",
    "next_ds": " (Airflow's; use {{ ds | ds_add(1) }})",
}
_TEMPLATE_ORDER = ("ds", "ds_nodash", "ts", "ts_nodash", "logical_date", "data_interval_start", "data_interval_end",
                   "run_id", "dag_id", "task_id", "commit", "params")


def _template_hint(name: str) -> str:
    return _AIRFLOW_TEMPLATE_NAMES.get(name) or suggest(name, sorted(TEMPLATE_NAMES))


def _template(text: str) -> str:
    return _templates((text,))[0]


def _unknown_names(text: str) -> list[str]:
    """The names a template uses that tasks are not given, in the order they appear."""
    if _simple_template(text):
        return []
    import jinja2.meta  # here: most commands never need Jinja's parser (20 ms of imports)
    import jinja2.nodes

    try:
        tree = _parser().parse(text)
        _check_filters_and_tests(tree)
        unknown = jinja2.meta.find_undeclared_variables(tree) - TEMPLATE_NAMES
    except jinja2.TemplateError as exc:
        raise BadValue(f": invalid template: {(exc.message or type(exc).__name__).removesuffix('.')}"
                       f"{_at_line(text, exc.lineno)}{_raw_hint(text)}") from None
    except RecursionError:
        raise BadValue(": invalid template: expressions nested too deeply") from None
    found = [node.name for node in tree.find_all(jinja2.nodes.Name) if node.name in unknown]
    return list(dict.fromkeys(found + sorted(unknown)))


# Braces meant for another program: a Go template (docker --format, kubectl go-template, helm:
# `{{.State}}`, `{{range .items}}`), or the shell's `${#VAR}` (its `{#` opens a Jinja comment).
_NOT_JINJA = re.compile(r"\{\{-?\s*(\.|(range|end|with|if|template)\b)|\$\{#")


def _raw_hint(text: str) -> str:
    """Commands are Jinja templates, so a docker format or a ${#VAR} fails as one."""
    if not _NOT_JINJA.search(text):
        return ""
    return (" (commands are Jinja templates: braces meant for another program, such as a docker or kubectl format "
            "or a shell ${#VAR}, go inside {% raw %}...{% endraw %})")


def _at_line(text: str, lineno: int | None) -> str:
    """' (line 3 of the template)' when the template has more than one line."""
    return f" (line {lineno} of the template)" if lineno and "\n" in text.strip("\n") else ""


def _check_filters_and_tests(tree: Any) -> None:
    """Jinja itself rejects an unknown filter only when compiling, and one inside a condition
    (`{% if ds|bogus %}`) only when a run renders it: check every name now. Loading another
    template fails only at run time too (the sandbox has no loader): refuse it now. Raises
    TemplateSyntaxError with the node's line, as the parser would."""
    import jinja2.nodes

    env = _parser()
    for node in tree.find_all((jinja2.nodes.Extends, jinja2.nodes.Include, jinja2.nodes.Import, jinja2.nodes.FromImport)):
        tag = {"Extends": "extends", "Include": "include", "Import": "import", "FromImport": "from"}[type(node).__name__]
        raise jinja2.TemplateSyntaxError(f"{{% {tag} %}} cannot be used (a command is rendered on its own, "
                                         "with no other templates to load)", node.lineno)
    for node in tree.find_all((jinja2.nodes.Filter, jinja2.nodes.Test)):
        kind, known = ("filter", env.filters) if isinstance(node, jinja2.nodes.Filter) else ("test", env.tests)
        if node.name not in known:
            raise jinja2.TemplateSyntaxError(f"No {kind} named {node.name!r}", node.lineno)


@functools.cache
def _parser() -> Any:
    import jinja2

    from gitflowd.templating import FILTERS

    env = jinja2.Environment()  # parsing only; tasks are rendered in a sandbox at run time
    env.filters.update(FILTERS)
    return env


def _simple_template(text: str) -> bool:
    """True when the only template syntax is `{{ name }}` / `{{ name.attr }}` of known names:
    text Jinja accepts with exactly those names, checked without its parser (which costs
    about 0.3 ms a command: most of a cold load of 1,000 files). Anything else goes to Jinja."""
    rest = _SIMPLE_EXPRESSION.sub("", text)
    if "{{" in rest or "{%" in rest or "{#" in rest:
        return False
    return all(name in TEMPLATE_NAMES for name in _SIMPLE_EXPRESSION.findall(text))


def param_keys(texts: tuple[str, ...]) -> list[str]:
    """The keys of `params` that templates read by name (`params.x`, `params['x']`), except
    where a missing key is handled (`| default(...)`, `is defined`): a key no param declares
    fails every run, since --param may only override declared keys."""
    keys: list[str] = []
    for text in texts:
        if "params" not in text:
            continue
        if _simple_template(text):
            keys.extend(_SIMPLE_PARAM.findall(text))
        else:
            keys.extend(_jinja_param_keys(text))
    return list(dict.fromkeys(keys))


def _jinja_param_keys(text: str) -> list[str]:
    import jinja2.nodes as n

    tree = _parser().parse(text)  # already checked by _templates
    if any(name.name == "params" and name.ctx != "load" for name in tree.find_all(n.Name)):
        return []  # `{% set params = ... %}`: not the DAG's params
    guarded = {_param_key(node.node, n) for node in tree.find_all((n.Filter, n.Test)) if node.name in _GUARDS}
    keys = [_param_key(node, n) for node in tree.find_all((n.Getattr, n.Getitem))]
    return [key for key in keys if key is not None and key not in guarded]


def _param_key(node: Any, n: Any) -> str | None:
    """'x' for the node `params.x` or `params['x']`; None for anything else."""
    if not isinstance(node, (n.Getattr, n.Getitem)) or not (isinstance(node.node, n.Name) and node.node.name == "params"):
        return None
    if isinstance(node, n.Getattr):
        return None if hasattr(dict, node.attr) else node.attr  # params.get(...) is a method
    return node.arg.value if isinstance(node.arg, n.Const) and isinstance(node.arg.value, str) else None


_SIMPLE_PARAM = re.compile(r"\{\{ *params\.([A-Za-z_]\w*)")
_GUARDS = {"default", "d", "defined", "undefined"}  # filters and tests that take a missing key


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
