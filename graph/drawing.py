"""The compiled graph as a picture: `routegraph graph --png FILE` / `--svg FILE`, notebook 01, docs/graph.png.

Drawn with matplotlib from `graph.get_graph()`'s nodes and edges. Why matplotlib: it works offline
and needs only a wheel from PyPI, which `./scripts/setup` already installs with the dev tools (the
notebooks plot with it). The other renderers need more: LangChain's `draw_mermaid_png` sends the
diagram to mermaid.ink or drives a browser that downloads itself, `draw_png` needs pygraphviz
(compiled against the Graphviz headers), and the `graphviz` package runs `dot`, a system package
(root). Without matplotlib, `DrawingUnavailable` says in one line how to install it.

The layout is a small layered drawing, top to bottom (Sugiyama style): an edge that closes a
cycle is laid out turned around, each node goes to the layer of its longest path from the start,
long edges pass through bend points (edges that end at the same node share theirs, so a fan-in
reads as one trunk), sweeps and swaps order each layer to cut crossings, and each node or bend sits
near its neighbours. Conditional edges (the router's choice) are dashed, fixed edges solid.
`layout` computes the geometry without matplotlib; `figure` draws it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from langchain_core.runnables.graph import Graph

from graph.errors import MissingDependency

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Format = Literal["png", "svg"]
Point = tuple[float, float]

INSTALL_HINT = "drawing the graph needs matplotlib: pip install matplotlib (./scripts/setup installs it)"

# Sizes in inches (the figure's units); the font in points.
FONT_SIZE = 11.0
NODE_HEIGHT = 0.38
NODE_PADDING = 0.36
"""Added to a label's width."""
LAYER_GAP = 0.78
NODE_GAP = 0.34
BEND_GAP = 0.2
"""Between a bend point and its neighbours in a layer."""
LOOP = 0.36
"""How far a node's edge to itself reaches out to the right."""
MARGIN = 0.3
LEGEND = 0.42
ARROW = (0.12, 0.05)
"""Arrowhead length and half-width."""
DPI = 130


class DrawingUnavailable(MissingDependency):
    """matplotlib is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Box:
    """A node: centre, size and label; `kind` is start, end, terminal (its edge goes to the end) or node."""

    id: str
    label: str
    x: float
    y: float
    width: float
    height: float
    kind: str


@dataclass(frozen=True)
class Curve:
    """A piece of an edge: one cubic Bézier curve (start, two control points, end)."""

    points: tuple[Point, Point, Point, Point]
    dashed: bool


@dataclass(frozen=True)
class Arrow:
    tip: Point
    direction: Point
    """Unit vector the arrow points along."""


@dataclass(frozen=True)
class Drawing:
    boxes: list[Box]
    curves: list[Curve]
    arrows: list[Arrow]
    width: float
    height: float


class Slot(NamedTuple):
    """A place in a layer: a node, or a bend point on long edges that end at `node` alike."""

    node: str
    bend: bool = False
    level: int = 0
    back: bool = False
    dashed: bool = False


class Link(NamedTuple):
    """An edge between two adjacent layers; `back` when the edge it belongs to points up."""

    top: Slot
    bottom: Slot
    back: bool
    dashed: bool


def describe(graph: Graph) -> str:
    """The graph's edges as text (`a --> b` fixed, `a -.-> b` the router's): the pictures' metadata."""
    edges = sorted(f"{e.source} {'-.->' if e.conditional else '-->'} {e.target}" for e in graph.edges)
    return "routegraph graph; " + "; ".join(edges)


def estimate_width(label: str) -> float:
    """A label's width in inches, without measuring the font (about 0.6 em a character)."""
    return len(label) * FONT_SIZE * 0.6 / 72


