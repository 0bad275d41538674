"""Confusion-matrix heat map, readable from 2 to 1,000 classes.

Up to 20 classes every cell shows its count (or fraction); beyond that the colour alone
carries the value and tick labels shrink, then thin out past 120 classes, so a 100-class
CIFAR-100 matrix is still legible. ``normalize="true"`` divides each row by the class's
support (the diagonal is then per-class recall), ``"pred"`` each column by the predictions
(the diagonal is precision).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from resnetv2.errors import ResNetV2Error
from resnetv2.viz.figures import new_figure, save_figure

ANNOTATE_MAX_CLASSES = 20
LABEL_ALL_MAX_CLASSES = 120
NORMALIZE = (False, None, "true", "pred", "all")
NORMALIZE_NOTES = {
    "true": "normalised over each true class (rows sum to 1: recall on the diagonal)",
    "pred": "normalised over each predicted class (columns sum to 1: precision on the diagonal)",
    "all": "normalised over all samples (the cells sum to 1)",
}


def normalise_confusion(confusion: np.ndarray, normalize: bool | str | None) -> np.ndarray:
    """Counts as floats, divided by row (``true``/``True``), column (``pred``) or total
    (``all``) sums; empty rows/columns stay 0."""
    if normalize is True:
        normalize = "true"
    if normalize not in NORMALIZE:
        raise ResNetV2Error(f"normalize must be one of true, pred, all or False; got {normalize!r}")
    counts = np.asarray(confusion, dtype=np.float64)
    if not normalize:
        return counts
    if normalize == "true":
        sums = counts.sum(axis=1, keepdims=True)
    elif normalize == "pred":
        sums = counts.sum(axis=0, keepdims=True)
    else:
        sums = np.array(counts.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums > 0, counts / np.where(sums > 0, sums, 1), 0.0)


def plot_confusion_matrix(
    confusion: np.ndarray | Sequence[Sequence[int]],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    *,
    normalize: bool | str | None = False,
    title: str | None = None,
    annotate: bool | None = None,
    dpi: int = 150,
) -> Path:
    """Draw ``confusion`` (rows = true class, columns = predicted) to ``path``
    (:func:`confusion_figure`)."""
    fig = confusion_figure(
        confusion, class_names, normalize=normalize, title=title, annotate=annotate
    )
    return save_figure(fig, path, dpi=dpi)


def confusion_figure(
    confusion: np.ndarray | Sequence[Sequence[int]],
    class_names: Sequence[str],
    *,
    normalize: bool | str | None = False,
    title: str | None = None,
    annotate: bool | None = None,
):
    """The heat map as a matplotlib figure. ``annotate`` (default: up to 20 classes) writes
    each cell's value inside it. A normalised matrix says over what under ``title``.
    Column labels stay horizontal when they fit their cells, else they turn 90°."""
    matrix = np.asarray(confusion)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise ResNetV2Error(
            f"confusion matrix has shape {matrix.shape} but there are {n} class names"
        )
    values = normalise_confusion(matrix, normalize)
    if annotate is None:
        annotate = n <= ANNOTATE_MAX_CLASSES
    cell = 0.5 if n <= ANNOTATE_MAX_CLASSES else max(0.05, min(0.2, 20 / n))
    longest = max((len(str(c)) for c in class_names), default=1)
    label_size = 9.0 if n <= ANNOTATE_MAX_CLASSES else max(4.0, min(8.0, cell * 72 * 0.7))
    label_space = min(2.5, 0.3 + longest * label_size * 0.6 / 72)
    side = max(3.0, cell * n)
    lines = [title or "confusion matrix"]
    if normalize:
        lines.append(NORMALIZE_NOTES["true" if normalize is True else normalize])
    # Wrapped to the figure's width (about 13 characters per inch at 10 pt).
    fig_width = side + label_space + 1.8
    chars = max(30, int((fig_width - label_space - 0.1) * 13))
    title = "\n".join(textwrap.fill(line, chars) for line in lines)
    fig = new_figure(fig_width, side + label_space + 0.45 + 0.18 * (title.count("\n") + 1))
    # Fixed margins in inches, so long class names never squeeze the matrix.
    W, H = fig.get_size_inches()
    ax = fig.add_axes((label_space / W, label_space / H, side / W, side / H))
    image = ax.imshow(values, cmap="Blues", interpolation="nearest", aspect="equal")
    if n > 0 and values.max() == 0:
        image.set_clim(0, 1)
    colorbar_ax = fig.add_axes(((label_space + side + 0.2) / W, label_space / H, 0.2 / W, side / H))
    fig.colorbar(image, cax=colorbar_ax)
    step = 1 if n <= LABEL_ALL_MAX_CLASSES else int(np.ceil(n / LABEL_ALL_MAX_CLASSES))
    ticks = np.arange(0, n, step)
    names = [str(class_names[i]) for i in ticks]
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    width = side / max(n, 1)  # of one cell, in inches
    fits = n <= ANNOTATE_MAX_CLASSES and longest * label_size * 0.62 / 72 <= width * 0.95
    ax.set_xticklabels(names, rotation=0 if fits else 90, fontsize=label_size)
    ax.set_yticklabels(names, fontsize=label_size)
    ax.set_xlabel("predicted class", fontsize=10)
    ax.set_ylabel("true class", fontsize=10)
    if n > ANNOTATE_MAX_CLASSES:
        ax.tick_params(length=1.5, pad=1)
    if annotate:
        peak = values.max() if values.size else 0
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                text = f"{v:.2f}" if normalize else f"{int(v)}"
                colour = "white" if peak and v > 0.55 * peak else "#212121"
                if v == 0:
                    colour = "#b0b0b0"  # zeros recede so the confusions stand out
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    fig.text(label_space / W, (label_space + side + 0.15) / H, title, fontsize=10, va="bottom")
    return fig
