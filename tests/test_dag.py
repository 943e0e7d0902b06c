"""Dag and Task values: graph questions, graph checks, journal snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from graphlib import TopologicalSorter
from hypothesis import given, settings
from hypothesis import strategies as st

from gitflowd.dag import Dag, Task, TriggerRule, graph_problems, is_valid_id, ordered


def make(deps: dict[str, list[str]]) -> Dag:
    return Dag(id="d", tasks={t: Task(id=t, cmd="true", deps=tuple(d)) for t, d in deps.items()})


DIAMOND = {"fetch_a": [], "fetch_b": [], "clean_a": ["fetch_a"], "clean_b": ["fetch_b"], "join": ["clean_a", "clean_b"], "train": ["join"]}


def test_topological_order_puts_deps_first_and_keeps_file_order_among_equals():
    assert make(DIAMOND).topological_order() == ["fetch_a", "fetch_b", "clean_a", "clean_b", "join", "train"]


def test_upstream_downstream_and_ancestors():
    dag = make(DIAMOND)
    assert dag.upstream("join") == ("clean_a", "clean_b")
    assert dag.downstream_map()["fetch_a"] == ["clean_a"]
    assert dag.downstream(["clean_a"]) == {"join", "train"}
    assert dag.downstream(["fetch_a", "join"]) == {"clean_a", "train"}
    assert dag.ancestors("join") == {"fetch_a", "fetch_b", "clean_a", "clean_b"}
    assert dag.ancestors("fetch_a") == set()


@pytest.mark.parametrize(
    "deps, expected",
    [
        ({"a": ["a"]}, [("a", "task 'a' depends on itself")]),
        ({"a": ["x"]}, [("a", "task 'a' depends on unknown task 'x'")]),
        ({"a": ["b"], "b": ["a"]}, [("a", "cycle: a -> b -> a")]),
        ({"a": ["c"], "b": ["a"], "c": ["b"]}, [("a", "cycle: a -> b -> c -> a")]),
        ({"x": [], "b": ["c"], "c": ["b"], "d": ["e"], "e": ["d"]}, [("b", "cycle: b -> c -> b"), ("d", "cycle: d -> e -> d")]),
        ({"a": [], "b": ["a"]}, []),
    ],
)
def test_graph_problems(deps, expected):
    assert graph_problems(deps) == expected


def test_constructing_a_cyclic_dag_is_refused():
    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        make({"a": ["b"], "b": ["a"]})


@pytest.mark.parametrize("value, ok", [("a", True), ("fetch_sales", True), ("v1.2-x", True), ("_x", True),
                                       ("a b", False), ("-a", False), (".", False), ("..", False), ("", False), ("a/b", False), ("é", False)])
def test_ids(value, ok):
    assert is_valid_id(value) is ok


def test_retry_delay_grows_by_backoff():
    task = Task(id="t", cmd="x", retry_delay=10, retry_backoff=2.0)
    assert [task.retry_delay_for(n) for n in (1, 2, 3)] == [10, 20, 40]
    assert Task(id="t", cmd="x", retry_delay=5).retry_delay_for(3) == 5


def test_retry_delay_grows_to_a_ceiling_and_never_overflows() -> None:
    # `retries = 2000, retry_backoff = 2.0` passed validate, then 2.0 ** 1024 (even with no
    # delay) or a delay too large for a timedelta ended the runner in a traceback mid-run.
    year = 365 * 86400.0
    assert Task(id="t", cmd="x", retry_backoff=2.0).retry_delay_for(2000) == 0
    assert Task(id="t", cmd="x", retry_delay=1.0, retry_backoff=2.0).retry_delay_for(5000) == year
    assert Task(id="t", cmd="x", retry_delay=86400.0, retry_backoff=100.0).retry_delay_for(7) == year
    assert Task(id="t", cmd="x", retry_delay=1.0, retry_backoff=1.5).retry_delay_for(3) == 2.25
    timedelta(seconds=Task(id="t", cmd="x", retry_delay=year, retry_backoff=100.0).retry_delay_for(10**6))


def test_kind():
    assert Task(id="t", cmd="x").kind == "cmd"
    assert Task(id="t", argv=("x",)).kind == "argv"
    assert Task(id="t", call="m:f").kind == "call"


def test_snapshot_round_trip():
    tasks = {
        "a": Task(id="a", argv=("echo", "hi"), retries=2, retry_delay=3.0, timeout=60.0, env={"K": "v"}, line=4),
        "b": Task(id="b", call="m:f", deps=("a",), trigger_rule=TriggerRule.ALL_DONE, description="d"),
    }
    dag = Dag(id="d", tasks=tasks, path="dags/d.toml", schedule="@daily", timezone="Asia/Seoul",
              start_date=datetime(2026, 1, 1, tzinfo=timezone.utc), catchup=True, params={"p": 1},
              secrets=("S",), tags=("t",))
    again = Dag.from_dict(dag.to_dict())
    assert again == dag
    assert again.tasks["b"].trigger_rule is TriggerRule.ALL_DONE


def _graphlib_order(deps: dict[str, list[str]]) -> list[str]:
    """The order as graphlib gives it, rounds sorted by position (the previous implementation)."""
    sorter = TopologicalSorter(deps)
    sorter.prepare()
    position = {task_id: i for i, task_id in enumerate(deps)}
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order.extend(ready)
        sorter.done(*ready)
    return order


@st.composite
def _graphs(draw: st.DrawFn) -> dict[str, list[str]]:
    """Random dependency maps in a random file order: mostly DAGs, sometimes with a cycle,
    a self dependency, an unknown or a repeated dependency."""
    count = draw(st.integers(1, 12))
    names = draw(st.permutations([f"t{i}" for i in range(count)]))
    deps = {name: [f"t{j}" for j in draw(st.sets(st.integers(0, count - 1), max_size=3)) if j < int(name[1:])]
            for name in names}
    victim = draw(st.sampled_from(names))
    extra = draw(st.sampled_from(["", "cycle", "self", "unknown", "repeat"]))
    if extra == "cycle" and count > 1:
        deps["t0"].append(f"t{count - 1}")
        deps[f"t{count - 1}"].append("t0")
    elif extra == "self":
        deps[victim].append(victim)
    elif extra == "unknown":
        deps[victim].append("nope")
    elif extra == "repeat" and deps[victim]:
        deps[victim].append(deps[victim][0])
    return deps


@settings(max_examples=300, deadline=None)
@given(_graphs())
def test_ordered_is_graphlib_order_or_none_exactly_when_the_graph_has_problems(deps):
    order = ordered(deps)
    assert (order is None) == bool(graph_problems(deps))
    tasks = {k: Task(id=k, cmd="x", deps=tuple(v)) for k, v in deps.items()}
    if order is None:
        with pytest.raises(ValueError):
            Dag(id="d", tasks=tasks)
    else:
        assert order == _graphlib_order(deps) == Dag(id="d", tasks=tasks).topological_order()