def layout(graph: Graph, measure: Callable[[str], float] = estimate_width) -> Drawing:
    """Where every node, curve and arrowhead goes; `measure` gives a label's width in inches."""
    ids = list(graph.nodes)
    edges = [(e.source, e.target, e.conditional) for e in graph.edges]
    loops = [(source, dashed) for source, target, dashed in edges if source == target]
    laid, order = _acyclic(ids, [e for e in edges if e[0] != e[1]])
    level = _levels(order, laid)
    rows, chains = _rows(order, laid, level)
    # Sorted: the same picture whatever the hash seed.
    links = sorted(
        {Link(a, b, back, dashed) for chain, back, dashed in chains for a, b in itertools.pairwise(chain)}
    )
    rows = _order(rows, links)

    labels = {
        node: {"__start__": "START", "__end__": "END"}.get(node, graph.nodes[node].name) for node in ids
    }
    looped = {source for source, _ in loops}
    width = {
        slot: 0.0 if slot.bend else max(measure(labels[slot.node]) + NODE_PADDING, 0.9)
        for row in rows
        for slot in row
    }
    x = _place(rows, links, width, looped)
    left = min(x[s] - width[s] / 2 for s in x) - MARGIN
    right = max(x[s] + width[s] / 2 + (LOOP if s.node in looped and not s.bend else 0.0) for s in x) + MARGIN
    height = (len(rows) - 1) * LAYER_GAP + NODE_HEIGHT + 2 * MARGIN
    place = {
        slot: (x[slot] - left, height - MARGIN - NODE_HEIGHT / 2 - i * LAYER_GAP)
        for i, row in enumerate(rows)
        for slot in row
    }

    ends = {source for source, target, _ in edges if target == "__end__"}
    boxes = {
        node: Box(
            node,
            labels[node],
            *place[Slot(node)],
            width[Slot(node)],
            NODE_HEIGHT,
            node.strip("_") if node in ("__start__", "__end__") else "terminal" if node in ends else "node",
        )
        for node in ids
    }

    def port(slot: Slot, link: Link, side: Literal["top", "bottom"]) -> Point:
        """Where `link` meets `slot`: a node's links spread along its bottom (or top), in order."""
        if slot.bend:
            return place[slot]
        box = boxes[slot.node]
        mine = sorted(
            (other for other in links if (other.top if side == "bottom" else other.bottom) == slot),
            key=lambda other: (x[other.bottom if side == "bottom" else other.top], other.back, other),
        )
        spread = min(0.16 * (len(mine) - 1), box.width / 2 - 0.2)
        offset = -spread + 2 * spread * mine.index(link) / (len(mine) - 1) if len(mine) > 1 else 0.0
        return (box.x + offset, box.y + (box.height / 2 if side == "top" else -box.height / 2))

    curves: dict[Link, Curve] = {}
    for link in links:
        top, bottom = port(link.top, link, "bottom"), port(link.bottom, link, "top")
        bend = (top[1] - bottom[1]) / 2
        points = (top, (top[0], top[1] - bend), (bottom[0], bottom[1] + bend), bottom)
        curves[link] = Curve(points, link.dashed)
    arrows = set()
    for chain, back, dashed in chains:
        if back:  # the edge points up: its head is at the top of the chain
            arrows.add(Arrow(curves[Link(chain[0], chain[1], back, dashed)].points[0], (0.0, 1.0)))
        else:
            arrows.add(Arrow(curves[Link(chain[-2], chain[-1], back, dashed)].points[3], (0.0, -1.0)))
    loop_curves = []
    for node, dashed in loops:
        box = boxes[node]
        side, mid = box.x + box.width / 2, box.y
        end = (side, mid - 0.1)
        loop_curves.append(
            Curve(((side, mid + 0.1), (side + LOOP, mid + 0.2), (side + LOOP, mid - 0.16), end), dashed)
        )
        norm = (LOOP**2 + 0.06**2) ** 0.5
        arrows.add(Arrow(end, (-LOOP / norm, 0.06 / norm)))
    return Drawing(
        boxes=[boxes[node] for node in ids],
        curves=[*curves.values(), *loop_curves],
        arrows=sorted(arrows, key=lambda a: (a.tip, a.direction)),
        width=right - left,
        height=height,
    )


def _acyclic(
    ids: list[str], edges: list[tuple[str, str, bool]]
) -> tuple[list[tuple[str, str, bool, bool]], list[str]]:
    """Edges as laid out, (top, bottom, points up?, dashed): an edge that closes a cycle on the
    depth-first walk from the start is turned around. Also the nodes in topological order."""
    rank = {node: i for i, node in enumerate(ids)}
    ordered = sorted(edges, key=lambda e: (rank[e[0]], rank[e[1]]))
    on_path: set[str] = set()
    seen: set[str] = set()
    finished: list[str] = []
    laid: list[tuple[str, str, bool, bool]] = []

    def visit(node: str) -> None:
        seen.add(node)
        on_path.add(node)
        for source, target, dashed in ordered:
            if source != node:
                continue
            if target in on_path:
                laid.append((target, source, True, dashed))
                continue
            laid.append((source, target, False, dashed))
            if target not in seen:
                visit(target)
        on_path.discard(node)
        finished.append(node)

    targets = {target for _, target, _ in edges}
    for node in [n for n in ids if n not in targets] + ids:
        if node not in seen:
            visit(node)
    return laid, finished[::-1]


def _levels(order: list[str], laid: list[tuple[str, str, bool, bool]]) -> dict[str, int]:
    """Each node's layer: the length of the longest path to it."""
    level: dict[str, int] = {}
    for node in order:
        level[node] = max((level[top] + 1 for top, bottom, _, _ in laid if bottom == node), default=0)
    return level


