"""The architecture and batch-lifecycle pictures, drawn from one declarative source.

``docs/architecture.drawio`` and ``docs/batch-states.drawio`` are for editing in
draw.io; the ``.svg`` next to each is what the README shows. This script writes
all four from the data in :func:`architecture` and :func:`batch_states`, with the
standard library only (no graphviz, no draw.io export step), so that a picture
and its editable source can never drift apart, and CI can tell with ``--check``.

The layout is explicit: every lane and box has its position in the source, and
every bent edge its corners. Automatic layout would move boxes around whenever a
label changes, which makes the pictures churn and hard to review; explicit
positions keep them stable, and :func:`check_layout` refuses a layout whose boxes
overlap, whose text does not fit, or whose edges run through boxes or labels, so
an edit cannot silently produce a broken picture. Edges reach draw.io with fixed
exit and entry points and their corners as waypoints (no edge style), so draw.io
draws exactly the polyline of the SVG, with the label at the same place.

Usage::

    python scripts/diagrams.py             # rewrite the four files under docs/
    python scripts/diagrams.py --check     # exit 1 naming the stale files
    python scripts/diagrams.py --out DIR   # write (or --check) another folder
"""

from __future__ import annotations

import argparse
import html
import itertools
import math
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"

Point = tuple[float, float]
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1

FONT = "Helvetica, Arial, sans-serif"
FONT_SIZE = 12
EDGE_FONT_SIZE = 11
LINE_H = 15
EDGE_LINE_H = 13
PAD = 8
LANE_HEADER = 30
# Conservative text widths (px per character): DejaVu Sans, wider than Helvetica,
# averages 6.0 (bold 6.8) at 12 px, so text that passes here fits in any viewer.
CHAR_W = 7.0
BOLD_CHAR_W = 7.5
EDGE_CHAR_W = 6.4
EDGE_COLOUR = "#555555"

PALETTE: dict[str, tuple[str, str]] = {  # fill, stroke
    "lane": ("#fcfcfc", "#999999"),
    "lane-header": ("#f2f2f2", "#999999"),
    "orchestration": ("#e1d5e7", "#9673a6"),
    "job": ("#dae8fc", "#6c8ebf"),
    "port": ("#fff2cc", "#d6b656"),
    "source": ("#f5f5f5", "#666666"),
    "product": ("#d5e8d4", "#82b366"),
    "store": ("#ffe6cc", "#d79b00"),
    "note": ("#ffffff", "#999999"),
    "discovered": ("#dae8fc", "#6c8ebf"),
    "rejected": ("#f8cecc", "#b85450"),
    "preprocessed": ("#fff2cc", "#d6b656"),
    "inferred": ("#ffe6cc", "#d79b00"),
    "exported": ("#d5e8d4", "#82b366"),
    "start": ("#333333", "#333333"),
}


# --- the model -------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A vertex: a lane (container), a box with a bold title and lines, a note or a text.

    Coordinates are absolute on the page; the draw.io writer makes them
    relative to the enclosing lane, as draw.io stores children.
    """

    id: str
    title: str
    lines: tuple[str, ...]
    x: float
    y: float
    w: float
    h: float
    kind: str = "node"  # lane | node | note | text | start
    palette: str = "job"
    lane: str | None = None

    @property
    def right(self) -> float:
        """The x of the right border."""
        return self.x + self.w

    @property
    def bottom(self) -> float:
        """The y of the bottom border."""
        return self.y + self.h

    @property
    def rect(self) -> Rect:
        """The box's area."""
        return (self.x, self.y, self.right, self.bottom)

    def text_lines(self) -> list[str]:
        """Every line of text the box shows, title first (an empty title left out)."""
        return [line for line in (self.title, *self.lines) if line]


@dataclass(frozen=True)
class Link:
    """An edge as declared: its ends by id, its corners, and where its label sits.

    Without ``via`` the two boxes must face each other (overlap in x or in y)
    and the edge is one straight segment through the middle of the overlap;
    with ``via`` each end leaves its box straight towards the nearest corner.
    """

    source: str
    target: str
    label: tuple[str, ...] = ()
    via: tuple[Point, ...] = ()
    label_at: float = 0.5  # fraction of the path's length
    label_px: float | None = None  # or px along the path from the source; wins
    dashed: bool = False
    arrow: bool = True


@dataclass(frozen=True)
class Edge:
    """A routed edge: the polyline from a point of the source's border to the target's."""

    id: str
    link: Link
    points: tuple[Point, ...]

    @property
    def label_fraction(self) -> float:
        """How far along the path the label sits, as a fraction of its length."""
        if self.link.label_px is None:
            return self.link.label_at
        return self.link.label_px / sum(math.dist(a, b) for a, b in itertools.pairwise(self.points))

    @property
    def label_point(self) -> Point:
        """Where the label is centred, on the path (draw.io puts it there too)."""
        return point_along(self.points, self.label_fraction)


