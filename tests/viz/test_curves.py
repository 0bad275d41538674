"""Training curves: CSV reading rules and the PNG."""

import math

import pytest
from PIL import Image

from resnetv2.viz.curves import PlotError, lr_log_scale, plot_curves, read_metrics_csv

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
