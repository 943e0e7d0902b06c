"""Geometry for the site's inline SVG: the task graph and the Gantt chart.

Flow: `graph_layout(dag)` layers tasks left to right (a task sits one layer right of its
deepest dependency), gives every long edge a virtual slot in each layer it crosses, orders
each layer by the mean position of its neighbours to cut crossings, then places boxes and
draws each edge as cubic curves through its slots, ending at an arrow.
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
VIRTUAL_H = 8  # the slot a long edge takes in a layer it crosses
H_GAP = 56
MARGIN = 10
CHAR_W = 7.6  # a 12px sans-serif character, generously (ids of a-z and _ measure 7.0-7.5 in DejaVu Sans)
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


def _layers(dag: Dag) -> tuple[list[list[str]], dict[str, list[str]], dict[tuple[str, str], list[str]]]:
    """Tasks by depth, plus one virtual node per layer that a long edge crosses (Sugiyama).

    Returns the layers, the upstream neighbours of every node (virtual ones included) and,
    per edge, the virtual nodes it passes through, so that long edges get their own slots
    instead of running across the boxes in between.
    """
    depth: dict[str, int] = {}
    for task_id in dag.topological_order():
        depth[task_id] = 1 + max((depth[d] for d in dag.tasks[task_id].deps), default=-1)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for task_id in dag.tasks:  # file order inside a layer to start with
        layers[depth[task_id]].append(task_id)
    parents: dict[str, list[str]] = {t: [] for t in dag.tasks}
    routes: dict[tuple[str, str], list[str]] = {}
    for task_id, task in dag.tasks.items():
        for dep in task.deps:
            previous, route = dep, []
            for level in range(depth[dep] + 1, depth[task_id]):
                virtual = f"\0{dep}\0{task_id}\0{level}"
                layers[level].append(virtual)
                parents[virtual] = [previous]
                route.append(virtual)
                previous = virtual
            parents[task_id].append(previous)
            routes[(dep, task_id)] = route
    return layers, parents, routes


def _order_layers(layers: list[list[str]], parents: dict[str, list[str]]) -> None:
    """Barycentre sweeps (down, up, down) so that edges cross less."""
    children: dict[str, list[str]] = {n: [] for n in parents}
    for node, ups in parents.items():
        for up in ups:
            children[up].append(node)
    down, up = range(1, len(layers)), range(len(layers) - 2, -1, -1)
    for sweep, neighbours, step in ((down, parents, -1), (up, children, 1), (down, parents, -1)):
        for i in sweep:
            pos = {t: n for n, t in enumerate(layers[i + step])}
            keys = {t: _barycentre(neighbours[t], pos, n) for n, t in enumerate(layers[i])}
            layers[i].sort(key=keys.__getitem__)


def _barycentre(neighbours: Sequence[str], pos: dict[str, int], fallback: int) -> float:
    known = [pos[n] for n in neighbours if n in pos]
    return sum(known) / len(known) if known else float(fallback)


def _height(node: str) -> float:
    return VIRTUAL_H if node.startswith("\0") else NODE_H


def graph_layout(dag: Dag) -> GraphLayout:
    """Boxes and arrows for `dag`, layered left to right."""
    layers, parents, routes = _layers(dag)
    _order_layers(layers, parents)
    stacks = [sum(_height(n) for n in layer) + (len(layer) - 1) * V_GAP for layer in layers]
    height = max(stacks, default=0) + 2 * MARGIN
    nodes: dict[str, Node] = {}
    x = float(MARGIN)
    for layer, stack in zip(layers, stacks):
        w = max(CHAR_W * len(short_label(t)) + 34 for t in layer if not t.startswith("\0"))
        y = (height - stack) / 2
        for node in layer:
            nodes[node] = Node(node, short_label(node), x, y, w, _height(node))
            y += _height(node) + V_GAP
        x += w + H_GAP
    edges = tuple(_edge([nodes[d], *(nodes[v] for v in routes[(d, t)]), nodes[t]])
                  for t in dag.tasks for d in dag.tasks[t].deps)
    width = x - H_GAP + MARGIN if layers else 2 * MARGIN
    return GraphLayout(width, height, tuple(nodes[t] for t in dag.tasks), edges)


def _edge(path: list[Node]) -> Edge:
    """A smooth curve from box to box, straight through each virtual slot on the way."""
    src, dst = path[0], path[-1]
    x, y = src.x + src.w, src.y + src.h / 2
    d = [f"M{x:.1f},{y:.1f}"]
    for node in path[1:]:
        nx, ny = (node.x - 4, node.y + node.h / 2) if node is dst else (node.x, node.y + node.h / 2)
        mid = (x + nx) / 2
        d.append(f"C{mid:.1f},{y:.1f} {mid:.1f},{ny:.1f} {nx:.1f},{ny:.1f}")
        x, y = (node.x + node.w, ny)
        if node is not dst:
            d.append(f"L{x:.1f},{y:.1f}")
    return Edge(src.id, dst.id, " ".join(d))


# -- Gantt ---------------------------------------------------------------------------

GANTT_LABEL = 30  # characters of a task id on the Gantt chart (the full id is in its <title>)
MIN_LABEL_W = 80
CHART_W = 620
ROW_H = 24
AXIS_H = 24
TICK_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class Span:
    """One attempt of one task, in the caller's terms plus where to draw it."""

    task: str
    attempt: int
    state: str
    start: datetime
    end: datetime | None  # None while running
    href: str = ""
    old: bool = False  # an earlier attempt of a task that was tried again


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
    row: int = 0  # a resume mark's label line, counted up from the bottom (labels close together stack)


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
    marks: tuple[Tick, ...] = ()  # moments worth a line across the chart (resumes)


