"""``--engine``/``--precision``/``--threads`` on ``predict`` and ``evaluate``: the default
engine agrees with eager fp32 file by file, and an uninstalled engine is a one-line exit 2."""

from __future__ import annotations

import csv
import importlib.util
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from resnetv2 import create_model
from resnetv2.cli import main
from resnetv2.inference import engines
from resnetv2.loading import save_model

CLASSES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "model.safetensors"
    prep = {"input_size": [16, 16], "in_channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3,
            "interpolation": "bilinear"}  # fmt: skip
    save_model(create_model(8, num_classes=4), path, class_names=CLASSES, preprocessing=prep)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Class folders of random images (so ``evaluate --data`` can read them too)."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(48):
        sub = root / CLASSES[i % 4]
        sub.mkdir(exist_ok=True)
        pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(sub / f"{i:02d}.png")
    return root


@pytest.fixture
def default_engine(monkeypatch, tmp_path_factory):
    """The user's default (the test suite pins torch), exports in a shared temp cache."""
    monkeypatch.delenv(engines.ENGINE_ENV, raising=False)
    monkeypatch.setenv("RESNETV2_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "engine-cache"))


@pytest.fixture
def uninstalled(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        engines.importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "onnxruntime" else real(name, *a, **k),
    )


def _rows(text: str) -> dict[str, dict[str, str]]:
    return {row["source"]: row for row in csv.DictReader(io.StringIO(text))}


def test_default_engine_is_onnxruntime_with_eager_top1_on_every_file(
    weights, folder, default_engine, capsys
):
    pytest.importorskip("onnxruntime")
    assert main(["predict", str(weights), str(folder), "--top-k", "4", "--batch-size", "5"]) == 0
    fast, err = capsys.readouterr()
    assert "(engine onnxruntime fp32)" in err
    assert main(["predict", str(weights), str(folder), "--top-k", "4", "--engine", "torch"]) == 0
    eager, err = capsys.readouterr()
    assert "(engine torch fp32)" in err
    fast, eager = _rows(fast), _rows(eager)
    assert fast.keys() == eager.keys() and len(fast) == 48
    for source, row in fast.items():
        assert row["top1_index"] == eager[source]["top1_index"], source
        for k in range(1, 5):  # the printed probabilities, 6 decimals
            assert abs(float(row[f"top{k}_prob"]) - float(eager[source][f"top{k}_prob"])) <= 1e-4


def test_evaluate_default_engine_scores_like_torch(weights, folder, default_engine, tmp_path):
    pytest.importorskip("onnxruntime")
    metrics = {}
    for engine in ("auto", "torch"):
        out = tmp_path / engine
        args = ["evaluate", str(weights), "--data", str(folder), "--out", str(out), "-q"]
        assert main([*args, "--engine", engine, "--threads", "1"]) == 0
        metrics[engine] = json.loads((out / "metrics.json").read_text())
    assert metrics["auto"]["confusion_matrix"] == metrics["torch"]["confusion_matrix"]
    assert metrics["auto"]["top1"] == metrics["torch"]["top1"]
    assert abs(metrics["auto"]["loss"] - metrics["torch"]["loss"]) < 1e-4


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_uninstalled_engine_is_one_line_naming_the_extra(
    weights, folder, uninstalled, command, capsys
):
    args = [str(weights), str(folder)] if command == "predict" else [str(weights), "-q"]
    args += ["--data", str(folder)] if command == "evaluate" else []
    assert main([command, *args, "--engine", "onnxruntime"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "resnetv2[export]" in err and "--engine torch" in err


def test_default_engine_without_onnxruntime_runs_torch(
    weights, folder, default_engine, uninstalled, capsys
):
    assert main(["predict", str(weights), str(folder)]) == 0
    assert "(engine torch fp32)" in capsys.readouterr().err


def test_bf16_on_onnxruntime_and_bad_threads_are_usage_errors(weights, folder, capsys):
    assert main(["predict", str(weights), str(folder), "--engine", "onnxruntime",
                 "--precision", "bf16"]) == 2  # fmt: skip
    assert "bf16 needs --engine torch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["predict", str(weights), str(folder), "--threads", "0"])
    assert info.value.code == 2
    assert "argument --threads: must be an integer in 1..1,024" in capsys.readouterr().err


def test_bf16_torch_predicts(weights, folder, capsys):
    assert main(["predict", str(weights), str(folder), "--precision", "bf16"]) == 0
    out, err = capsys.readouterr()
    assert "(engine torch bf16)" in err and len(_rows(out)) == 48