@dataclass(frozen=True)
class Diagram:
    """One picture: its file name, page title and size, vertices and routed edges."""

    name: str
    title: str
    size: Point
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]


def lane(lane_id: str, title: str, *, at: Point, size: Point) -> Box:
    """A swimlane: a titled container whose title runs up its left header."""
    return Box(lane_id, title, (), at[0], at[1], size[0], size[1], kind="lane", palette="lane")


def node(
    node_id: str,
    title: str,
    *lines: str,
    at: Point,
    size: Point,
    lane_id: str | None = None,
    palette: str = "job",
    kind: str = "node",
) -> Box:
    """A box with a bold title and plain lines, its top left at ``at``."""
    return Box(node_id, title, lines, at[0], at[1], size[0], size[1], kind, palette, lane_id)


def link(
    source: str,
    target: str,
    *label: str,
    via: tuple[Point, ...] = (),
    label_at: float = 0.5,
    label_px: float | None = None,
    dashed: bool = False,
    arrow: bool = True,
) -> Link:
    """An edge declaration; ``label`` lines are stacked (keep them short)."""
    return Link(source, target, label, via, label_at, label_px, dashed, arrow)


def diagram(name: str, title: str, size: Point, boxes: list[Box], links: list[Link]) -> Diagram:
    """The picture with its edges routed."""
    return Diagram(name, title, size, tuple(boxes), route(links, boxes))


# --- routing ---------------------------------------------------------------------------


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float | None:
    """The middle of the common part of two ranges, if they have one."""
    low, high = max(a0, b0), min(a1, b1)
    return (low + high) / 2 if high > low else None


def _toward(box: Box, corner: Point) -> Point:
    """Where a straight horizontal or vertical segment from ``box`` to ``corner`` leaves it."""
    cx, cy = corner
    if box.x < cx < box.right:
        return (cx, box.bottom if cy > box.bottom else box.y)
    if box.y < cy < box.bottom:
        return (box.right if cx > box.right else box.x, cy)
    raise ValueError(f"{box.id}: corner {corner} is not straight above, below or beside it")


def _straight(source: Box, target: Box) -> tuple[Point, Point]:
    """The one straight segment between two facing boxes, through their common middle."""
    x = _overlap(source.x, source.right, target.x, target.right)
    if x is not None:
        below = target.y >= source.bottom
        return (x, source.bottom if below else source.y), (x, target.y if below else target.bottom)
    y = _overlap(source.y, source.bottom, target.y, target.bottom)
    if y is not None:
        after = target.x >= source.right
        return (source.right if after else source.x, y), (target.x if after else target.right, y)
    raise ValueError(f"{source.id} -> {target.id}: the boxes do not face each other; give via=")


def route(links: Sequence[Link], boxes: Sequence[Box]) -> tuple[Edge, ...]:
    """Every link as a polyline, with an id made of its ends (numbered when repeated)."""
    by_id = {b.id: b for b in boxes}
    edges = []
    seen: dict[str, int] = {}
    for item in links:
        source, target = by_id[item.source], by_id[item.target]
        if item.via:
            ends = (_toward(source, item.via[0]), _toward(target, item.via[-1]))
        else:
            ends = _straight(source, target)
        base = f"{item.source}--{item.target}"
        seen[base] = seen.get(base, 0) + 1
        edge_id = base if seen[base] == 1 else f"{base}-{seen[base]}"
        edges.append(Edge(edge_id, item, (ends[0], *item.via, ends[1])))
    return tuple(edges)


def point_along(points: Sequence[Point], fraction: float) -> Point:
    """The point ``fraction`` of the way along a polyline."""
    left = sum(math.dist(a, b) for a, b in itertools.pairwise(points)) * fraction
    for a, b in itertools.pairwise(points):
        length = math.dist(a, b)
        if length > 0 and left <= length:
            t = left / length
            return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
        left -= length
    return points[-1]


# --- checks ----------------------------------------------------------------------------


def label_rect(edge: Edge) -> Rect | None:
    """The area an edge's label covers with its white background, if it has a label."""
    if not edge.link.label:
        return None
    cx, cy = edge.label_point
    w = max(len(line) for line in edge.link.label) * EDGE_CHAR_W + 6
    h = len(edge.link.label) * EDGE_LINE_H + 4
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def head_rect(edge: Edge) -> Rect:
    """The area of an edge's arrowhead: its last 10 px, 5 px to each side."""
    (ax, ay), (bx, by) = edge.points[-2], edge.points[-1]
    length = math.dist((ax, ay), (bx, by)) or 1.0
    back = (bx - (bx - ax) * 10 / length, by - (by - ay) * 10 / length)
    (x0, x1), (y0, y1) = sorted((back[0], bx)), sorted((back[1], by))
    return (x0 - 5, y0, x1 + 5, y1) if x0 == x1 else (x0, y0 - 5, x1, y1 + 5)


