"""templatecheck.py: the fast check of simple templates agrees with Jinja's parser; template
problems keep their messages."""

from __future__ import annotations

import jinja2
import jinja2.meta
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitflowd import templatecheck

_JINJA = jinja2.Environment()
PIECES = ["{", "}", "{{", "}}", " ", "\t", "\n", "ds", "params", ".", "region", "x", "true", "{%", "%}", "{#", "#}",
          "-", "'", '"', "if", "1", "echo ", "$HOME", "{{ ds }}", "{{ params.region }}", "{{ nope }}"]


def jinja_accepts(text: str) -> bool:
    try:
        names = jinja2.meta.find_undeclared_variables(_JINJA.parse(text))
    except jinja2.TemplateError:
        return False
    return not (names - templatecheck.TEMPLATE_NAMES)


@pytest.mark.parametrize("text", ["echo {{ ds }}", "run {{params.region}} --at {{ ts_nodash }}", "plain $HOME }}", "{{ ds }}}}"])
def test_simple_templates_take_the_fast_path(text):
    assert templatecheck.simple_template(text)
    assert jinja_accepts(text)


@pytest.mark.parametrize("text", ["{{ nope }}", "{{{ ds }}", "{{ ds | upper }}", "{% if x %}a{% endif %}", "{# c #}",
                                  "{{- ds }}", "{{ true }}", "{{ ds }", '{{ "{{ ds }}" }}'])
def test_anything_else_goes_to_jinja(text):
    assert not templatecheck.simple_template(text)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12).map("".join))
def test_the_fast_path_never_accepts_what_jinja_rejects(text):
    if templatecheck.simple_template(text):
        assert jinja_accepts(text), text


@pytest.mark.parametrize("text, message", [
    ("{{ dss }}", "unknown template variable 'dss'"),
    ("{{ dss }} {{ foo.bar }}", r"^: unknown template variables 'dss' \(did you mean 'ds'\?\), 'foo'; the variables are ds, ds_nodash, .*, params$"),
    ("{% for x in zz %}{{ x }}{{ tss }}{% endfor %}{{ zz }}", r"^: unknown template variables 'zz', 'tss' \(did you mean 'ts'\?\); the variables are ds, .*, params$"),
    ("{{ ds }", "invalid template"),
    ("{{ ds | bogus }}", "^: invalid template: No filter named 'bogus'$"),
    ("{{ ds is bogus }}", "^: invalid template: No test named 'bogus'$"),
    ("{% if ds is bogus %}x{% endif %}", "^: invalid template: No test named 'bogus'$"),  # Jinja: only when rendered
    ("{{ 1 if ds | bogus else 2 }}", "^: invalid template: No filter named 'bogus'$"),
    ("{% filter bogus %}x{% endfilter %}", "^: invalid template: No filter named 'bogus'$"),
    pytest.param("{{ " + "(" * 5000 + "ds" + ")" * 5000 + " }}", "^: invalid template: expressions nested too deeply$", id="nested"),
])
def test_bad_templates_keep_their_messages(text, message):
    with pytest.raises(templatecheck.TemplateProblem, match=message):
        templatecheck.check_templates((text,))


def test_the_quote_filter_makes_a_param_one_shell_word(make_repo, cli, tmp_path) -> None:
    """Params go into a `cmd` as text, as in Airflow's BashOperator: `| quote` keeps a value
    with shell syntax (`$(...)`, `;`, spaces) from being run."""
    pwned = tmp_path / "pwned"
    repo = make_repo({"dags/q.toml": '[dag]\nparams = { name = "x" }\n\n'
                                     '[tasks.a]\ncmd = "printf \'%s|\' {{ params.name | quote }}"\n'})
    value = f"a b; touch {pwned}; $(touch {pwned})"
    done = cli("run", "q", "--param", f"name={value}", "--no-render", cwd=repo.path)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]
    done = cli("logs", "q", run_id, "a", cwd=repo.path)
    assert done.stdout == f"{value}|" and not pwned.exists()
    bad = cli("validate", "--worktree", cwd=repo.path)
    assert bad.returncode == 0, bad.stdout + bad.stderr
    (repo.path / "dags/q.toml").write_text('[tasks.a]\ncmd = "echo {{ ds | quot }}"\n')
    bad = cli("validate", "--worktree", cwd=repo.path)
    assert bad.returncode == 1 and "dags/q.toml:2: [tasks.a] cmd: invalid template: No filter named 'quot'" in bad.stdout