def _rows(
    order: list[str], laid: list[tuple[str, str, bool, bool]], level: dict[str, int]
) -> tuple[list[list[Slot]], list[tuple[list[Slot], bool, bool]]]:
    """The layers' slots (nodes, then bends), and each edge as the chain of slots it passes."""
    rows: list[list[Slot]] = [[] for _ in range(max(level.values(), default=0) + 1)]
    for node in order:
        rows[level[node]].append(Slot(node))
    chains = []
    for top, bottom, back, dashed in laid:
        chain = [Slot(top)]
        for depth in range(level[top] + 1, level[bottom]):
            bend = Slot(bottom, bend=True, level=depth, back=back, dashed=dashed)
            if bend not in rows[depth]:
                rows[depth].append(bend)
            chain.append(bend)
        chains.append(([*chain, Slot(bottom)], back, dashed))
    return rows, chains


def _crossings(rows: list[list[Slot]], links: list[Link]) -> int:
    where = {slot: i for row in rows for i, slot in enumerate(row)}
    count = 0
    for row in rows:
        pairs = sorted((where[link.top], where[link.bottom]) for link in links if link.top in row)
        count += sum(1 for p, q in itertools.combinations(pairs, 2) if p[0] < q[0] and p[1] > q[1])
    return count


def _order(rows: list[list[Slot]], links: list[Link]) -> list[list[Slot]]:
    """Each layer ordered by the mean position of its neighbours (down, then up), then neighbours
    swapped while that removes crossings; the best of a few rounds."""
    up = {slot: [link.top for link in links if link.bottom == slot] for row in rows for slot in row}
    down = {slot: [link.bottom for link in links if link.top == slot] for row in rows for slot in row}

    def sort(row: list[Slot], near: dict[Slot, list[Slot]], where: dict[Slot, int]) -> list[Slot]:
        def centre(pair: tuple[int, Slot]) -> float:
            i, slot = pair
            return sum(where[n] for n in near[slot]) / len(near[slot]) if near[slot] else float(i)

        return [slot for _, slot in sorted(enumerate(row), key=centre)]

    best, fewest = [list(row) for row in rows], _crossings(rows, links)
    current = [list(row) for row in rows]
    sweeps = [(i, up) for i in range(1, len(rows))] + [(i, down) for i in range(len(rows) - 2, -1, -1)]
    for _ in range(12):
        for i, near in sweeps:
            where = {slot: j for row in current for j, slot in enumerate(row)}
            current[i] = sort(current[i], near, where)
        count = _crossings(current, links)
        improved = True
        while improved:
            improved = False
            for row in current:
                for j in range(len(row) - 1):
                    row[j], row[j + 1] = row[j + 1], row[j]
                    if (after := _crossings(current, links)) < count:
                        count, improved = after, True
                    else:
                        row[j], row[j + 1] = row[j + 1], row[j]
        if count < fewest:
            best, fewest = [list(row) for row in current], count
    return best


def _place(
    rows: list[list[Slot]], links: list[Link], width: dict[Slot, float], looped: set[str]
) -> dict[Slot, float]:
    """x of every slot: near the mean of its neighbours (those of its own sort, node or bend,
    counting most, so that the main path and the long edges run straight), in order and apart."""
    near: dict[Slot, list[Slot]] = {slot: [] for row in rows for slot in row}
    for link in links:
        near[link.top].append(link.bottom)
        near[link.bottom].append(link.top)

    def gap(a: Slot, b: Slot) -> float:
        space = BEND_GAP if a.bend or b.bend else NODE_GAP
        return width[a] / 2 + width[b] / 2 + space + (LOOP if a.node in looped and not a.bend else 0.0)

    x: dict[Slot, float] = {}
    for row in rows:
        for i, slot in enumerate(row):
            x[slot] = x[row[i - 1]] + gap(row[i - 1], slot) if i else 0.0
    for _ in range(40):
        for row in [*rows, *reversed(rows)]:
            wanted = []
            for slot in row:
                weights = [1.0 if n.bend == slot.bend else 0.15 for n in near[slot]]
                total = sum(w * x[n] for w, n in zip(weights, near[slot], strict=True))
                wanted.append(total / sum(weights) if weights else x[slot])
            gaps = [gap(a, b) for a, b in itertools.pairwise(row)]
            x.update(zip(row, spaced(wanted, gaps), strict=True))
    return x


