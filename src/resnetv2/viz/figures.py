"""Matplotlib figures without pyplot: Agg canvas, atomic saving, format from the file suffix.

Figures are created as :class:`matplotlib.figure.Figure` objects rather than through
``pyplot``, so plotting never opens a window, never touches global figure state (safe in
threads and training loops) and needs no display.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg"}


def new_figure(width: float, height: float):
    """A figure of ``width`` × ``height`` inches on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def figure_format(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        from resnetv2.errors import ResNetV2Error

        raise ResNetV2Error(
            f"cannot tell the image format of {os.fspath(path)!r}: use one of " + ", ".join(FORMATS)
        )
    return FORMATS[suffix]


def figure_bytes(fig, fmt: str = "png", *, dpi: int = 150) -> bytes:
    """``fig`` rendered in ``fmt`` (a value of :data:`FORMATS`) on a white background."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, facecolor="white")
    return buffer.getvalue()


def save_figure(fig, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
    """Render ``fig`` and write it atomically to ``path`` (parent folders are created)."""
    from resnetv2.io.atomic import atomic_write_bytes

    path = Path(path)
    data = figure_bytes(fig, figure_format(path), dpi=dpi)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path
