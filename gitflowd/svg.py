"""Geometry for the site's inline SVG: the task graph and the Gantt chart.

Flow: `graph_layout(dag)` layers tasks left to right (a task sits one layer right of its
deepest dependency), orders each layer by the mean position of its neighbours to cut
crossings, then places boxes and draws each edge as a cubic curve ending at an arrow.
`gantt_layout(rows, now)` maps attempt start/end times onto a time axis with round ticks.

Only numbers come out of here; the templates turn them into markup, so escaping stays in
one place (Jinja's autoescape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gitflowd.dag import Dag

NODE_H = 30
V_GAP = 14
H_GAP = 56
MARGIN = 10
CHAR_W = 7.0  # average width of a 12px sans-serif character
MAX_LABEL = 28


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    x: float
    y: float
    w: float
    h: float = NODE_H


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    d: str  # SVG path data


@dataclass(frozen=True)
class GraphLayout:
    width: float
    height: float
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def short_label(text: str, limit: int = MAX_LABEL) -> str:
    """Long ids are cut with an ellipsis; the full id goes into a <title>."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _layers(dag: Dag) -> list[list[str]]:
    depth: dict[str, int] = {}
    for task_id in dag.topological_order():
        deps = dag.tasks[task_id].deps
        depth[task_id] = 1 + max((depth[d] for d in deps), default=-1)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for task_id in dag.tasks:  # file order inside a layer to start with
        layers[depth[task_id]].append(task_id)
    return layers


def _order_layers(dag: Dag, layers: list[list[str]]) -> None:
    """Two barycentre sweeps (down, then up) so that edges cross less."""
    children = dag.downstream_map()
    parents = {t: list(dag.tasks[t].deps) for t in dag.tasks}
    for sweep, neighbours in ((range(1, len(layers)), parents), (range(len(layers) - 2, -1, -1), children)):
        for i in sweep:
            ref = layers[i - 1] if neighbours is parents else layers[i + 1]
            pos = {t: n for n, t in enumerate(ref)}
            keys = {t: _barycentre(neighbours[t], pos, n) for n, t in enumerate(layers[i])}
            layers[i].sort(key=keys.__getitem__)


def _barycentre(neighbours: Sequence[str], pos: dict[str, int], fallback: int) -> float:
    known = [pos[n] for n in neighbours if n in pos]
    return sum(known) / len(known) if known else float(fallback)


def graph_layout(dag: Dag) -> GraphLayout:
    """Boxes and arrows for `dag`, layered left to right."""
    layers = _layers(dag)
    _order_layers(dag, layers)
    tallest = max((len(layer) for layer in layers), default=0)
    height = tallest * NODE_H + max(tallest - 1, 0) * V_GAP + 2 * MARGIN
    nodes: dict[str, Node] = {}
    x = float(MARGIN)
    for layer in layers:
        w = max(CHAR_W * len(short_label(t)) + 34 for t in layer)
        top = (height - (len(layer) * NODE_H + (len(layer) - 1) * V_GAP)) / 2
        for n, task_id in enumerate(layer):
            nodes[task_id] = Node(task_id, short_label(task_id), x, top + n * (NODE_H + V_GAP), w)
        x += w + H_GAP
    edges = tuple(_edge(nodes[d], nodes[t]) for t in dag.tasks for d in dag.tasks[t].deps)
    width = x - H_GAP + MARGIN if layers else 2 * MARGIN
    return GraphLayout(width, height, tuple(nodes[t] for t in dag.tasks), edges)


def _edge(src: Node, dst: Node) -> Edge:
    x1, y1 = src.x + src.w, src.y + src.h / 2
    x2, y2 = dst.x - 4, dst.y + dst.h / 2  # stop short: the arrow head covers the gap
    mid = (x1 + x2) / 2
    return Edge(src.id, dst.id, f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}")


# -- Gantt ---------------------------------------------------------------------------

LABEL_W = 170
CHART_W = 620
ROW_H = 24
AXIS_H = 24
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class Span:
    """One attempt of one task, in the caller's terms plus where to draw it."""

    task: str
    attempt: int
    state: str
    start: datetime
    end: datetime | None  # None while running
    href: str = ""


@dataclass(frozen=True)
class Bar:
    span: Span
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class GanttRow:
    task: str
    label: str
    state: str
    y: float


@dataclass(frozen=True)
class GanttLayout:
    width: float
    height: float
    label_w: float
    rows: tuple[GanttRow, ...]
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]


def gantt_layout(tasks: Sequence[tuple[str, str]], spans: Sequence[Span], now: datetime) -> GanttLayout:
    """`tasks` are (task id, state) rows in display order; `spans` their attempts."""
    starts = [s.start for s in spans]
    t0 = min(starts) if starts else now
    t1 = max([s.end or now for s in spans], default=t0)
    total = max((t1 - t0).total_seconds(), 1.0)
    scale = CHART_W / total
    row_y = {task: AXIS_H + i * ROW_H for i, (task, _) in enumerate(tasks)}
    rows = tuple(GanttRow(t, short_label(t, 24), state, row_y[t]) for t, state in tasks)
    bars = tuple(
        Bar(s, round(LABEL_W + (s.start - t0).total_seconds() * scale, 1), row_y[s.task] + 5,
            round(max(((s.end or now) - s.start).total_seconds() * scale, 2.0), 1), ROW_H - 10)
        for s in spans if s.task in row_y
    )
    ticks = tuple(Tick(round(LABEL_W + sec * scale, 1), format_seconds(sec)) for sec in _tick_seconds(total))
    height = AXIS_H + len(tasks) * ROW_H + 6
    return GanttLayout(LABEL_W + CHART_W + 40, height, LABEL_W, rows, bars, ticks)


def _tick_seconds(total: float) -> list[int]:
    step = next((s for s in TICK_STEPS if total / s <= 6), TICK_STEPS[-1])
    return list(range(0, int(total) + 1, step))


def format_seconds(seconds: float | None) -> str:
    """Durations as people read them: 0.4s, 42s, 3m05s, 2h10m, 3d4h."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s".replace(".0s", "s")
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"
