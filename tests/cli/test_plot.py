"""``resnetv2 plot RUN``: curves.png from metrics.csv."""

from PIL import Image

from resnetv2.cli import main

HEADER = "epoch,train_loss,train_acc,val_loss,val_acc,val_top5,lr,seconds\n"


def test_plot_writes_a_non_blank_png(tmp_path, capsys):
    rows = "".join(
        f"{e},{1 / e},{0.5 + e / 20},{1.2 / e},{0.45 + e / 20},{0.9},{0.1 / e},3.0\n"
        for e in range(1, 8)
    )
    (tmp_path / "metrics.csv").write_text(HEADER + rows)
    assert main(["plot", str(tmp_path)]) == 0
    assert "curves.png" in capsys.readouterr().out
    with Image.open(tmp_path / "curves.png") as image:
        assert image.format == "PNG"
        assert image.size[0] > 1000 and image.size[1] > 300
        grey = image.convert("L")
        lo, hi = grey.getextrema()
        assert hi - lo > 100
        histogram = grey.histogram()
        assert histogram[255] < 0.98 * sum(histogram)  # not an empty white page
    assert main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_plot_without_metrics_is_exit_2(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "metrics" in err
