"""``evaluate --save-predictions`` and ``--tta``: per-file rows that agree with ``predict``.

The files are what users have: non-square images of mixed sizes, PNG and JPEG, grey and RGB;
the models take 3 or 1 channels. For every file, ``evaluate`` (run's own split through the
cached loader, or a folder) and ``predict`` must give the same top-1 and probabilities
within 1e-5.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import resnetv2
from resnetv2.cli import main
from resnetv2.evaluation.run import evaluate_run
from resnetv2.loading import save_model
from resnetv2.predict import Predictor, csv_header

SIZES = [(13, 21), (30, 17), (16, 16), (25, 40), (19, 11), (22, 29)]


def _make_folder(root):
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i, (h, w) in enumerate(SIZES):
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            image = Image.fromarray(pixels).convert("L") if (i + c) % 2 else Image.fromarray(pixels)
            suffix = ".jpg" if i % 3 == 0 else ".png"
            image.save(root / name / f"{i}{suffix}", quality=90)
    return root


def _make_run(tmp_path, channels):
    data = _make_folder(tmp_path / "data")
    torch.manual_seed(channels)
    model = resnetv2.create_model(8, num_classes=2, in_channels=channels, stem_width=8)
    run = tmp_path / "run"
    run.mkdir()
    prep = {"input_size": [16, 16], "in_channels": channels,
            "mean": [0.45] * channels, "std": [0.27] * channels}  # fmt: skip
    save_model(model, run / "model.safetensors", class_names=["cat", "dog"], preprocessing=prep)
    cfg = {"data": {"source": str(data), "val_split": 0.5}, "train": {"seed": 0}}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    return run, data


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _assert_matches_predict(run, rows, tta="none"):
    predictor = Predictor.from_weights(run, top_k=2, tta=tta)
    predicted = predictor.predict([row["source"] for row in rows])
    for row, pred in zip(rows, predicted, strict=True):
        assert pred.ok and row["status"] == "ok"
        assert row["top1_label"] == pred.labels[0]
        assert float(row["top1_prob"]) == pytest.approx(pred.probabilities[0], abs=1e-5)
        assert float(row["top2_prob"]) == pytest.approx(pred.probabilities[1], abs=1e-5)
        assert row["correct"] == str(int(row["top1_label"] == row["true_label"]))
        assert row["tta"] == tta


@pytest.mark.parametrize("channels", [3, 1])
def test_run_split_and_folder_agree_with_predict(tmp_path, channels):
    run, data = _make_run(tmp_path, channels)
    own = evaluate_run(run, progress=False, save_predictions=tmp_path / "own.csv", top_k=2)
    rows = _rows(own.files["predictions"])
    assert list(rows[0]) == [*csv_header(2), "true_label", "correct", "tta"]
    assert len(rows) == own.result.count == 6  # half of 12 files
    assert all(row["source"].startswith(str(data)) for row in rows)
    _assert_matches_predict(run, rows)
    # CSV and metrics agree on what was right.
    assert sum(int(r["correct"]) for r in rows) == round(own.result.top1 * 6)

    whole = evaluate_run(
        run, data=str(data), progress=False, save_predictions=tmp_path / "all.csv", top_k=2
    )
    rows = _rows(whole.files["predictions"])
    assert len(rows) == 12
    _assert_matches_predict(run, rows)


def test_flip_tta_is_recorded_and_matches_predict(tmp_path):
    run, data = _make_run(tmp_path, 3)
    out = tmp_path / "preds.csv"
    code = main(["evaluate", str(run), "--data", str(data), "--tta", "flip",
                 "--save-predictions", str(out), "--top-k", "2", "-q", "--json"])  # fmt: skip
    assert code == 0
    rows = _rows(out)
    _assert_matches_predict(run, rows, tta="flip")
    metrics = (run / "eval" / "metrics.json").read_text()
    assert '"tta": "flip"' in metrics
    plain = evaluate_run(run, data=str(data), progress=False)
    flipped = evaluate_run(run, data=str(data), progress=False, tta="flip")
    assert plain.result.loss != pytest.approx(flipped.result.loss, abs=1e-6)


def test_unreadable_files_are_listed_with_their_class(tmp_path):
    run, data = _make_run(tmp_path, 3)
    (data / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "preds.csv"
    with pytest.warns(UserWarning, match="skipped 1 of 13"):
        result = evaluate_run(run, data=str(data), progress=False, save_predictions=out)
    assert result.result.count == 12
    (bad,) = [row for row in _rows(out) if row["status"] == "error"]
    assert bad["source"].endswith("broken.png") and bad["true_label"] == "dog"
    assert bad["error"].startswith("not_an_image") and bad["correct"] == ""


def test_unknown_tta_exits_2_naming_the_valid_values(tmp_path, capsys):
    run, _ = _make_run(tmp_path, 3)
    for command in (["evaluate", str(run)], ["predict", str(run), str(tmp_path)]):
        try:
            code = main([*command, "--tta", "rotate"])
        except SystemExit as exc:  # argparse's own exit
            code = exc.code
        assert code == 2
        err = capsys.readouterr().err
        assert "'none'" in err and "'flip'" in err and "Traceback" not in err


def test_builtin_data_refuses_a_resize_rule_it_cannot_apply(tmp_path, capsys):
    torch.manual_seed(0)
    model = resnetv2.create_model(8, in_channels=1, num_classes=10, stem_width=4)
    prep = {"input_size": [8, 8], "in_channels": 1, "mean": [0.3], "std": [0.4],
            "interpolation": "bicubic", "crop_pct": 0.875}  # fmt: skip
    weights = tmp_path / "m.safetensors"
    save_model(model, weights, class_names=[str(i) for i in range(10)], preprocessing=prep)
    assert main(["evaluate", str(weights), "--data", "digits", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bicubic" in err and "--data DIR" in err
