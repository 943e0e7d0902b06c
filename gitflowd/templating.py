"""Task commands as Jinja templates, rendered in a sandbox before anything runs.

Flow: `variables(run, task_id)` builds the names of DESIGN.md section 1 -> `render_commands`
renders every task's `cmd` or `argv`, and its `env` values that hold templates (Airflow
renders a BashOperator's env too), of a run at its start (StrictUndefined: an unknown
name is an error, never an empty string) -> a `RunError` naming the DAG file, line and
task on the first problem, so that a typo stops the run before any task starts.

Dates are shown in the DAG's timezone (`ds` of a daily run at midnight in Seoul is the
Seoul date); `GITFLOWD_LOGICAL_DATE` in the environment stays UTC.
"""

from __future__ import annotations

import functools
import shlex
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from gitflowd.dag import Dag, Task
from gitflowd.errors import RunError
from gitflowd.state import RunState

_MARKERS = ("{{", "{%", "{#")


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    return moment.astimezone(zone) if moment else None


def run_variables(run: RunState, dag: Dag) -> dict[str, Any]:
    """The template names shared by every task of a run."""
    zone = ZoneInfo(dag.timezone or "UTC")
    logical = run.logical_date.astimezone(zone)
    return {
        "ds": logical.strftime("%Y-%m-%d"),
        "ds_nodash": logical.strftime("%Y%m%d"),
        "ts": logical.isoformat(),
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "logical_date": logical,
        "data_interval_start": _local(run.data_interval_start, zone),
        "data_interval_end": _local(run.data_interval_end, zone),
        "run_id": run.run_id,
        "dag_id": run.dag_id,
        "commit": run.commit,
        "params": {**dag.params, **run.params},
    }


def render(text: str, variables: dict[str, Any]) -> str:
    """One template string; text without Jinja markers is returned as is (fast path)."""
    if not any(marker in text for marker in _MARKERS):
        return text
    return _sandbox().from_string(text).render(variables)


def _shell_quote(value: Any) -> str:
    """`{{ params.x | quote }}`: one shell word whatever the value holds (as Ansible's quote)."""
    return shlex.quote(str(value))


def _ds_add(ds: Any, days: int) -> str:
    """`{{ ds | ds_add(-1) }}`: a YYYY-MM-DD date moved by whole days (Airflow's macros.ds_add)."""
    from datetime import date, timedelta

    return (date.fromisoformat(str(ds)[:10]) + timedelta(days=int(days))).isoformat()


# Filters gitflowd adds to Jinja's (the loader checks filter names against the same table).
FILTERS = {"quote": _shell_quote, "ds_add": _ds_add}


@functools.cache
def _sandbox() -> Any:
    """Jinja is imported on the first template (a run of plain commands never needs it)."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters.update(FILTERS)
    return env


def _where(dag: Dag, task: Task) -> str:
    if dag.path:
        return f"{dag.path}:{task.line}: task {task.id!r}" if task.line else f"{dag.path}: task {task.id!r}"
    return f"DAG {dag.id!r}, task {task.id!r}"


def _describe(exc: Exception) -> str:
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"template syntax error: {exc.message} (template line {exc.lineno})"
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined template variable: {exc.message}"
    return f"template error: {type(exc).__name__}: {exc}"


class Rendered(NamedTuple):
    """A task's command with its templates rendered, and the `env` values that were templates
    (None when none was: the task's env is used as it is)."""

    cmd: str | None
    argv: tuple[str, ...] | None
    env: dict[str, str] | None = None


def render_task(dag: Dag, task: Task, shared: dict[str, Any]) -> Rendered:
    """One task's command and templated env values rendered; RunError naming the task on failure."""
    variables = {**shared, "task_id": task.id}
    try:
        cmd = render(task.cmd, variables) if task.cmd is not None else None
        argv = tuple(render(a, variables) for a in task.argv) if task.argv is not None else None
    except Exception as exc:  # noqa: BLE001 - any template failure is the user's to fix
        raise RunError(f"{_where(dag, task)}: {_describe(exc)}") from None
    return Rendered(cmd, argv, _render_env(dag, task, variables))


def _render_env(dag: Dag, task: Task, variables: dict[str, Any]) -> dict[str, str] | None:
    """The task's env values that hold templates, rendered (None when none does)."""
    rendered: dict[str, str] = {}
    for name, value in task.env.items():
        if any(marker in value for marker in _MARKERS):
            try:
                rendered[name] = render(value, variables)
            except Exception as exc:  # noqa: BLE001 - as for the command
                raise RunError(f"{_where(dag, task)} env.{name}: {_describe(exc)}") from None
    return rendered or None


def render_commands(run: RunState, dag: Dag) -> dict[str, Rendered]:
    """task id -> Rendered, every task of the DAG rendered up front."""
    shared = run_variables(run, dag)
    return {task.id: render_task(dag, task, shared) for task in dag.tasks.values()}