def _intersects(a: Rect, b: Rect, margin: float = 0.0) -> bool:
    return (
        a[0] < b[2] + margin
        and b[0] < a[2] + margin
        and a[1] < b[3] + margin
        and b[1] < a[3] + margin
    )


def _inside(inner: Rect, outer: Rect) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )


def _on_border(box: Box, p: Point) -> bool:
    x, y = p
    on_side = math.isclose(x, box.x) or math.isclose(x, box.right)
    on_top = math.isclose(y, box.y) or math.isclose(y, box.bottom)
    return (on_side and box.y <= y <= box.bottom) or (on_top and box.x <= x <= box.right)


def _text_problems(box: Box) -> list[str]:
    if box.kind == "lane":
        need = len(box.title) * BOLD_CHAR_W + 2 * PAD
        return [f"{box.id}: its title needs {need:.0f} px of height"] if need > box.h else []
    problems = []
    room = box.w - 2 * PAD - (4 if box.kind == "note" else 0)
    for i, line in enumerate(box.text_lines()):
        need = len(line) * (BOLD_CHAR_W if i == 0 and box.title else CHAR_W)
        if need > room:
            problems.append(f"{box.id}: {line!r} needs {need:.0f} px, has {room:.0f}")
    if len(box.text_lines()) * LINE_H + (PAD if box.kind == "text" else 2 * PAD) > box.h:
        problems.append(f"{box.id}: {len(box.text_lines())} lines do not fit its height")
    return problems


def _box_problems(diagram: Diagram) -> list[str]:
    by_id = {b.id: b for b in diagram.boxes}
    problems = []
    for box in diagram.boxes:
        problems += _text_problems(box)
        if not _inside(box.rect, (0, 0, *diagram.size)):
            problems.append(f"{box.id}: outside the page")
        if box.lane is not None:
            parent = by_id[box.lane]
            body = (
                parent.x + LANE_HEADER + 10,
                parent.y + 10,
                parent.right - 10,
                parent.bottom - 10,
            )
            if not _inside(box.rect, body):
                problems.append(f"{box.id}: not inside the body of {box.lane}")
    for kind_is_lane in (True, False):
        group = [b for b in diagram.boxes if (b.kind == "lane") == kind_is_lane]
        for a, b in itertools.combinations(group, 2):
            if _intersects(a.rect, b.rect, 10):
                problems.append(f"{a.id} and {b.id} overlap or are closer than 10 px")
    return problems


def _edge_problems(diagram: Diagram) -> list[str]:
    by_id = {b.id: b for b in diagram.boxes}
    nodes = [b for b in diagram.boxes if b.kind != "lane"]
    labels = {e.id: r for e in diagram.edges if (r := label_rect(e)) is not None}
    problems = []
    for edge in diagram.edges:
        ends = (by_id[edge.link.source], by_id[edge.link.target])
        if not (_on_border(ends[0], edge.points[0]) and _on_border(ends[1], edge.points[-1])):
            problems.append(f"{edge.id}: an end is not on its box's border")
        for a, b in itertools.pairwise(edge.points):
            if not (math.isclose(a[0], b[0]) or math.isclose(a[1], b[1])):
                problems.append(f"{edge.id}: segment {a} -> {b} is neither horizontal nor vertical")
            segment = (min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))
            for other in nodes:
                inner = (other.x + 1, other.y + 1, other.right - 1, other.bottom - 1)
                if other not in ends and _intersects(segment, inner):
                    problems.append(f"{edge.id}: runs through {other.id}")
            for label_id, rect in labels.items():
                if label_id != edge.id and _intersects(segment, rect):
                    problems.append(f"{edge.id}: crosses the label of {label_id}")
    return problems


def _label_problems(diagram: Diagram) -> list[str]:
    nodes = [b for b in diagram.boxes if b.kind != "lane"]
    labels = {e.id: r for e in diagram.edges if (r := label_rect(e)) is not None}
    heads = {e.id: head_rect(e) for e in diagram.edges if e.link.arrow}
    problems = []
    for label_id, rect in labels.items():
        problems += [
            f"{label_id}: its label covers {n.id}" for n in nodes if _intersects(rect, n.rect, 2)
        ]
        problems += [
            f"{label_id}: its label covers the arrowhead of {edge_id}"
            for edge_id, head in heads.items()
            if _intersects(head, rect)
        ]
    for (a_id, a), (b_id, b) in itertools.combinations(labels.items(), 2):
        if _intersects(a, b, 2):
            problems.append(f"the labels of {a_id} and {b_id} overlap")
    return problems


