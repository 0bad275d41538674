"""``resnetv2 export``: ONNX with dynamic batch, torch.export, overwrite refusal, keras wiring."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from resnetv2 import create_model
from resnetv2.cli import main
from resnetv2.loading import save_model


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("run")
    prep = {"input_size": [16, 16], "in_channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3,
            "interpolation": "bilinear"}  # fmt: skip
    save_model(create_model(8, num_classes=4), run / "model.safetensors", preprocessing=prep)
    return run


def test_onnx_dynamic_batch_from_run_folder(run_folder, capsys):
    code = main(["export", str(run_folder), "--dynamic-batch"])
    out = capsys.readouterr().out
    assert code == 0
    assert (run_folder / "model.onnx").is_file()
    assert "parity passed" in out and "batch 1" in out and "batch 7" in out
    code = main(["export", str(run_folder)])
    assert code == 2 and "--force" in capsys.readouterr().err


def test_torch_export_with_force(run_folder, tmp_path, capsys):
    out = tmp_path / "m.pt2"
    out.write_bytes(b"old")
    assert main(["export", str(run_folder), "--format", "torch-export", "--out", str(out)]) == 2
    assert out.read_bytes() == b"old"
    capsys.readouterr()
    args = ["export", str(run_folder), "--format", "torch-export", "--out", str(out), "--force"]
    assert main(args) == 0
    assert "torch.export.load round trip" in capsys.readouterr().out
    program = torch.export.load(str(out)).module()
    assert program(torch.randn(2, 3, 16, 16)).shape == (2, 4)


def test_keras_format_calls_the_keras_exporter(run_folder, tmp_path, monkeypatch, capsys):
    calls = []
    fake = types.ModuleType("resnetv2.keras.export")

    def export_keras_checked(model, out_path, **options):
        calls.append((model.num_classes, str(out_path)))
        out_path.write_bytes(b"keras")
        return out_path

    fake.export_keras_checked = export_keras_checked
    monkeypatch.setitem(sys.modules, "resnetv2.keras.export", fake)
    out = tmp_path / "m.keras"
    assert main(["export", str(run_folder), "--format", "keras", "--out", str(out)]) == 0
    assert calls == [(4, str(out))]


def test_missing_keras_extra_is_a_clear_error(run_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "resnetv2.keras.export", None)  # import fails
    code = main(
        ["export", str(run_folder), "--format", "keras", "--out", str(tmp_path / "k.keras")]
    )
    assert code == 2 and "keras extra" in capsys.readouterr().err.lower()
