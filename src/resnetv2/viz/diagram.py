"""Lay out and draw :class:`DiagramBox` lists with matplotlib
(:func:`resnetv2.viz.architecture.architecture_boxes` makes them from a spec).

Columns run left to right (stem, stage 1 … stage S, head) joined by arrows; a stage's column
is a grey panel whose unit boxes stack top to bottom. Sizes are in inches with a fixed font,
so text stays the same size whatever the depth and the figure grows instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resnetv2.viz.figures import new_figure, save_figure

SHORTCUT_COLOURS = {"identity": "#2e7d32", "projection": "#ef6c00", "subsample": "#6a1b9a"}
STRIDE_COLOUR = "#c62828"


@dataclass(frozen=True)
class DiagramBox:
    """One box of the diagram.

    ``kind`` is ``stem``, ``stage`` (a stage's panel title), ``unit`` or ``head``;
    ``column`` is 0 for the stem, ``s + 1`` for stage ``s``, ``len(stages) + 1`` for the head.
    ``repeat`` is how many identical consecutive units the box stands for. ``strided`` lists
    the indices of ``lines`` that carry a stride (drawn in red).
    """

    kind: str
    column: int
    title: str
    lines: tuple[str, ...]
    repeat: int = 1
    shortcut: str | None = None
    stride: int = 1
    strided: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return "\n".join((self.title, *self.lines))


FONT = 7.5
MONO = "DejaVu Sans Mono"
LINE_H = FONT * 1.45 / 72
BOX_W = 2.95
PAD = 0.09
PANEL_PAD = 0.12
COL_GAP = 0.45
ARROW_GAP = 0.32
MARGIN = 0.3
TITLE_H = 0.7
LEGEND_H = 0.45
DECK_OFFSET = 0.05

FACES = {"stem": "#e3f2fd", "head": "#fff8e1", "unit": "#ffffff"}


@dataclass
class Placed:
    box: DiagramBox
    x: float
    y: float
    w: float
    h: float


def box_height(box: DiagramBox) -> float:
    return 2 * PAD + LINE_H * (1.15 + len(box.lines))


def layout(boxes: list[DiagramBox]) -> tuple[list[Placed], list[tuple], float, float]:
    """Place the boxes; returns ``(placed, panels, width, height)`` in inches (y down)."""
    columns = max(b.column for b in boxes) + 1
    col_w = BOX_W + 2 * PANEL_PAD
    top = MARGIN + TITLE_H
    cursor = [top] * columns
    placed: list[Placed] = []
    panels: list[list[float]] = []  # x, y, w, h per stage column
    for box in boxes:
        x = MARGIN + box.column * (col_w + COL_GAP)
        h = box_height(box)
        if box.kind == "stage":
            panels.append([x, top, col_w, 0.0])
            y = top + PAD
            placed.append(Placed(box, x + PANEL_PAD, y, BOX_W, h))
            cursor[box.column] = y + h + ARROW_GAP
            continue
        if box.kind in ("stem", "head"):
            placed.append(Placed(box, x + PANEL_PAD, top, BOX_W, h))
            cursor[box.column] = top + h
            continue
        y = cursor[box.column]
        placed.append(Placed(box, x + PANEL_PAD, y, BOX_W, h))
        cursor[box.column] = y + h + ARROW_GAP
        panels[-1][3] = y + h + PANEL_PAD + (DECK_OFFSET * 2 if box.repeat > 1 else 0) - top
    width = 2 * MARGIN + columns * col_w + (columns - 1) * COL_GAP
    bottom = max([p.y + p.h for p in placed] + [p[1] + p[3] for p in panels])
    height = bottom + LEGEND_H + MARGIN
    return placed, [tuple(p) for p in panels], width, height


def _line_colour(box: DiagramBox, i: int, line: str) -> str:
    if i in box.strided:
        return STRIDE_COLOUR
    if line.startswith(("⊕", "   on the")) and box.shortcut:
        return SHORTCUT_COLOURS[box.shortcut]
    if line.startswith(("out ", "input ")) or line.endswith(("params", "params each")):
        return "#616161"
    return "#212121"


def _draw_box(ax, p: Placed) -> None:
    from matplotlib.patches import FancyBboxPatch

    box = p.box
    edge = SHORTCUT_COLOURS.get(box.shortcut or "", "#424242")
    face = FACES.get(box.kind, "#eeeeee")
    style = "round,pad=0,rounding_size=0.06"
    if box.kind == "stage":
        # The panel behind already frames it; the title sits on the panel.
        edge, face = "none", "none"
    if box.repeat > 1 and box.kind == "unit":
        # A deck of cards: repeated units look stacked.
        for k in (2, 1):
            off = k * DECK_OFFSET
            ax.add_patch(
                FancyBboxPatch(
                    (p.x + off, p.y + off), p.w, p.h, boxstyle=style, fc=face, ec=edge, lw=0.8
                )
            )
    ax.add_patch(FancyBboxPatch((p.x, p.y), p.w, p.h, boxstyle=style, fc=face, ec=edge, lw=1.4))
    title, _, count = box.title.partition("  ×")
    ty = p.y + PAD
    ax.text(p.x + PAD, ty, title, fontsize=FONT + 1, fontweight="bold", va="top", family=MONO)
    if count:
        ax.text(
            p.x + p.w - PAD,
            ty - 0.02,
            f"×{count}",
            fontsize=FONT + 4,
            fontweight="bold",
            ha="right",
            va="top",
            color=edge,
        )
    y = ty + LINE_H * 1.15
    for i, line in enumerate(box.lines):
        ax.text(
            p.x + PAD,
            y,
            line,
            fontsize=FONT,
            va="top",
            family=MONO,
            color=_line_colour(box, i, line),
        )
        y += LINE_H


def _arrow(ax, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={"arrowstyle": "-|>", "color": "#424242", "lw": 1.2, "shrinkA": 0, "shrinkB": 0},
    )


def _legend(ax, boxes: list[DiagramBox], y: float) -> None:
    used = [s for s in SHORTCUT_COLOURS if any(b.shortcut == s for b in boxes)]
    items = [(f"{s} shortcut", SHORTCUT_COLOURS[s]) for s in used]
    items.append(("/2: strided (downsampling) layer", STRIDE_COLOUR))
    if any(b.kind == "unit" and b.repeat > 1 for b in boxes):
        items.append(("stacked ×N: N identical units", "#424242"))
    x = MARGIN
    for text, colour in items:
        ax.plot([x, x + 0.25], [y, y], color=colour, lw=2.5, solid_capstyle="butt")
        ax.text(x + 0.32, y, text, fontsize=FONT, va="center", color="#212121")
        x += 0.45 + 0.075 * len(text)


def draw_diagram(boxes: list[DiagramBox], title: str, path: Path, *, dpi: int = 150) -> Path:
    """Draw ``boxes`` under ``title`` and save to ``path`` (format from the suffix)."""
    from matplotlib.patches import FancyBboxPatch

    placed, panels, width, height = layout(boxes)
    fig = new_figure(width, height)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    ax.text(MARGIN, MARGIN, title, fontsize=FONT + 3, va="top", fontweight="bold")
    for x, y, w, h in panels:
        ax.add_patch(
            FancyBboxPatch(
                (x, y), w, h, boxstyle="round,pad=0,rounding_size=0.1", fc="#f4f4f4", ec="#9e9e9e"
            )
        )
    for p in placed:
        _draw_box(ax, p)
    # Flow between columns: along the top row, at the height of the first text lines.
    flow_y = MARGIN + TITLE_H + 0.2
    col_w = BOX_W + 2 * PANEL_PAD
    columns = max(b.column for b in boxes) + 1
    for c in range(columns - 1):
        right = MARGIN + c * (col_w + COL_GAP) + col_w
        _arrow(ax, (right - (PANEL_PAD if c == 0 else 0), flow_y), (right + COL_GAP, flow_y))
    # Flow inside a stage: stage title → unit groups, top to bottom.
    for a, b in zip(placed, placed[1:]):
        if a.box.column == b.box.column and b.box.kind == "unit":
            cx = a.x + a.w / 2
            start = (
                a.y + a.h + (2 * DECK_OFFSET if a.box.repeat > 1 and a.box.kind == "unit" else 0)
            )
            _arrow(ax, (cx, start), (cx, b.y))
    _legend(ax, boxes, height - MARGIN - LEGEND_H / 2)
    return save_figure(fig, path, dpi=dpi)