def check_layout(diagram: Diagram) -> list[str]:
    """Everything that would make the picture unreadable, one line each (empty: fine).

    Checked: boxes on the page, inside their lane's body and clear of each
    other; text that fits its box; edges that start and end on their boxes'
    borders, run in horizontal and vertical segments and pass through no other
    box; labels clear of boxes, arrowheads, other edges and each other.
    """
    ids = [b.id for b in diagram.boxes] + [e.id for e in diagram.edges]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    return [
        *(f"duplicate id {i}" for i in duplicates),
        *_box_problems(diagram),
        *_edge_problems(diagram),
        *_label_problems(diagram),
    ]


# --- draw.io ---------------------------------------------------------------------------


def num(value: float) -> str:
    """A number as text: at most four decimals, no trailing zeros, never ``-0``."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# draw.io styles: fixed exit and entry points and no edge style make draw.io draw
# exactly the polyline of the SVG (its corners are the edge's waypoints).
LANE_STYLE = (
    "swimlane;horizontal=0;startSize={header};html=1;collapsible=0;fillColor={head};"
    "swimlaneFillColor={fill};strokeColor={stroke};fontStyle=1;fontSize={size};"
)
BOX_STYLE = (
    "rounded=1;arcSize=8;whiteSpace=wrap;html=1;fillColor={fill};strokeColor={stroke};"
    "fontSize={size};verticalAlign=middle;"
)
NOTE_STYLE = BOX_STYLE + "shape=note;size=12;align=left;spacingLeft={pad};"
TEXT_STYLE = (
    "text;html=1;strokeColor=none;fillColor=none;align=left;verticalAlign=middle;"
    "whiteSpace=wrap;spacingLeft={pad};fontSize={size};"
)
START_STYLE = "ellipse;html=1;fillColor={fill};strokeColor={stroke};"
EDGE_STYLE = (
    "html=1;rounded=0;endArrow={arrow};endFill=1;exitX={exit_x};exitY={exit_y};exitDx=0;"
    "exitDy=0;entryX={entry_x};entryY={entry_y};entryDx=0;entryDy=0;strokeColor={colour};"
    "fontSize={size};labelBackgroundColor=#ffffff;{dashed}"
)
MODEL = {"dx": "0", "dy": "0", "grid": "1", "gridSize": "10", "page": "1", "pageScale": "1"}


def _html_value(box: Box) -> str:
    escape = lambda text: html.escape(text, quote=False)  # noqa: E731
    if box.kind == "lane":
        return escape(box.title)
    parts = [f"<b>{escape(box.title)}</b>"] if box.title else []
    return "<br>".join(parts + [escape(line) for line in box.lines])


def _vertex_style(box: Box) -> str:
    fill, stroke = PALETTE[box.palette]
    template = {"lane": LANE_STYLE, "note": NOTE_STYLE, "text": TEXT_STYLE, "start": START_STYLE}
    return template.get(box.kind, BOX_STYLE).format(
        header=LANE_HEADER,
        head=PALETTE["lane-header"][0],
        fill=fill,
        stroke=stroke,
        size=FONT_SIZE,
        pad=PAD + (4 if box.kind == "note" else 0),
    )


def _edge_style(edge: Edge, source: Box, target: Box) -> str:
    (sx, sy), (tx, ty) = edge.points[0], edge.points[-1]
    return EDGE_STYLE.format(
        arrow="block" if edge.link.arrow else "none",
        exit_x=num((sx - source.x) / source.w),
        exit_y=num((sy - source.y) / source.h),
        entry_x=num((tx - target.x) / target.w),
        entry_y=num((ty - target.y) / target.h),
        colour=EDGE_COLOUR,
        size=EDGE_FONT_SIZE,
        dashed="dashed=1;" if edge.link.dashed else "",
    )


def to_drawio(diagram: Diagram) -> str:
    """The diagram as an uncompressed draw.io file (mxfile > diagram > mxGraphModel).

    Lanes come first so that every child follows its parent; edges belong to
    the page's default layer (id ``1``), their waypoints in page coordinates.
    """
    width, height = diagram.size
    mxfile = ET.Element("mxfile", host="fleet-etl scripts/diagrams.py", compressed="false")
    page = ET.SubElement(mxfile, "diagram", id=diagram.name, name=diagram.title)
    size = {"pageWidth": num(width), "pageHeight": num(height)}
    model = ET.SubElement(page, "mxGraphModel", {**MODEL, **size})
    root = ET.SubElement(model, "root")
    ET.SubElement(root, "mxCell", id="0")
    ET.SubElement(root, "mxCell", id="1", parent="0")
    by_id = {b.id: b for b in diagram.boxes}
    for box in sorted(diagram.boxes, key=lambda b: b.kind != "lane"):
        parent = by_id[box.lane] if box.lane else None
        cell = ET.SubElement(
            root,
            "mxCell",
            id=box.id,
            value=_html_value(box),
            style=_vertex_style(box),
            vertex="1",
            parent=box.lane or "1",
        )
        ET.SubElement(
            cell,
            "mxGeometry",
            {
                "x": num(box.x - (parent.x if parent else 0)),
                "y": num(box.y - (parent.y if parent else 0)),
                "width": num(box.w),
                "height": num(box.h),
                "as": "geometry",
            },
        )
    for edge in diagram.edges:
        source, target = by_id[edge.link.source], by_id[edge.link.target]
        value = "<br>".join(html.escape(line, quote=False) for line in edge.link.label)
        cell = ET.SubElement(
            root,
            "mxCell",
            id=edge.id,
            value=value,
            style=_edge_style(edge, source, target),
            edge="1",
            parent="1",
            source=source.id,
            target=target.id,
        )
        placement = {"relative": "1", "as": "geometry"}
        if edge.link.label and edge.label_fraction != 0.5:  # draw.io's x runs -1..1
            placement = {"x": num(2 * edge.label_fraction - 1), **placement}
        geometry = ET.SubElement(cell, "mxGeometry", placement)
        if len(edge.points) > 2:
            corners = ET.SubElement(geometry, "Array", {"as": "points"})
            for x, y in edge.points[1:-1]:
                ET.SubElement(corners, "mxPoint", x=num(x), y=num(y))
    ET.indent(mxfile, space="  ")
    return ET.tostring(mxfile, encoding="unicode") + "\n"


# --- SVG -------------------------------------------------------------------------------


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str | float) -> ET.Element:
    """A child element; numbers formatted by :func:`num`, ``_`` in names becomes ``-``."""
    element = ET.SubElement(
        parent,
        tag,
        {k.replace("_", "-"): v if isinstance(v, str) else num(v) for k, v in attrs.items()},
    )
    element.text = text
    return element


def _points(points: Iterable[Point]) -> str:
    return " ".join(f"{num(x)},{num(y)}" for x, y in points)


def _box_svg(svg: ET.Element, box: Box) -> None:
    group = _el(svg, "g", id=box.id)
    fill, stroke = PALETTE[box.palette]
    if box.kind == "lane":
        _el(group, "rect", x=box.x, y=box.y, width=box.w, height=box.h, fill=fill, stroke=stroke)
        _el(
            group,
            "rect",
            x=box.x,
            y=box.y,
            width=LANE_HEADER,
            height=box.h,
            fill=PALETTE["lane-header"][0],
            stroke=stroke,
        )
        cx, cy = box.x + LANE_HEADER / 2, box.y + box.h / 2
        _el(
            group,
            "text",
            box.title,
            x=cx,
            y=cy + 4.5,
            text_anchor="middle",
            font_weight="bold",
            transform=f"rotate(-90 {num(cx)} {num(cy)})",
        )
        return
    if box.kind == "start":
        _el(
            group,
            "circle",
            cx=box.x + box.w / 2,
            cy=box.y + box.h / 2,
            r=box.w / 2,
            fill=fill,
            stroke=stroke,
        )
        return
    if box.kind == "note":
        fold = 12
        outline = [
            (box.x, box.y),
            (box.right - fold, box.y),
            (box.right, box.y + fold),
            (box.right, box.bottom),
            (box.x, box.bottom),
        ]
        _el(group, "polygon", points=_points(outline), fill=fill, stroke=stroke)
    elif box.kind == "node":
        _el(
            group,
            "rect",
            x=box.x,
            y=box.y,
            width=box.w,
            height=box.h,
            rx=6,
            fill=fill,
            stroke=stroke,
        )
    lines = box.text_lines()
    top = box.y + (box.h - len(lines) * LINE_H) / 2 + 11.5
    left = box.kind in ("note", "text")
    x = box.x + PAD + (4 if box.kind == "note" else 0) if left else box.x + box.w / 2
    for i, line in enumerate(lines):
        weight = {"font_weight": "bold"} if i == 0 and box.title else {}
        _el(
            group,
            "text",
            line,
            x=x,
            y=top + i * LINE_H,
            text_anchor="start" if left else "middle",
            **weight,
        )


def _edge_svg(svg: ET.Element, edge: Edge) -> None:
    group = _el(svg, "g", id=edge.id)
    points = list(edge.points)
    (ax, ay), (bx, by) = points[-2], points[-1]
    length = math.dist((ax, ay), (bx, by)) or 1.0
    ux, uy = (bx - ax) / length, (by - ay) / length
    if edge.link.arrow:  # the line stops inside the arrowhead so that its tip stays sharp
        points[-1] = (bx - 9 * ux, by - 9 * uy)
    dashes = {"stroke_dasharray": "6 4"} if edge.link.dashed else {}
    _el(
        group,
        "polyline",
        points=_points(points),
        fill="none",
        stroke=EDGE_COLOUR,
        stroke_width=1.2,
        **dashes,
    )
    if edge.link.arrow:
        back = (bx - 10 * ux, by - 10 * uy)
        head = [
            (bx, by),
            (back[0] - 4.5 * uy, back[1] + 4.5 * ux),
            (back[0] + 4.5 * uy, back[1] - 4.5 * ux),
        ]
        _el(group, "polygon", points=_points(head), fill=EDGE_COLOUR)
    rect = label_rect(edge)
    if rect is None:
        return
    x0, y0, x1, y1 = rect
    _el(group, "rect", x=x0, y=y0, width=x1 - x0, height=y1 - y0, fill="#ffffff")
    for i, line in enumerate(edge.link.label):
        _el(
            group,
            "text",
            line,
            x=(x0 + x1) / 2,
            y=y0 + 12 + i * EDGE_LINE_H,
            text_anchor="middle",
            font_size=EDGE_FONT_SIZE,
        )


def to_svg(diagram: Diagram) -> str:
    """The diagram as a standalone SVG: lanes, then boxes, then edges with their labels."""
    width, height = diagram.size
    svg = ET.Element(
        "svg",
        xmlns="http://www.w3.org/2000/svg",
        width=num(width),
        height=num(height),
        viewBox=f"0 0 {num(width)} {num(height)}",
    )
    svg.set("font-family", FONT)
    svg.set("font-size", str(FONT_SIZE))
    svg.set("fill", "#222222")
    _el(svg, "title", diagram.title)
    _el(svg, "rect", width="100%", height="100%", fill="#ffffff")
    for box in sorted(diagram.boxes, key=lambda b: b.kind != "lane"):
        _box_svg(svg, box)
    for edge in diagram.edges:
        _edge_svg(svg, edge)
    ET.indent(svg, space="  ")
    return ET.tostring(svg, encoding="unicode") + "\n"


# --- the pictures ----------------------------------------------------------------------


def architecture() -> Diagram:
    """Sources, orchestration, jobs, ports and adapters, data products, stores and sinks."""
    o, j, p, s, st, d = "orchestration", "jobs", "ports", "sources", "stores", "products"
    # fmt: off
    boxes = [
        lane(o, "Orchestration", at=(20, 20), size=(1280, 210)),
        lane(j, "Jobs", at=(20, 260), size=(1280, 200)),
        lane(p, "Ports & adapters", at=(20, 510), size=(1280, 140)),
        lane(s, "Sources", at=(20, 700), size=(560, 230)),
        lane(st, "Stores & sinks", at=(630, 700), size=(670, 230)),
        lane(d, "Data products", at=(20, 980), size=(1280, 150)),
        # orchestration
        node("kfp", "Kubeflow Pipelines", "recurring run", "one tick at a time",
             at=(70, 40), size=(240, 76), lane_id=o, palette=o),
        node("kfp-step", "Pipeline step per job", "discover, preprocess, train,", "infer, export",
             at=(410, 40), size=(220, 76), lane_id=o, palette=o),
        node("spark-app", "SparkApplication", "Spark operator, Kubernetes",
             "driver + executors run", "jobs/<job>.py", at=(730, 40), size=(230, 76),
             lane_id=o, palette=o),
        node("scheduled", "ScheduledSparkApplication", "alternative to Kubeflow:",
             "cron runs jobs/run.py", at=(1060, 40), size=(225, 76), lane_id=o,
             palette=o),
        node("local", "Local and CI", "etl --config PATH <job>", "spark-submit jobs/<job>.py",
             at=(70, 140), size=(240, 70), lane_id=o, palette=o),
        # jobs
        node("run", "run",
             "one recurring tick: the five jobs in order, each off its own queue in the state "
             "store; a failed job does not stop the next", at=(70, 280), size=(1200, 50),
             lane_id=j),
        node("discover", "discover", "register new raw files", "from the batch catalog",
             "as discovered batches", at=(70, 350), size=(200, 92), lane_id=j),
        node("preprocess", "preprocess", "validate each file, reject", "with a reason; rebuild",
             "the 1 Hz StateVectors", at=(320, 350), size=(200, 92), lane_id=j),
        node("train", "train", "enough labelled days?", "train, evaluate, register;",
             "champion only if better", at=(570, 350), size=(200, 92), lane_id=j),
        node("infer", "infer", "score new StateVectors", "with each type's champion",
             "from each machine's cut", at=(820, 350), size=(200, 92), lane_id=j),
        node("export", "export", "check segments, cycles;", "load them, quarantine",
             "the failing rows", at=(1070, 350), size=(200, 92), lane_id=j),
        # ports and adapters
        node("port-catalog", "Batch catalog", "kafka | listing", "(listing scans raw_url)",
             at=(60, 530), size=(180, 76), lane_id=p, palette="port"),
        node("port-objects", "Object store", "s3a | file", "raw files, labels, Delta tables",
             at=(250, 530), size=(310, 76), lane_id=p, palette="port"),
        node("port-registry", "Model registry", "MLflow: server | embedded",
             at=(670, 530), size=(200, 76), lane_id=p, palette="port"),
        node("port-state", "State store", "PostgreSQL | SQLite", "via SQLAlchemy",
             at=(885, 530), size=(200, 76), lane_id=p, palette="port"),
        node("port-results", "Results sink", "PostgreSQL via", "Spark's JDBC writer",
             at=(1095, 530), size=(190, 76), lane_id=p, palette="port"),
        # sources
        node("kafka", "Kafka topic", "raw-batches: one", "announcement per file,",
             "whole history kept", at=(60, 720), size=(175, 92), lane_id=s,
             palette="source"),
        node("raw", "Raw batches", "parquet, ~10 min each", "{raw_url}/{uuid}/",
             "{first_ts_ms}.parquet", at=(250, 720), size=(165, 92), lane_id=s,
             palette="source"),
        node("labels", "Labels", "ground truth,", "parquet under", "{labels_url}",
             at=(430, 720), size=(130, 92), lane_id=s, palette="source"),
        node("loggers", "On-board loggers", "GPS 1 Hz, IMU 10 Hz; one file",
             "per machine about every 10 min", at=(60, 850), size=(355, 66), lane_id=s,
             palette="source"),
        # stores and sinks
        node("registry", "MLflow model registry", "{pipeline}-{type}-activity",
             "versions; alias champion", "runs: parameters, metrics,", "lineage, model files",
             at=(670, 720), size=(200, 196), lane_id=st, palette="store"),
        node("state-db", "State store database", "batches: status, reason,", "quality, events",
             "models: versions, champion", "runs, inference runs,", "exports",
             at=(885, 720), size=(200, 196), lane_id=st, palette="store"),
        node("results-db", "Results database", "schema mining_insights:", "machine_activity",
             "machine_cycle", "quarantine", "(failing rows + reason)", at=(1095, 720),
             size=(190, 196), lane_id=st, palette="store"),
        # data products
        node("prefix", "", "all under {processed_url}/{pipeline}/", at=(60, 992),
             size=(300, 24), lane_id=d, kind="text"),
        node("statevectors", "statevectors/", "Delta, 1 Hz per machine", "by machine_uuid, day",
             at=(60, 1026), size=(230, 80), lane_id=d, palette="product"),
        node("models", "models/{type}/v{N}/", "Spark model +", "training_data.json",
             at=(310, 1026), size=(230, 80), lane_id=d, palette="product"),
        node("mlflow-store", "mlflow/", "embedded MLflow store", "without a tracking URI",
             at=(670, 1026), size=(200, 80), lane_id=d, palette="product"),
        node("inference", "inference/", "seconds | segments | cycles", "Delta, by machine_uuid",
             at=(895, 1026), size=(390, 80), lane_id=d, palette="product"),
        node("legend", "", "Adapters: production | embedded. Labels on the edges into the "
             "ports: the jobs that use them.", at=(20, 1136), size=(760, 24),
             kind="text"),
    ]
    links = [
        link("kfp", "kfp-step", "each tick"),
        link("kfp-step", "spark-app", "creates"),
        link("scheduled", "spark-app", "creates"),
        link("spark-app", j, "runs jobs/<job>.py"),
        link("local", j, "runs"),
        link("discover", "preprocess"),
        link("preprocess", "train"),
        link("train", "infer"),
        link("infer", "export"),
        link(j, "port-catalog", "discover, train"),
        link(j, "port-objects", "preprocess, train, infer, export"),
        link(j, "port-registry", "train, infer"),
        link(j, "port-state", "every job"),
        link(j, "port-results", "export"),
        link("loggers", "kafka", "announce"),
        link("loggers", "raw", "upload"),
        link("kafka", "port-catalog", "consume"),
        link("raw", "port-objects", "read"),
        link("labels", "port-objects", "read"),
        link("port-registry", "registry", "tracking API"),
        link("port-state", "state-db", "transactions"),
        link("port-results", "results-db", "JDBC stage, upsert"),
        link("registry", "mlflow-store", "embedded mode"),
        link("port-objects", d, "Delta tables, models", via=((605, 570),), label_px=150),
    ]
    # fmt: on
    return diagram("architecture", "fleet-etl architecture", (1320, 1170), boxes, links)


def batch_states() -> Diagram:
    """A raw batch's life through the state store's statuses, with the job on each edge."""
    # fmt: off
    boxes = [
        node("heading", "A raw batch's life in the state store (etl status)",
             "on each edge: the job or command that moves the batch, and when", at=(20, 8),
             size=(520, 40), kind="text"),
        node("start", "", at=(30, 158), size=(24, 24), kind="start", palette="start"),
        node("discovered", "discovered", "waits for preprocess", at=(170, 140), size=(160, 60),
             palette="discovered"),
        node("preprocessed", "preprocessed", "waits for infer", at=(500, 140), size=(140, 60),
             palette="preprocessed"),
        node("inferred", "inferred", "waits for export", at=(810, 140), size=(140, 60),
             palette="inferred"),
        node("exported", "exported", "results loaded", at=(1110, 140), size=(130, 60),
             palette="exported"),
        node("rejected", "rejected", "final until reset", at=(500, 320), size=(140, 80),
             palette="rejected"),
        node("reason", "reason, one line, e.g.", "missing column acc_x",
             "not a parquet file", "timestamps before 2000-01-01", "duplicate of KEY",
             "file not found: URL", at=(700, 300), size=(290, 120), kind="note",
             palette="note"),
        node("neighbours", "Late, re-sent and neighbouring batches",
             "A key announced again is not registered twice.",
             "A late batch moves only itself; what it changes around it is rewritten in place:",
             "preprocess recomputes the StateVector seconds it can influence, from all",
             "accepted files around it; infer re-scores each machine from its cut, so rows",
             "of inferred and exported batches are replaced; export reloads from the cut.",
             at=(30, 450), size=(620, 118), kind="note", palette="note"),
        node("reset-note", "etl reprocess [--machine] [--key] [--from] [--to]",
             "back to discovered from any other status:",
             "reason, quality and StateVectors version cleared,", "attempts + 1",
             at=(700, 450), size=(420, 80), kind="note", palette="note"),
        node("dashed-note", "", "dashed: allowed, but no job", "takes it today",
             at=(1000, 262), size=(240, 40), kind="text"),
    ]
    links = [
        link("start", "discovered", "discover", "new key"),
        link("discovered", "preprocessed", "preprocess", "valid: StateVectors"),
        link("preprocessed", "inferred", "infer", "scored by the champion"),
        link("inferred", "exported", "export", "loaded if unchanged"),
        link("discovered", "rejected", "discover", "malformed announcement",
             via=((260, 338),), label_px=258),
        link("discovered", "rejected", "preprocess", "invalid file or duplicate",
             via=((210, 382),), label_px=327),
        link("rejected", "reason", dashed=True, arrow=False),
        link("exported", "inferred", "re-score", via=((1140, 105), (910, 105)), dashed=True),
        link("inferred", "inferred", "re-score", via=((840, 240), (920, 240)), dashed=True),
        link("exported", "exported", "re-export", via=((1130, 240), (1220, 240)), dashed=True),
        link("preprocessed", "discovered", "etl reprocess", via=((540, 60), (300, 60)),
             label_px=40),
        link("inferred", "discovered", "etl reprocess", via=((850, 60), (300, 60)),
             label_px=40),
        link("exported", "discovered", "etl reprocess", via=((1210, 60), (300, 60)),
             label_px=40),
        link("rejected", "discovered", "etl reprocess", via=((570, 430), (185, 430)),
             label_px=222),
    ]
    # fmt: on
    return diagram("batch-states", "batch lifecycle", (1260, 590), boxes, links)


DIAGRAMS = (architecture, batch_states)


# --- files -----------------------------------------------------------------------------


def render(picture: Diagram) -> dict[str, str]:
    """File name -> text of both renderings, after refusing a broken layout.

    Raises:
        ValueError: the layout has problems (all of them, one per line).
    """
    problems = check_layout(picture)
    if problems:
        raise ValueError(f"{picture.name}: bad layout:\n  " + "\n  ".join(problems))
    return {f"{picture.name}.drawio": to_drawio(picture), f"{picture.name}.svg": to_svg(picture)}


def write_all(out_dir: Path) -> list[Path]:
    """Write every diagram's files into ``out_dir``; the paths written, in order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for make in DIAGRAMS:
        for file_name, text in render(make()).items():
            path = out_dir / file_name
            path.write_text(text, encoding="utf-8", newline="\n")
            written.append(path)
    return written


def stale_files(out_dir: Path) -> list[Path]:
    """The files in ``out_dir`` that regenerating would create or change."""
    with tempfile.TemporaryDirectory() as tmp:
        stale = []
        for fresh in write_all(Path(tmp)):
            current = out_dir / fresh.name
            if not current.is_file() or current.read_bytes() != fresh.read_bytes():
                stale.append(current)
        return stale


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the diagrams, or with ``--check`` name the stale ones and exit 1."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    parser.add_argument("--out", type=Path, default=DOCS, help="the files' folder (docs/)")
    args = parser.parse_args(argv)
    if not args.check:
        for path in write_all(args.out):
            print(f"wrote {_shown(path)}")
        return 0
    stale = stale_files(args.out)
    if stale:
        names = ", ".join(_shown(path) for path in stale)
        print(f"diagrams: stale: {names} (run python scripts/diagrams.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
