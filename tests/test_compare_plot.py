"""The compare plot: every run named, sizes readable, the accuracy axis not zoomed."""

from resnetv2.compare import Comparison, comparison_figure


def _row(name, acc, params, seconds, depth=8, val_count=359, pflop=None):
    return {
        "run": f"/runs/sweep/{name}",
        "depth": depth,
        "block": "basic",
        "units": [1, 1, 1],
        "params": params,
        "flops": 1,
        "best_val_acc": acc,
        "final_val_acc": acc,
        "epochs": 1,
        "train_seconds": seconds,
        "images_per_second": 1.0,
        "precision": "fp32",
        "train_pflop": pflop,
        "val_count": val_count,
    }


def test_three_runs_of_one_depth_are_told_apart():
    rows = [
        _row("lr-0.1", 0.981, 77_562, 9.5),
        _row("lr-0.05", 0.984, 77_562, 9.7),
        _row("lr-0.2", 0.979, 77_562, 9.4),
        _row("wide", 0.99, 1_250_000, 30.0, depth=14),
    ]
    fig = comparison_figure(Comparison(runs=rows))
    fig.canvas.draw()
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[0] == "sweep/lr-0.1: depth 8, 98.10% of 359"
    assert len(set(labels)) == 4 and all("depth" in t for t in labels)
    params_ax, time_ax = fig.axes
    for ax in (params_ax, time_ax):
        assert ax.get_ylim() == (0.0, 100.0)  # never zoomed onto the spread of the runs
        assert ax.get_ylabel() == "best validation accuracy (%) on 359 images"
    ticks = [t.get_text() for t in params_ax.get_xticklabels() if t.get_text()]
    assert ticks and all(t[-1] in "kMG" for t in ticks), ticks  # 100k, 1.00M: no raw counts
    # Each run has its own colour in both panels.
    colours = [tuple(c.get_facecolor()[0]) for c in params_ax.collections]
    assert len(set(colours)) == 4


def test_different_validation_sets_show_the_range():
    rows = [_row("a", 0.9, 1000, 1.0, val_count=100), _row("b", 0.8, 2000, 2.0, val_count=250)]
    fig = comparison_figure(Comparison(runs=rows))
    assert fig.axes[0].get_ylabel().endswith("on 100–250 images")


def test_training_compute_gets_a_third_panel_when_recorded():
    rows = [_row("a", 0.9, 1000, 1.0, pflop=0.002), _row("b", 0.8, 2000, 2.0, pflop=None)]
    fig = comparison_figure(Comparison(runs=rows))
    assert [ax.get_xlabel() for ax in fig.axes] == [
        "parameters",
        "train time (s)",
        "training compute (PFLOP)",
    ]
    assert tuple(fig.get_size_inches())[0] == 15  # 5 inches a panel
    assert len(fig.axes[2].collections) == 1  # only the run that recorded it
    plain = comparison_figure(Comparison(runs=[_row("c", 0.9, 1000, 1.0)]))
    assert len(plain.axes) == 2 and plain.get_size_inches()[0] == 10
