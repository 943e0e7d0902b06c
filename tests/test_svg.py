"""Layout geometry of the task graph and the Gantt chart."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from gitflowd.dag import Dag, Task
from gitflowd.svg import Span, format_seconds, gantt_layout, graph_layout

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def dag(edges: dict[str, list[str]]) -> Dag:
    return Dag(id="d", tasks={t: Task(id=t, cmd="true", deps=tuple(d)) for t, d in edges.items()})


def points(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", d)]


def sample(d: str) -> list[tuple[float, float]]:
    """Points along an M/C/L path, 20 per segment."""
    out: list[tuple[float, float]] = []
    current = (0.0, 0.0)
    for command, args in re.findall(r"([MCL])([^MCL]*)", d):
        pts = points(args)
        if command == "C":
            (x1, y1), (x2, y2), (x3, y3) = pts
            x0, y0 = current
            for i in range(21):
                t = i / 20
                out.append(((1 - t) ** 3 * x0 + 3 * (1 - t) ** 2 * t * x1 + 3 * (1 - t) * t * t * x2 + t ** 3 * x3,
                            (1 - t) ** 3 * y0 + 3 * (1 - t) ** 2 * t * y1 + 3 * (1 - t) * t * t * y2 + t ** 3 * y3))
        else:
            out.append(pts[-1])
        current = pts[-1]
    return out


def test_layers_run_left_to_right_and_edges_end_at_their_boxes():
    layout = graph_layout(dag({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}))
    nodes = {n.id: n for n in layout.nodes}
    assert nodes["a"].x < nodes["b"].x == nodes["c"].x < nodes["d"].x
    assert nodes["b"].y != nodes["c"].y
    for edge in layout.edges:
        first, last = points(edge.d)[0], points(edge.d)[-1]
        src, dst = nodes[edge.src], nodes[edge.dst]
        assert first == (src.x + src.w, src.y + src.h / 2)
        assert last == (dst.x - 4, dst.y + dst.h / 2)
    assert all(0 <= n.y and n.y + n.h <= layout.height and n.x + n.w <= layout.width for n in layout.nodes)


def test_a_long_edge_gets_its_own_slot_instead_of_crossing_boxes():
    layout = graph_layout(dag({"a": [], "b": ["a"], "c": ["b"], "d": ["c", "a"]}))
    nodes = {n.id: n for n in layout.nodes}
    long_edge = next(e for e in layout.edges if (e.src, e.dst) == ("a", "d"))
    assert len(sample(long_edge.d)) > 40
    for x, y in sample(long_edge.d):
        for middle in (nodes["b"], nodes["c"]):
            inside = middle.x <= x <= middle.x + middle.w and middle.y <= y <= middle.y + middle.h
            assert not inside, f"({x}, {y}) runs through {middle.id}"


def test_labels_are_cut_and_empty_dags_have_a_size():
    layout = graph_layout(dag({"x" * 60: []}))
    assert layout.nodes[0].label.endswith("…") and len(layout.nodes[0].label) == 28
    empty = graph_layout(Dag(id="e", tasks={}))
    assert empty.nodes == () and empty.width > 0


def test_gantt_bars_scale_to_the_run_and_running_bars_reach_now():
    spans = [Span("a", 1, "failed", T0, T0 + timedelta(seconds=30)),
             Span("a", 2, "success", T0 + timedelta(seconds=40), T0 + timedelta(seconds=60)),
             Span("b", 1, "running", T0 + timedelta(seconds=60), None)]
    layout = gantt_layout([("a", "success"), ("b", "running")], spans, now=T0 + timedelta(seconds=120))
    a1, a2, b1 = layout.bars
    assert a1.x == layout.label_w and a1.y == a2.y < b1.y
    assert abs((a2.x - a1.x) - 2 * (a1.w * 40 / 30) / 2) < 1  # 40 s after the start
    assert abs(b1.x + b1.w - (layout.label_w + 620)) < 1  # the running bar ends at now
    assert [t.label for t in layout.ticks] == ["0s", "30s", "1m00s", "1m30s", "2m00s"]


def test_durations_read_like_people_write_them():
    assert [format_seconds(s) for s in (0, 0.0042, 0.42, 5, 42, 185, 7800, 270000)] == [
        "0s", "4ms", "420ms", "5s", "42s", "3m05s", "2h10m", "3d3h"]
    assert format_seconds(None) == ""


def test_a_sub_second_run_gets_a_sub_second_axis():
    spans = [Span("a", 1, "success", T0, T0 + timedelta(milliseconds=300))]
    layout = gantt_layout([("a", "success")], spans, now=T0 + timedelta(seconds=5))
    assert layout.bars[0].w > 600  # the bar fills the chart, not 30% of a 1 s axis
    assert [t.label for t in layout.ticks] == ["0s", "50ms", "100ms", "150ms", "200ms", "250ms", "300ms"]


def test_resume_labels_close_together_stack_instead_of_overlapping():
    spans = [Span("a", 1, "failed", T0, T0 + timedelta(seconds=1)), Span("a", 4, "success", T0 + timedelta(seconds=99), T0 + timedelta(seconds=100))]
    marks = [(T0 + timedelta(seconds=s), f"resume {n}") for n, s in enumerate((10, 12, 14, 60, 100), 1)]
    layout = gantt_layout([("a", "success")], spans, now=T0 + timedelta(seconds=100), marks=marks)
    rows = {m.label: m.row for m in layout.marks}
    assert rows == {"resume 1": 0, "resume 2": 1, "resume 3": 2, "resume 4": 0, "resume 5": 0}
    # the last is drawn left of its line (the right edge): it clears resume 4, 40 s = 248 px before it