def gantt_layout(tasks: Sequence[tuple[str, str]], spans: Sequence[Span], now: datetime,
                 marks: Sequence[tuple[datetime, str]] = ()) -> GanttLayout:
    """`tasks` are (task id, state) rows in display order; `spans` their attempts."""
    starts = [s.start for s in spans]
    t0 = min(starts) if starts else now
    t1 = max([s.end or now for s in spans], default=t0)
    total = max((t1 - t0).total_seconds(), 0.01)  # sub-second runs get a sub-second axis
    scale = CHART_W / total
    row_y = {task: AXIS_H + i * ROW_H for i, (task, _) in enumerate(tasks)}
    rows = tuple(GanttRow(t, short_label(t, GANTT_LABEL), state, row_y[t]) for t, state in tasks)
    # a label ends left of its state's glyph box (28 px with gaps) and must fit, or its first letters are cut off
    label_w = round(max(MIN_LABEL_W, max((len(r.label) for r in rows), default=0) * CHAR_W + 34))
    bars = tuple(
        Bar(s, round(label_w + (s.start - t0).total_seconds() * scale, 1), row_y[s.task] + 5,
            round(max(((s.end or now) - s.start).total_seconds() * scale, 2.0), 1), ROW_H - 10)
        for s in spans if s.task in row_y
    )
    ticks = tuple(Tick(round(label_w + sec * scale, 1), format_seconds(sec)) for sec in _tick_seconds(total))
    width = label_w + CHART_W + 40
    lines = _stacked([round(label_w + (when - t0).total_seconds() * scale, 1) for when, _ in marks if t0 <= when <= t1],
                     [label for when, label in marks if t0 <= when <= t1], width)
    height = AXIS_H + len(tasks) * ROW_H + 6
    return GanttLayout(width, height, label_w, rows, bars, ticks, lines)


MARK_LABEL_W = 60  # room a "resume N" label takes, right of its line (left of it at the right edge)


def _stacked(xs: Sequence[float], labels: Sequence[str], width: float) -> tuple[Tick, ...]:
    """Resume marks close together: each label goes up a line until it clears the ones before."""
    ends: list[float] = []  # per line, where its last label ends
    marks = []
    for x, label in sorted(zip(xs, labels)):
        left = x - MARK_LABEL_W if x + MARK_LABEL_W > width else x  # the template's anchoring
        row = next((i for i, end in enumerate(ends) if left > end), len(ends))
        ends[row:row + 1] = [left + MARK_LABEL_W]
        marks.append(Tick(x, label, row))
    return tuple(marks)


def _tick_seconds(total: float) -> list[float]:
    step = next((s for s in TICK_STEPS if total / s <= 6), TICK_STEPS[-1])
    return [n * step for n in range(int(total / step + 1e-9) + 1)]


def format_seconds(seconds: float | None) -> str:
    """Durations as people read them: 0.4s, 42s, 3m05s, 2h10m, 3d4h."""
    if seconds is None:
        return ""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
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
