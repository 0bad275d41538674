"""``resnetv2 predict`` end to end: CSV/JSON output, per-file errors, exit codes."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from resnetv2 import create_model
from resnetv2.cli import main
from resnetv2.loading import save_model


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "model.safetensors"
    prep = {"input_size": [16, 16], "in_channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3,
            "interpolation": "bilinear"}  # fmt: skip
    save_model(
        create_model(8, num_classes=3), path, class_names=["a", "b", "c"], preprocessing=prep
    )
    return path


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (9, 30, 3), dtype=np.uint8)).save(root / "sub" / "w.jpg")
    (root / "sub" / "text.jpg").write_text("I am not a JPEG")
    (root / "empty.png").write_bytes(b"")
    return root


def test_mixed_folder_exit_code_and_rows(weights, images, capsys):
    code = main(["predict", str(weights), str(images), "--top-k", "2", "--batch-size", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 6
    status = {r["source"].rsplit("/", 1)[-1]: r["status"] for r in rows}
    assert status == {"0.png": "ok", "1.png": "ok", "2.png": "ok", "w.jpg": "ok",
                      "text.jpg": "error", "empty.png": "error"}  # fmt: skip
    for row in rows:
        if row["status"] == "ok":
            assert row["top1_label"] in "abc" and float(row["top1_prob"]) >= float(row["top2_prob"])
    assert "cannot read" in err and "text.jpg" in err and "empty.png" in err
    assert "predicted 4 of 6 inputs; 2 failed" in err


def test_all_good_json_output(weights, images, tmp_path, capsys):
    out = tmp_path / "preds.json"
    code = main(["predict", str(weights), str(images / "*.png"), "--out", str(out)])
    assert code == 1  # empty.png matches the glob and fails
    data = json.loads(out.read_text())
    assert [d["error"] is None for d in data].count(True) == 3
    code = main(["predict", str(weights), str(images / "[0-9].png"), "--out", str(out)])
    assert code == 2 and "--force" in capsys.readouterr().err
    code = main(["predict", str(weights), str(images / "[0-9].png"), "--out", str(out), "--force"])
    assert code == 0 and len(json.loads(out.read_text())) == 3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope.safetensors", "x.png"], "no such"),
        (["{weights}", "x.png", "--out", "p.txt"], ".csv or .json"),
        (["{weights}", "x.png", "--top-k", "0"], "--top-k"),
        (["{weights}", "x.png", "--device", "tpu9"], "is not a device"),
    ],
)
def test_user_errors_exit_2(weights, argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["predict", *[a.format(weights=weights) for a in argv]])
    except SystemExit as exc:  # refused by argparse (a flag's value)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_corrupt_weights_file_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    code = main(["predict", str(bad), "x.png"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("resnetv2 predict: error:")


@pytest.mark.parametrize("as_run", [False, True])
def test_swapped_arguments_say_the_weights_come_first(weights, images, as_run, capsys):
    """``predict FOLDER RUN``: the order to use, not "no such checkpoint file: FOLDER"."""
    given = weights.parent if as_run else weights  # a run folder holds model.safetensors
    code = main(["predict", str(images), str(given)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "the run or weights come first" in err
    assert f"resnetv2 predict {given} {images}" in err
