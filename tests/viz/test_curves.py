"""Training curves: CSV reading rules and the PNG."""

import math

import pytest
from PIL import Image

from resnetv2.viz.curves import (
    PlotError,
    curves_figure,
    lr_log_scale,
    plot_curves,
    read_metrics_csv,
)

HEADER = "epoch,train_loss,train_acc,val_loss,val_acc,val_top5,lr,seconds\n"


def test_resumed_epochs_keep_the_last_row_and_blanks_are_gaps(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        HEADER
        + "1,2.0,0.3,2.1,0.25,0.8,0.1,10\n"
        + "2,1.5,0.5,,,,0.1,10\n"
        + "2,1.4,0.55,1.6,0.5,0.9,0.1,11\n"
        + "3,1.0,0.7,1.2,0.6,0.95,0.01,9\n"
    )
    columns = read_metrics_csv(csv)
    assert columns["epoch"] == [1, 2, 3]
    assert columns["train_loss"] == [2.0, 1.4, 1.0]
    assert columns["seconds"] == [10, 11, 9]
    csv.write_text(HEADER + "1,2.0,0.3,,,,0.1,10\n")
    assert math.isnan(read_metrics_csv(csv)["val_acc"][0])


def test_lr_log_scale_rule():
    assert lr_log_scale([0.1, 0.1, 0.01])
    assert not lr_log_scale([0.1, 0.05, 0.02])
    assert not lr_log_scale([0.1, 0.0])  # zero cannot sit on a log axis
    assert not lr_log_scale([math.nan])


def test_plot_curves_png(tmp_path):
    rows = [
        f"{e},{2 / e},{1 - 1 / (e + 1)},{2.2 / e},{1 - 1.2 / (e + 1)},{1 - 0.2 / e},"
        f"{0.1 * 0.1 ** (e // 4)},12.5\n"
        for e in range(1, 11)
    ]
    (tmp_path / "metrics.csv").write_text(HEADER + "".join(rows))
    path = plot_curves(tmp_path)
    assert path == tmp_path / "curves.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 1000
        lo, hi = image.convert("L").getextrema()
        assert hi - lo > 100
    svg = plot_curves(tmp_path / "metrics.csv", tmp_path / "c.svg")
    assert "<svg" in svg.read_text()


def test_missing_or_empty_csv(tmp_path):
    with pytest.raises(PlotError, match="no metrics file"):
        plot_curves(tmp_path)
    (tmp_path / "metrics.csv").write_text(HEADER)
    with pytest.raises(PlotError, match="no epochs"):
        plot_curves(tmp_path)
    (tmp_path / "metrics.csv").write_text("step,loss\n1,2\n")
    with pytest.raises(PlotError, match="epoch"):
        plot_curves(tmp_path)


def _columns(epochs, top5=True):
    rows = {
        "epoch": [float(e) for e in range(1, epochs + 1)],
        "train_loss": [2 / e for e in range(1, epochs + 1)],
        "val_loss": [2.2 / e for e in range(1, epochs + 1)],
        "train_acc": [1 - 1 / (e + 1) for e in range(1, epochs + 1)],
        "val_acc": [0.5 + 0.4 * math.sin(e / 2) ** 2 for e in range(1, epochs + 1)],
        "val_top5": [1.0 if top5 else math.nan] * epochs,
        "lr": [0.1] * epochs,
    }
    return rows


@pytest.mark.parametrize("epochs", [2, 3, 7])
def test_epoch_axes_tick_only_at_whole_epochs(epochs):
    fig = curves_figure(_columns(epochs), "run")
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_best_epoch_is_named_in_the_title_not_over_the_lines():
    columns = _columns(12)
    best = max(range(12), key=lambda i: columns["val_acc"][i])
    fig = curves_figure(columns, "run")
    acc_ax = fig.axes[1]
    assert f"at epoch {best + 1} " in acc_ax.get_title()
    assert len(acc_ax.texts) == 0  # no annotation inside the plotting area


def test_top5_is_not_drawn_when_it_is_blank():
    fig = curves_figure(_columns(4, top5=False), "run")
    labels = fig.axes[1].get_legend_handles_labels()[1]
    assert "validation top-5" not in labels and "validation top-1" in labels


@pytest.mark.parametrize(("seconds", "shown"), [(0.2, "0.4 s"), (45.0, "1.5 min")])
def test_title_gives_short_runs_in_seconds(seconds, shown):
    from resnetv2.viz.curves import curves_figure

    columns = {"epoch": [1.0, 2.0], "seconds": [seconds, seconds]}
    fig = curves_figure(columns, "run")
    assert fig._suptitle.get_text() == f"run: 2 epochs, {shown} of epoch time"
