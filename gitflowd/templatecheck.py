"""Commands as Jinja templates, checked when a DAG file is loaded: syntax, names, filters,
and the params they read.

Flow: `check_templates(texts)` -> each text takes the fast path (`simple_template`: only
`{{ name }}` / `{{ name.attr }}` of known names, no parser) or Jinja's parser, whose tree
gives unknown names, unknown filters and tests, and templates it would try to load ->
`TemplateProblem(tail)` names them with hints (Airflow's names, braces meant for docker or
the shell). `param_keys(texts)` lists the `params.x` keys the texts read unguarded. Rendering
is templating.py's; this module only checks.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from gitflowd.errors import suggest

_SIMPLE_EXPRESSION = re.compile(r"(?<!\{)\{\{ *([A-Za-z_]\w*)(?:\.[A-Za-z_]\w*)* *\}\}")
# The names templating.py gives every task (tests/test_loader.py checks the two agree).
TEMPLATE_NAMES = frozenset({
    "ds", "ds_nodash", "ts", "ts_nodash", "logical_date", "data_interval_start", "data_interval_end",
    "run_id", "dag_id", "task_id", "commit", "params",
})


class TemplateProblem(Exception):
    """A template is wrong; `tail` follows `[table] key` in the message."""

    def __init__(self, tail: str):
        super().__init__(tail)
        self.tail = tail


def check_templates(texts: tuple[str, ...]) -> tuple[str, ...]:
    """Check Jinja syntax and names now, so a typo fails `validate`, not a run at 3 a.m.
    Every unknown name of the field (of all its argv items) goes in the one problem."""
    unknown = dict.fromkeys(name for text in texts for name in _unknown_names(text))
    if unknown:
        hints = {name: _template_hint(name) for name in unknown}
        listed = ", ".join(f"{name!r}{hint}" for name, hint in hints.items())
        raw = next((hint for hint in map(_raw_hint, texts) if hint), "")
        known = "" if all(hints.values()) or raw else f"; the variables are {', '.join(_TEMPLATE_ORDER)}"
        raise TemplateProblem(f": unknown template variable{'s' if len(unknown) > 1 else ''} {listed}{known}{raw}")
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


def _unknown_names(text: str) -> list[str]:
    """The names a template uses that tasks are not given, in the order they appear."""
    if simple_template(text):
        return []
    import jinja2.meta  # here: most commands never need Jinja's parser (20 ms of imports)
    import jinja2.nodes

    try:
        tree = _parser().parse(text)
        _check_filters_and_tests(tree)
        unknown = jinja2.meta.find_undeclared_variables(tree) - TEMPLATE_NAMES
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f": invalid template: {(exc.message or type(exc).__name__).removesuffix('.')}"
                       f"{_at_line(text, exc.lineno)}{_raw_hint(text)}") from None
    except RecursionError:
        raise TemplateProblem(": invalid template: expressions nested too deeply") from None
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


def simple_template(text: str) -> bool:
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
        if simple_template(text):
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
