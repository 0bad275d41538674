"""``resnetv2 evaluate``: the mistakes picture, the top confusions and where files are said
to be written — on a net whose every answer is known (the ``corner`` fixture)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from resnetv2.cli import main
from resnetv2.loading import save_model


@pytest.fixture
def corner_run(tmp_path, corner):
    """A weights file of the corner net and a folder whose mistakes are known.

    The net calls an image ``corner`` with p = sigmoid(2 · bright cells / 16) of its 4×4
    feature map, and a blank image ``blank`` (a tie, p = 0.5, goes to class 0). ``blank/``
    holds two blank images and three with a corner square of growing size: three mistakes,
    the biggest square the most confident. ``corner/`` holds two corner images and one blank
    one: one mistake the other way.
    """
    model = corner.model()
    weights = tmp_path / "corner.safetensors"
    save_model(
        model,
        weights,
        class_names=model.metadata["class_names"],
        preprocessing=model.metadata["preprocessing"],
    )
    data = tmp_path / "data"
    files = {
        "blank": {
            "b0.png": corner.image(block=0),
            "b1.png": corner.image(block=0),
            "s4.png": corner.image("top-right", block=4),
            "s8.png": corner.image("bottom-left", block=8),
            "s12.png": corner.image("top-left", block=12),
        },
        "corner": {
            "c0.png": corner.image("top-right"),
            "c1.png": corner.image("bottom-right", block=8),
            "empty.png": corner.image(block=0),
        },
    }
    for name, images in files.items():
        (data / name).mkdir(parents=True)
        for file, pixels in images.items():
            Image.fromarray(pixels).save(data / name / file)
    return weights, data


def _evaluate(weights, data, out, *extra):
    """The exit code, whether ``main`` returns it or argparse exits with it."""
    argv = ["evaluate", str(weights), "--data", str(data), "--out", str(out), "-q", *extra]
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_mistakes_png_and_top_confusions(corner_run, tmp_path, capsys):
    weights, data = corner_run
    out = tmp_path / "eval"
    assert _evaluate(weights, data, out) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    # Most confident first: the biggest square (9 of 16 cells bright) down to the tie.
    shown = [
        (os.path.basename(m["source"]), m["true"], m["predicted"]) for m in metrics["mistakes"]
    ]
    assert shown == [
        ("s12.png", "blank", "corner"),
        ("s8.png", "blank", "corner"),
        ("s4.png", "blank", "corner"),
        ("empty.png", "corner", "blank"),
    ]
    probabilities = [m["probability"] for m in metrics["mistakes"]]
    expected = [1 / (1 + np.exp(-2 * k / 16)) for k in (9, 4, 1, 0)]
    assert probabilities == pytest.approx(expected, abs=1e-5)
    assert metrics["cam"] == "cam"
    assert metrics["top_confusions"] == [
        {"true": "blank", "predicted": "corner", "count": 3, "support": 5},
        {"true": "corner", "predicted": "blank", "count": 1, "support": 3},
    ]
    report = (out / "report.txt").read_text()
    assert "blank → corner: 3 of 5" in report and "corner → blank: 1 of 3" in report
    assert "blank → corner: 3 of 5" in printed  # the printed report names them too
    with Image.open(out / "mistakes.png") as image:
        assert image.format == "PNG" and image.size[0] >= 256
    assert "mistakes.png" in printed


def test_how_many_and_which_class(corner_run, tmp_path, capsys):
    weights, data = corner_run
    assert _evaluate(weights, data, tmp_path / "two", "--mistakes", "2", "--no-cam") == 0
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert [os.path.basename(m["source"]) for m in metrics["mistakes"]] == ["s12.png", "s8.png"]
    assert metrics["cam"] is None

    assert _evaluate(weights, data, tmp_path / "one", "--mistakes-class", "corner") == 0
    metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert [os.path.basename(m["source"]) for m in metrics["mistakes"]] == ["empty.png"]

    assert _evaluate(weights, data, tmp_path / "none", "--mistakes", "0") == 0
    assert not (tmp_path / "none" / "mistakes.png").exists()
    assert "mistakes" not in json.loads((tmp_path / "none" / "metrics.json").read_text())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mistakes-class", "corners"], "did you mean 'corner'"),
        (["--mistakes", "-1"], "expected 0 to 100"),
        (["--mistakes", "99999999999999999999999"], "expected 0 to 100"),
    ],
)
def test_mistake_options_refused_in_one_line(corner_run, tmp_path, capsys, flags, message):
    weights, data = corner_run
    code = _evaluate(weights, data, tmp_path / "x", *flags)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert message in err and "Traceback" not in err


def test_save_predictions_is_said_to_be_where_it_is(corner_run, tmp_path, capsys, monkeypatch):
    """The CSV goes where --save-predictions says (here the current folder), and the last
    lines say so instead of listing it among the eval folder's files."""
    weights, data = corner_run
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "eval"
    assert _evaluate(weights, data, out, "--save-predictions", "preds.csv") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert (tmp_path / "preds.csv").is_file() and not (out / "preds.csv").exists()
    assert lines[-2].startswith(f"written to {out}: ") and "preds.csv" not in lines[-2]
    assert lines[-1] == "predictions written to preds.csv"


def test_confusion_title_names_the_folder_not_its_absolute_path(corner_run, tmp_path, capsys):
    """The plot's title carries ``data · all``, not ``/tmp/…/data all``."""
    from unittest import mock

    from resnetv2.viz import confusion

    weights, data = corner_run
    with mock.patch.object(confusion, "save_figure", wraps=confusion.save_figure) as save:
        assert _evaluate(weights, data, tmp_path / "e", "--normalize", "true") == 0
    fig = save.call_args.args[0]
    title = "\n".join(t.get_text() for t in fig.texts)
    assert title.startswith("confusion matrix · data · all · top-1 ")
    assert str(tmp_path) not in title and "rows sum to 1" in title
