"""The mistakes grid (``RUN/eval/mistakes.png``): the most confidently wrong images, each as
the model saw it (its input pixels, scaled up by a whole factor) under ``true → predicted``
and the probability it gave the wrong class, with the class activation map of the predicted
class beside it when there is one."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnetv2.viz.figures import new_figure, save_figure

TILE_INCHES = 1.7
MIN_WIDTH_INCHES = 4.5


@dataclass(frozen=True)
class MistakeTile:
    """One wrong prediction: ``pixels`` uint8 ``[C, H, W]`` at the model's input size,
    the class names, the probability of the (wrong) prediction, where the image came from and
    ``overlay`` (uint8 ``[H', W', 3]``, the CAM drawn over the image) or ``None``."""

    pixels: np.ndarray
    true: str
    predicted: str
    probability: float
    source: str
    overlay: np.ndarray | None = None


def _short(text: str, limit: int = 28) -> str:
    """A source as a tile names it: ``cat/0042.jpg`` (class folder and file), shortened."""
    path = text.rstrip("/")
    name = os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def mistakes_figure(tiles: Sequence[MistakeTile], title: str, *, columns: int | None = None):
    """The grid as a matplotlib figure (no tiles: a figure that says so)."""
    from resnetv2.viz.cam import rgb_pixels

    with_cam = any(t.overlay is not None for t in tiles)
    per_tile = 2 if with_cam else 1
    columns = columns or (4 if with_cam else 6)
    columns = max(1, min(columns, len(tiles) or 1))
    rows = max(1, -(-len(tiles) // columns))
    width = max(MIN_WIDTH_INCHES, columns * per_tile * TILE_INCHES)
    header = 0.35 + 0.2 * title.count("\n")  # the figure title's lines
    above, below = 0.5, 0.25  # a tile's two-line title; the source under it
    height = header + rows * (TILE_INCHES + above + below)
    fig = new_figure(width, height)
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")
    if not tiles:
        fig.text(0.5, 0.45, "no mistakes to show", ha="center", va="center", fontsize=12)
        return fig
    axes = fig.subplots(rows, columns * per_tile, squeeze=False)
    fig.subplots_adjust(
        left=0.01,
        right=0.99,
        top=1 - (header + above) / height,
        bottom=below / height,
        wspace=0.06,
        hspace=(above + below) / TILE_INCHES,
    )
    for ax in axes.flat:
        ax.axis("off")
    for i, tile in enumerate(tiles):
        row, col = divmod(i, columns)
        image_ax = axes[row, col * per_tile]
        image_ax.imshow(rgb_pixels(tile.pixels), interpolation="nearest")
        image_ax.set_title(
            f"{tile.true} → {tile.predicted}\np = {tile.probability:.2f}", fontsize=8, pad=3
        )
        image_ax.text(
            0.5, -0.04, _short(tile.source), transform=image_ax.transAxes, ha="center",
            va="top", fontsize=6.5, color="#555555",
        )  # fmt: skip
        if with_cam:
            cam_ax = axes[row, col * per_tile + 1]
            if tile.overlay is not None:
                cam_ax.imshow(tile.overlay, interpolation="bilinear")
                cam_ax.set_title(f"where it saw\n“{tile.predicted}”", fontsize=8, pad=3)
    return fig


def plot_mistakes(
    tiles: Sequence[MistakeTile], path: str | os.PathLike[str], *, title: str, dpi: int = 150
) -> Path:
    """Draw :func:`mistakes_figure` to ``path`` (format from the suffix)."""
    return save_figure(mistakes_figure(tiles, title), path, dpi=dpi)