def spaced(wanted: list[float], gaps: list[float]) -> list[float]:
    """The positions closest to `wanted` (least squares) that keep their order at least `gaps` apart.

    Without the gaps this is an isotonic regression, solved by pooling adjacent violators.
    """
    offsets = [0.0, *itertools.accumulate(gaps)]
    blocks: list[tuple[float, int]] = []  # (sum, count) of pooled values
    for value, offset in zip(wanted, offsets, strict=True):
        total, count = value - offset, 1
        while blocks and blocks[-1][0] / blocks[-1][1] > total / count:
            before, n = blocks.pop()
            total, count = total + before, count + n
        blocks.append((total, count))
    pooled = [total / count for total, count in blocks for _ in range(count)]
    return [value + offset for value, offset in zip(pooled, offsets, strict=True)]


STYLE = {
    "node": ("#eef0ff", "#5b5fc7"),
    "terminal": ("#e9f7ef", "#2e8b57"),
    "start": ("#ffffff", "#888888"),
    "end": ("#ffffff", "#888888"),
}
"""Fill and border per kind of box."""
INK = "#444a5a"
DASHES = (0, (4, 3))


def require() -> None:
    """Raise `DrawingUnavailable` (one line: how to install it) when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DrawingUnavailable(INSTALL_HINT) from None


def figure(graph: Graph) -> Figure:
    """The graph drawn on a matplotlib figure (1 unit = 1 inch); raises `DrawingUnavailable`."""
    require()
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import FancyBboxPatch, PathPatch, Polygon
    from matplotlib.path import Path as CurvePath
    from matplotlib.textpath import TextToPath

    font = FontProperties(family="DejaVu Sans", size=FONT_SIZE)  # shipped with matplotlib
    small = FontProperties(family="DejaVu Sans", size=FONT_SIZE - 1.5)
    text_path = TextToPath()

    def measure(label: str) -> float:
        width, _, _ = text_path.get_text_width_height_descent(label, font, ismath=False)
        return float(width) / 72

    drawing = layout(graph, measure)
    fig = Figure(figsize=(drawing.width, drawing.height + LEGEND))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, drawing.width)
    ax.set_ylim(-LEGEND, drawing.height)
    ax.set_axis_off()

    cubic = [CurvePath.MOVETO, CurvePath.CURVE4, CurvePath.CURVE4, CurvePath.CURVE4]
    for curve in drawing.curves:
        style = DASHES if curve.dashed else "-"
        ax.add_patch(
            PathPatch(
                CurvePath(curve.points, cubic), fill=False, edgecolor=INK, linewidth=1.1, linestyle=style
            )
        )
    length, half = ARROW
    for arrow in drawing.arrows:
        (tx, ty), (dx, dy) = arrow.tip, arrow.direction
        bx, by = tx - dx * length, ty - dy * length
        corners = [(tx, ty), (bx - dy * half, by + dx * half), (bx + dy * half, by - dx * half)]
        ax.add_patch(Polygon(corners, closed=True, facecolor=INK, edgecolor=INK, linewidth=0.6, zorder=3))
    for box in drawing.boxes:
        fill, border = STYLE[box.kind]
        pill = box.kind in ("start", "end")
        pad = box.height / 2 if pill else 0.08
        ax.add_patch(
            FancyBboxPatch(
                (box.x - box.width / 2 + pad, box.y - box.height / 2 + pad),
                box.width - 2 * pad,
                box.height - 2 * pad,
                boxstyle=f"round,pad={pad}",
                facecolor=fill,
                edgecolor=border,
                linewidth=1.3,
                zorder=4,
            )
        )
        ax.text(
            box.x,
            box.y,
            box.label,
            ha="center",
            va="center_baseline",
            fontproperties=font,
            color="#1f2330",
            style="italic" if pill else "normal",
            zorder=5,
        )
    y = -LEGEND / 2 + 0.05
    for i, (dashed, text) in enumerate(((False, "always"), (True, "the router's choice"))):
        at = MARGIN + i * 1.25
        ax.plot([at, at + 0.4], [y, y], color=INK, linewidth=1.1, linestyle=DASHES if dashed else "-")
        ax.text(at + 0.48, y, text, va="center_baseline", fontproperties=small, color=INK)
    return fig


def picture(graph: Graph, fmt: Format = "png") -> bytes:
    """The drawing as PNG or SVG bytes, with `describe(graph)` as its Description metadata and
    nothing that changes from run to run (no date, no software version)."""
    import matplotlib

    fig = figure(graph)
    metadata: dict[str, str | None] = {"Description": describe(graph)}
    metadata["Software" if fmt == "png" else "Date"] = None
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "routegraph", "svg.fonttype": "path"}):
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata, facecolor="white")
    return buffer.getvalue()


def write(graph: Graph, path: Path | str, fmt: Format | None = None) -> Path:
    """Draw `graph` to `path`: PNG or SVG by `fmt`, else by the file's suffix (PNG unless .svg)."""
    path = Path(path)
    data = picture(graph, fmt or ("svg" if path.suffix.lower() == ".svg" else "png"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
