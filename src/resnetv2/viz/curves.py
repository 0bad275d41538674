"""Training curves from a run's ``metrics.csv``: loss, accuracy and learning rate per epoch.

The CSV is the engine's per-epoch log (columns ``epoch, train_loss, train_acc, val_loss,
val_acc, val_top5, lr, seconds``). Blank or ``nan`` cells become gaps, a column that is
absent is skipped, and when an epoch appears twice (a run resumed after its last row was
written) the later row wins.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from resnetv2.errors import ResNetV2Error
from resnetv2.viz.figures import new_figure, save_figure

METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr", "seconds")


class PlotError(ResNetV2Error, ValueError):
    """Nothing sensible to plot: a missing or malformed metrics file."""


def _float(text: str | None) -> float:
    if text is None or not text.strip():
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_metrics_csv(path: str | os.PathLike[str]) -> dict[str, list[float]]:
    """Columns of ``metrics.csv`` as float lists ordered by epoch (last row per epoch wins)."""
    path = Path(path)
    if not path.is_file():
        raise PlotError(f"no metrics file at {os.fspath(path)!r} (written by `resnetv2 train`)")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if "epoch" not in fields:
            raise PlotError(
                f"{os.fspath(path)!r} has no 'epoch' column (columns: {', '.join(fields) or 'none'})"
            )
        rows: dict[float, dict[str, str]] = {}
        for row in reader:
            epoch = _float(row.get("epoch"))
            if not math.isnan(epoch):
                rows[epoch] = row
    if not rows:
        raise PlotError(f"{os.fspath(path)!r} holds no epochs yet")
    epochs = sorted(rows)
    columns = {name: [_float(rows[e].get(name)) for e in epochs] for name in fields if name}
    columns["epoch"] = epochs
    return columns


def _has(columns: dict[str, list[float]], name: str) -> bool:
    return name in columns and any(not math.isnan(v) for v in columns[name])


def lr_log_scale(lrs: list[float]) -> bool:
    """Whether learning rates span a decade or more (and are all positive): use a log axis."""
    logged = [v for v in lrs if not math.isnan(v)]
    if not logged or min(logged) <= 0:
        return False
    return max(logged) / min(logged) >= 10


def _resolve(run_dir_or_csv: str | os.PathLike[str], out) -> tuple[Path, Path, str]:
    source = Path(run_dir_or_csv)
    if source.is_dir():
        csv_path, folder = source / METRICS_FILE, source
    else:
        csv_path, folder = source, source.parent
    target = Path(out) if out is not None else folder / CURVES_FILE
    if out is not None and target.is_dir():
        target = target / CURVES_FILE
    return csv_path, target, folder.resolve().name


def plot_curves(
    run_dir_or_csv: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    dpi: int = 150,
) -> Path:
    """Plot loss, accuracy and learning rate per epoch; returns the image path.

    ``run_dir_or_csv`` is a run folder (its ``metrics.csv``) or the CSV itself; ``out``
    defaults to ``curves.png`` beside the CSV (a folder means ``folder/curves.png``). Accuracy
    in [0, 1] is shown in percent; the learning rate uses a log axis when it spans a decade
    or more.
    """
    csv_path, target, name = _resolve(run_dir_or_csv, out)
    return save_figure(curves_figure(read_metrics_csv(csv_path), name), target, dpi=dpi)


def curves_figure(columns: dict[str, list[float]], name: str):
    """The three-panel figure of :func:`plot_curves` for columns of ``metrics.csv``.

    Epochs are whole numbers, so the x axes only tick at integers. The best validation epoch
    is starred and named in the accuracy panel's title, never in a label over the lines.
    """
    from matplotlib.ticker import MaxNLocator

    epochs = columns["epoch"]
    marker = "o" if len(epochs) <= 30 else None
    fig = new_figure(15, 4.4)
    axes = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.05, right=0.98, top=0.84, bottom=0.13, wspace=0.25)

    loss_ax, acc_ax, lr_ax = axes
    for key, label, colour in (("train_loss", "train", "C0"), ("val_loss", "validation", "C1")):
        if _has(columns, key):
            loss_ax.plot(epochs, columns[key], label=label, color=colour, marker=marker, ms=3)
    loss_ax.set_title("loss (cross-entropy)")

    # val_top5 is blank for models with five classes or fewer (always 100 %): not drawn.
    acc_keys = [k for k in ("train_acc", "val_acc", "val_top5") if _has(columns, k)]
    peak = max((v for k in acc_keys for v in columns[k] if not math.isnan(v)), default=0)
    scale = 100.0 if peak <= 1.0 else 1.0
    styles = {
        "train_acc": ("train top-1", "C0", "-"),
        "val_acc": ("validation top-1", "C1", "-"),
        "val_top5": ("validation top-5", "C1", "--"),
    }
    for key in acc_keys:
        label, colour, style = styles[key]
        values = [v * scale for v in columns[key]]
        acc_ax.plot(epochs, values, style, label=label, color=colour, marker=marker, ms=3)
    if "val_acc" in acc_keys:
        values = columns["val_acc"]
        best = max(
            range(len(values)), key=lambda i: -math.inf if math.isnan(values[i]) else values[i]
        )
        acc_ax.plot([epochs[best]], [values[best] * scale], "*", color="C3", ms=12, zorder=5)
        acc_ax.set_title(
            f"accuracy (%); best {values[best] * scale:.2f}% at epoch {epochs[best]:g} (★)"
        )
    else:
        acc_ax.set_title("accuracy (%)")

    if _has(columns, "lr"):
        lrs = columns["lr"]
        lr_ax.plot(epochs, lrs, color="C2", marker=marker, ms=3)
        if lr_log_scale(lrs):
            lr_ax.set_yscale("log")
    else:
        lr_ax.text(0.5, 0.5, "no learning rate logged", ha="center", transform=lr_ax.transAxes)
    lr_ax.set_title("learning rate")

    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    summary = f"{name}: {len(epochs)} epoch{'s' if len(epochs) != 1 else ''}"
    if _has(columns, "seconds"):
        total = sum(v for v in columns["seconds"] if not math.isnan(v))
        spent = f"{total:.1f} s" if total < 60 else f"{total / 60:.1f} min"
        summary += f", {spent} of epoch time"
    fig.suptitle(summary, fontsize=12)
    return fig
