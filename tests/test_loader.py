"""The TOML loader: the full format, every documented error at its line, and fuzzing."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitflowd.dag import Dag, TriggerRule
from gitflowd.errors import DagFileError
from gitflowd.templatecheck import TEMPLATE_NAMES
from gitflowd.loader import DAG_KEYS, TASK_KEYS, dag_from_data, load_dag, parse_duration

BAD = Path(__file__).parent / "bad_dags"


def expected_corpus() -> dict[str, list[str]]:
    """file name -> the exact problem lines (`dags/<file>:<line>: <message>`)."""
    result: dict[str, list[str]] = {}
    for line in (BAD / "expected.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name = line.split(":", 1)[0]
            result.setdefault(name, []).append(f"dags/{line}")
    return result


CORPUS = expected_corpus()


def problems(text: str, path: str = "dags/x.toml") -> list[str]:
    with pytest.raises(DagFileError) as info:
        load_dag(text, path)
    return [str(p) for p in info.value.problems]


def test_corpus_is_large_and_every_file_has_expectations():
    files = sorted(p.name for p in BAD.glob("*.toml"))
    assert len(files) >= 25
    assert sorted(CORPUS) == files


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_dag_corpus(name):
    assert problems((BAD / name).read_text(), f"dags/{name}") == CORPUS[name]


FULL = '''\
[dag]
id = "umbrella"
description = "Forecast"
schedule = "@daily"
timezone = "Asia/Seoul"
start_date = 2026-01-01
end_date = 2026-12-31T18:00:00
catchup = true
max_active_runs = 2
max_active_tasks = 4
params = { region = "seoul", since = 2025-01-01 }
env = { PYTHONUNBUFFERED = "1", SHARED = "dag" }
secrets = ["WEATHER_API_KEY"]
tags = ["ml", "demo"]

[defaults]
retries = 1
retry_delay = "30s"
retry_backoff = 2.0
timeout = "10m"

[tasks.fetch_sales]
cmd = "python3 fetch.py --day {{ ds }}"

[tasks.fetch_weather]
argv = ["python3", "weather.py", "{{ ds }}"]
env = { SHARED = "task", ONLY = "x" }
retries = 0
timeout = 90

[tasks.join]
call = "jobs.join:main"
deps = ["fetch_sales", "fetch_weather"]
trigger_rule = "all_done"
description = "join both"
retry_delay = "1h30m"
'''


def test_full_format():
    dag = load_dag(FULL, "dags/umbrella_file.toml")
    seoul = ZoneInfo("Asia/Seoul")
    assert dag.id == "umbrella" and dag.path == "dags/umbrella_file.toml"
    assert (dag.description, dag.schedule, dag.timezone, dag.catchup) == ("Forecast", "@daily", "Asia/Seoul", True)
    assert dag.start_date == datetime(2026, 1, 1, tzinfo=seoul)
    assert dag.end_date == datetime(2026, 12, 31, 18, tzinfo=seoul)
    assert (dag.max_active_runs, dag.max_active_tasks) == (2, 4)
    assert dag.params == {"region": "seoul", "since": "2025-01-01"}
    assert dag.secrets == ("WEATHER_API_KEY",) and dag.tags == ("ml", "demo")
    assert list(dag.tasks) == ["fetch_sales", "fetch_weather", "join"]
    sales, weather, join = dag.tasks.values()
    assert (sales.kind, sales.retries, sales.retry_delay, sales.retry_backoff, sales.timeout) == ("cmd", 1, 30.0, 2.0, 600.0)
    assert sales.env == {"PYTHONUNBUFFERED": "1", "SHARED": "dag"} and sales.line == 22
    assert weather.argv == ("python3", "weather.py", "{{ ds }}") and (weather.retries, weather.timeout) == (0, 90.0)
    assert weather.env == {"PYTHONUNBUFFERED": "1", "SHARED": "task", "ONLY": "x"}
    assert (join.call, join.deps, join.trigger_rule, join.description) == ("jobs.join:main", ("fetch_sales", "fetch_weather"), TriggerRule.ALL_DONE, "join both")
    assert join.retry_delay == 5400.0


def test_defaults_when_absent():
    dag = load_dag('[tasks.a]\ncmd = "true"\n', "dags/tiny.toml")
    task = dag.tasks["a"]
    assert dag.id == "tiny" and dag.schedule is None and dag.timezone == "UTC" and dag.start_date is None
    assert (task.retries, task.retry_delay, task.retry_backoff, task.timeout, task.trigger_rule) == (0, 0.0, 1.0, None, TriggerRule.ALL_SUCCESS)


def test_offset_datetime_is_kept_and_naive_date_uses_timezone():
    dag = load_dag('[dag]\ntimezone = "Europe/Berlin"\nstart_date = 2026-03-01T10:00:00+02:00\nend_date = 2026-04-01\n[tasks.a]\ncmd = "x"\n', "dags/d.toml")
    assert dag.start_date.utcoffset() == timedelta(hours=2)
    assert dag.end_date == datetime(2026, 4, 1, tzinfo=ZoneInfo("Europe/Berlin"))


def test_dotted_keys_and_inline_tasks():
    dag = load_dag('[tasks]\na.cmd = "x"\nb = { cmd = "y", deps = ["a"] }\n', "dags/d.toml")
    assert dag.tasks["b"].deps == ("a",) and dag.tasks["a"].line == 2
    assert problems('tasks.a.cmd = "x"\ntasks.a.retrys = 1\n') == ["dags/x.toml:2: unknown key 'retrys' in [tasks.a] (did you mean 'retries'?)"]
    assert problems('[tasks]\nb = { cmd = "y", deps = ["q"] }\n') == ["dags/x.toml:2: task 'b' depends on unknown task 'q'"]


def test_every_problem_of_a_file_is_reported_in_line_order():
    found = problems((BAD / "many_problems.toml").read_text())
    assert [int(line.split(":")[1]) for line in found] == [3, 6, 10, 14, 15]


@pytest.mark.parametrize("value, seconds", [("90s", 90), ("10m", 600), ("1h30m", 5400), ("2h", 7200), ("1d", 86400),
                                            ("1d2h3m4s", 93784), ("1.5s", 1.5), ("30", 30), (45, 45), (2.5, 2.5), (0, 0)])
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "10 minutes", "1h 30m", "-5s", "5ms", "m", "h1", True, [1], None])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize("line, message", [
    ("timeout = -3", '[tasks.a] timeout must be a duration > 0, got -3'),
    ("retry_delay = -1", '[tasks.a] retry_delay must be a duration >= 0, got -1'),
    ("retry_delay = true", '[tasks.a] retry_delay must be a duration ("90s", "10m", "1h30m" or seconds), got true'),
    ("retry_delay = inf", '[tasks.a] retry_delay must be a duration of at most 365 days, got inf'),
    ("timeout = \"400d\"", '[tasks.a] timeout must be a duration of at most 365 days, got "400d"'),
    ("retries = 1.5", '[tasks.a] retries must be an integer >= 0, got 1.5'),
    ("retries = true", '[tasks.a] retries must be an integer >= 0, got true'),
    ("retry_backoff = 1000", '[tasks.a] retry_backoff must be a number from 1.0 (fixed delay) to 100.0, got 1000'),
    ("description = 3", '[tasks.a] description must be a string, got 3'),
    ("env = { \"1X\" = \"v\" }", "[tasks.a] env: '1X' is not a valid environment variable name"),
    ("deps = [1]", '[tasks.a] deps must be an array of task ids, got an array'),
    ("call = \"m:f\"", "task 'a' has both cmd and call; use exactly one"),
])
def test_value_errors(line, message):
    assert problems(f'[tasks.a]\ncmd = "x"\n{line}\n') == [f"dags/x.toml:3: {message}"]


def test_three_kinds_at_once():
    assert problems('[tasks.a]\ncmd = "x"\nargv = ["x"]\ncall = "m:f"\n') == ["dags/x.toml:4: task 'a' has cmd, argv and call; use exactly one"]


def test_wrong_table_types():
    assert problems('dag = 1\ndefaults = []\n[tasks.a]\ncmd = "x"\n') == [
        "dags/x.toml:1: [dag] must be a table, got 1",
        "dags/x.toml:2: [defaults] must be a table, got []",
    ]
    assert problems('tasks = "a"\n') == ["dags/x.toml:1: 'tasks' must be a table of tasks, got \"a\""]


def test_task_keys_in_defaults_and_dag_keys_in_tasks_point_home():
    assert problems('[defaults]\ncmd = "x"\n[tasks.a]\ncmd = "x"\nschedule = "@daily"\n') == [
        "dags/x.toml:2: unknown key 'cmd' in [defaults] (cmd belongs in a [tasks.X] table)",
        "dags/x.toml:5: unknown key 'schedule' in [tasks.a] (schedule belongs in [dag])",
    ]


def test_template_names_match_what_templating_provides():
    from gitflowd.state import RunState
    from gitflowd.templating import run_variables

    dag = load_dag('[tasks.a]\ncmd = "x"\n', "dags/d.toml")
    run = RunState(dag_id="d", run_id="r", kind="manual", dag=dag, commit="c" * 40, logical_date=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert set(run_variables(run, dag)) | {"task_id"} == TEMPLATE_NAMES


@pytest.mark.parametrize("cmd, unknown", [
    ("{{ params.region }} {{ params['region'] }} {{ params.region.upper() }}", []),
    ("{{ params.regoin }}", ["'regoin' (did you mean 'region'?)"]),
    ("{{ params['zone'] }} {% if ds %}{{ params.zone }}{% endif %} {{ params.day }}", ["'zone'", "'day'"]),
    ("{{ params.zone | default('utc') }} {% if params.day is defined %}{{ params.day }}{% endif %}", []),
    ("{{ params.get('zone', 'utc') }} {{ params.items() | list }} {{ params[ds] }}", []),
    ("{% set params = {'zone': 1} %}{{ params.zone }}", []),
])
def test_a_param_the_dag_does_not_declare_is_a_problem(cmd, unknown):
    """validate passed `{{ params.nope }}` and every run of it then failed: --param only overrides declared keys."""
    text = f'[dag]\nparams = {{ region = "seoul" }}\n[tasks.a]\ncmd = "{cmd}"\n'
    plural = "s" if len(unknown) > 1 else ""
    if unknown:
        assert problems(text) == [f"dags/x.toml:4: [tasks.a] cmd: unknown param{plural} {', '.join(unknown)}; declare "
                                  f"{'them' if plural else 'it'} in [dag] params (--param overrides only those)"]
    else:
        assert load_dag(text, "dags/x.toml").tasks["a"].cmd == cmd
    argv = f'[tasks.a]\nargv = ["x", "{{{{ params.zone }}}}"]\n'
    assert problems(argv) == ["dags/x.toml:2: [tasks.a] argv: unknown param 'zone'; declare it in [dag] params (--param overrides only those)"]
    assert problems('[dag]\nparams = 3\n[tasks.a]\ncmd = "{{ params.zone }}"\n') == ["dags/x.toml:2: [dag] params must be a table, got 3"]


def test_a_command_longer_than_one_program_argument_may_be_is_a_problem():
    """Linux refuses a single argument of 128 KiB or more (MAX_ARG_STRLEN): such a cmd passed
    validate and every attempt failed with 'Argument list too long'."""
    fits = "x" * (128 * 1024 - 1)
    assert load_dag(f'[tasks.a]\ncmd = "{fits}"\n', "dags/x.toml").tasks["a"].cmd == fits
    assert problems(f'[tasks.a]\ncmd = "{fits}é"\n') == [
        "dags/x.toml:2: [tasks.a] cmd is 131,073 bytes; one program argument may hold at most 131,071 "
        "(put the command in a script in the repository)"]
    assert problems(f'[tasks.a]\nargv = ["echo", "{fits}x"]\n') == [
        "dags/x.toml:2: [tasks.a] argv[1] is 131,072 bytes; one program argument may hold at most 131,071 "
        "(put the command in a script in the repository)"]


def test_templates_may_use_jinja_locals_and_globals():
    cmd = "{{ params.region }} {% for x in range(2) %}{{ x }}{% endfor %} {% set y = ds %}{{ y }}"
    assert load_dag(f'[dag]\nparams = {{ region = "r" }}\n[tasks.a]\ncmd = "{cmd}"\n', "dags/d.toml").tasks["a"].cmd == cmd
    names = "; the variables are ds, ds_nodash, ts, ts_nodash, logical_date, data_interval_start, data_interval_end, run_id, dag_id, task_id, commit, params"
    assert problems('[tasks.a]\nargv = ["x", "{{ foo }}"]\n') == [f"dags/x.toml:2: [tasks.a] argv: unknown template variable 'foo'{names}"]
    assert problems('[tasks.a]\nargv = ["{{ foo }}", "{{ ds }}", "{{ bar }} {{ foo }}"]\n') == [
        f"dags/x.toml:2: [tasks.a] argv: unknown template variables 'foo', 'bar'{names}"]


def test_a_template_error_in_a_multi_line_command_says_which_line():
    text = '[tasks.a]\ncmd = """\necho one\necho {{ ds | bogus }}\n{% if ds %}\necho three{% endif %}\n"""\n'
    assert problems(text) == ["dags/x.toml:2: [tasks.a] cmd: invalid template: No filter named 'bogus' (line 2 of the template)"]
    text = '[tasks.a]\ncmd = """\necho one\necho two }}\n{% if ds %}\necho three\n"""\n'
    (problem,) = problems(text)  # Jinja lists the tags it looked for in no fixed order
    assert problem.startswith("dags/x.toml:2: [tasks.a] cmd: invalid template: Unexpected end of template.")
    assert problem.endswith("The innermost block that needs to be closed is 'if' (line 3 of the template)")
    assert problems('[tasks.a]\ncmd = "echo {{ ds"\n') == [
        "dags/x.toml:2: [tasks.a] cmd: invalid template: unexpected end of template, expected 'end of print statement'"]


def test_env_values_are_checked_as_templates():
    text = ('[dag]\nparams = { region = "x" }\nenv = { A = "{{ params.regoin }}" }\n'
            '[tasks.a]\ncmd = "x"\nenv = { B = "{{ dss }}" }\n[tasks.b]\ncmd = "x"\nenv = { C = "{{ params.nope }}" }\n')
    assert problems(text) == [
        "dags/x.toml:3: [dag] env.A: unknown param 'regoin' (did you mean 'region'?); declare it in [dag] params (--param overrides only those)",
        "dags/x.toml:6: [tasks.a] env.B: unknown template variable 'dss' (did you mean 'ds'?)",
        "dags/x.toml:9: [tasks.b] env.C: unknown param 'nope'; declare it in [dag] params (--param overrides only those)"]
    assert problems('[tasks.a]\ncmd = "x"\nenv = { D = "{{ ds" }\n')[0].startswith("dags/x.toml:3: [tasks.a] env.D: invalid template:")
    dag = load_dag('[dag]\nenv = { A = "{{ ds }}" }\n[tasks.a]\ncmd = "x"\nenv = { B = "{{ task_id }}" }\n', "dags/d.toml")
    assert dag.tasks["a"].env == {"A": "{{ ds }}", "B": "{{ task_id }}"}


def test_a_literal_dollar_in_an_env_value_is_written_as_a_template():
    # $VAR in env is refused (no shell expands it there), but a value read by a shell later,
    # such as GIT_SSH_COMMAND, needs a literal $: the refusal names the escape, and it loads.
    [problem] = problems('[tasks.a]\ncmd = "x"\nenv = { GIT_SSH_COMMAND = "ssh -i $HOME/k" }\n')
    assert problem.endswith("(for a literal $, write {{ '$' }})")
    dag = load_dag('[tasks.a]\ncmd = "x"\nenv = { GIT_SSH_COMMAND = "ssh -i {{ \'$\' }}HOME/k" }\n', "dags/d.toml")
    assert dag.tasks["a"].env == {"GIT_SSH_COMMAND": "ssh -i {{ '$' }}HOME/k"}


def test_airflow_template_names_say_what_gitflowd_has_instead():
    # A user from Airflow writes macros.ds_add, prev_ds, execution_date: 'unknown template
    # variable' with no hint left them to guess whether date arithmetic exists at all.
    assert problems('[tasks.a]\ncmd = "x {{ macros.ds_add(ds, -1) }} {{ execution_date }}"\n') == [
        "dags/x.toml:2: [tasks.a] cmd: unknown template variables 'macros' (Airflow's; for date arithmetic use "
        "{{ ds | ds_add(-1) }}), 'execution_date' (did you mean 'logical_date'?)"]
    assert "'prev_ds' (Airflow's; use {{ ds | ds_add(-1) }}" in problems('[tasks.a]\ncmd = "x {{ prev_ds }}"\n')[0]
    assert load_dag('[tasks.a]\ncmd = "x {{ ds | ds_add(-7) }}"\n', "dags/d.toml").tasks["a"].cmd == "x {{ ds | ds_add(-7) }}"


def test_gitflowd_variables_cannot_be_set_by_a_dag():
    text = ('[dag]\nsecrets = ["GITFLOWD_TASK"]\n[dag.env]\nOK = "1"\nGITFLOWD_RUN_ID = "x"\n'
            '[tasks.a]\ncmd = "x"\nenv = { GITFLOWD_ATTEMPT = "9" }\n')
    reserved = "is set by gitflowd for every task (GITFLOWD_* names are reserved)"
    assert problems(text) == [
        f"dags/x.toml:2: [dag] secrets: 'GITFLOWD_TASK' {reserved}",
        f"dags/x.toml:3: [dag] env: 'GITFLOWD_RUN_ID' {reserved}",
        f"dags/x.toml:8: [tasks.a] env: 'GITFLOWD_ATTEMPT' {reserved}",
    ]
    dag = load_dag('[dag]\nenv = { GITFLOWD = "1", gitflowd_x = "2", MY_GITFLOWD_X = "3" }\n[tasks.a]\ncmd = "x"\n', "dags/d.toml")
    assert dag.tasks["a"].env == {"GITFLOWD": "1", "gitflowd_x": "2", "MY_GITFLOWD_X": "3"}


def test_time_only_is_not_a_date():
    assert problems('[dag]\nstart_date = 07:00:00\n[tasks.a]\ncmd = "x"\n') == [
        "dags/x.toml:2: [dag] start_date must be a TOML date or datetime such as 2026-01-01, got 07:00:00"]


def test_byte_order_mark_is_ignored_and_deep_nesting_is_an_error():
    assert list(load_dag('\ufeff[tasks.a]\ncmd = "x"\n', "dags/bom.toml").tasks) == ["a"]
    assert problems("a = " + "[" * 5000 + "]" * 5000) == ["dags/x.toml:1: invalid TOML: arrays or tables nested too deeply"]


def test_syntax_error_at_end_of_document_uses_last_line():
    assert problems('[tasks.a]\ncmd = "x"\nretries =') == ["dags/x.toml:3: invalid TOML: Invalid value"]


# -- property tests: nothing but DagFileError, ever -------------------------------------

TOMLISH = st.lists(st.sampled_from(list('[]{}=".,\'\n #abcdt_-0123456789:') + ["tasks", "dag", "cmd", "deps", '"""', "[tasks.a]\n", "\ncmd = "]),
                   max_size=60).map("".join)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True), st.text(max_size=12),
                    st.dates(), st.datetimes(), st.datetimes(timezones=st.just(timezone.utc)), st.times(),
                    st.sampled_from(["@daily", "1h", "all_done", "m:f", "a", "UTC", "Asia/Seoul", "0 0 * * *", "{{ ds }}"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
KEYS = st.sampled_from(sorted({*DAG_KEYS, *TASK_KEYS, "dag", "tasks", "defaults", "x"}))
TASK = st.dictionaries(KEYS, VALUES, max_size=5) | VALUES
DATA = st.fixed_dictionaries({}, optional={
    "dag": st.dictionaries(KEYS, VALUES, max_size=6) | VALUES,
    "defaults": st.dictionaries(KEYS, VALUES, max_size=4) | VALUES,
    "tasks": st.dictionaries(st.sampled_from(["a", "b", "c", "a b", ""]), TASK, max_size=4) | VALUES,
})


def _only_dag_file_errors(call) -> None:
    try:
        call()
    except DagFileError as exc:
        assert exc.problems and all(p.line >= 1 and len(str(p).splitlines()) == 1 for p in exc.problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TOMLISH)
def test_any_text_raises_only_dag_file_error(text):
    _only_dag_file_errors(lambda: load_dag(text, "dags/fuzz.toml"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_raises_only_dag_file_error(text):
    _only_dag_file_errors(lambda: load_dag(text, "dags/fuzz.toml"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DATA)
def test_any_data_shape_raises_only_dag_file_error(data):
    _only_dag_file_errors(lambda: _round_trips(dag_from_data(data, "dags/fuzz.toml")))


def _round_trips(dag: Dag) -> None:
    """A run's snapshot rebuilds the very same Dag (runs.plan_run relies on it)."""
    assert Dag.from_dict(json.loads(json.dumps(dag.to_dict()))) == dag


def test_loaded_values_are_the_declared_types():
    dag = load_dag(FULL, "dags/u.toml")
    assert isinstance(dag.start_date, datetime) and not isinstance(dag.params["since"], date)
    assert all(isinstance(t.retry_delay, float) for t in dag.tasks.values())
    assert isinstance(time(), time)


def test_a_key_of_another_table_says_where_it_belongs_before_a_look_alike():
    # `timeout` in [dag] was "did you mean 'timezone'?", and `env` in [defaults] was sent to
    # a task only, though [dag] env is the DAG-wide one.
    text = '[dag]\ntimeout = "1h"\n[defaults]\nenv = { A = "1" }\n[tasks.a]\ncmd = "x"\n'
    assert problems(text) == ["dags/x.toml:2: unknown key 'timeout' in [dag] (timeout belongs in [defaults] or a task)",
                              "dags/x.toml:4: unknown key 'env' in [defaults] (env belongs in [dag] or a task)"]


def test_a_shell_key_says_how_to_run_another_shell():
    # dagu's `shell: bash`: "did you mean 'cmd'?" would have sent the user to replace the command.
    assert problems('[tasks.a]\ncmd = "source env.sh"\nshell = "bash"\n') == [
        "dags/x.toml:3: unknown key 'shell' in [tasks.a] (cmd runs /bin/sh -c; for bash write argv = [\"bash\", \"-c\", \"...\"])"]


def test_a_go_template_in_a_command_points_to_raw():
    # docker --format '{{.State}}' or kubectl go-template: "unexpected '.'" alone did not say
    # that commands are Jinja templates, nor how to keep braces as they are.
    hint = (" (commands are Jinja templates: braces meant for another program, such as a docker or kubectl format "
            "or a shell ${#VAR}, go inside {% raw %}...{% endraw %})")
    assert problems("[tasks.a]\ncmd = \"docker inspect --format '{{.State.Status}}' web\"\n") == [
        f"dags/x.toml:2: [tasks.a] cmd: invalid template: unexpected '.'{hint}"]
    assert problems('[tasks.a]\nargv = ["kubectl", "-o", "go-template={{range .items}}{{end}}"]\n')[0].endswith(hint)
    assert problems('[tasks.a]\ncmd = "echo ${#HOME}"\n') == [  # was "Missing end of comment tag" alone
        f"dags/x.toml:2: [tasks.a] cmd: invalid template: Missing end of comment tag{hint}"]
    raw = "docker inspect --format '{% raw %}{{.State.Status}}{% endraw %}' web"
    assert load_dag(f'[tasks.a]\ncmd = "{raw}"\n', "dags/d.toml").tasks["a"].cmd == raw


def test_a_template_in_call_says_how_run_values_reach_the_function():
    assert problems('[tasks.a]\ncall = "jobs.load:main --day {{ ds }}"\n') == [
        'dags/x.toml:2: [tasks.a] call must be "module:function" (e.g. "jobs.report:main"), got "jobs.load:main --day {{ ds }}" '
        '(call is not a template: pass run values through env, e.g. env = { DAY = "{{ ds }}" })']


def test_argv_must_start_with_a_program():
    # "" (or " python3", a space from an edit) passed, and every attempt failed to start.
    assert problems('[tasks.a]\nargv = ["", "x"]\n') == ['dags/x.toml:2: [tasks.a] argv[0] must name the program to run, got ""']
    assert problems('[tasks.a]\nargv = [" python3", "x"]\n') == [
        'dags/x.toml:2: [tasks.a] argv[0] must name the program to run, got " python3"']
