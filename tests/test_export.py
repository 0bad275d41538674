"""Export: ONNX (checker + onnxruntime parity in a fresh process) and torch.export round trip."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from resnetv2 import create_model
from resnetv2.errors import ResNetV2Error
from resnetv2.export import ExportError, export_model

SHAPE = (3, 16, 16)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = create_model(8, num_classes=5).eval()
    with torch.no_grad():  # non-trivial BN statistics, so eval-mode export is really tested
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    net.metadata = {"class_names": list("abcde"), "preprocessing": {"input_size": [16, 16]}}
    return net


@pytest.fixture(scope="module")
def onnx_export(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_model(model, path, "onnx", input_shape=SHAPE, dynamic_batch=True), path


def test_onnx_export_reports_parity(onnx_export):
    result, path = onnx_export
    assert path.is_file()
    assert result.passed and set(result.max_abs_diff) == {1, 7}
    assert max(result.max_abs_diff.values()) <= 1e-4
    assert "onnx.checker passed" in result.summary()


def test_onnx_checker_and_fresh_process_parity(model, onnx_export):
    import onnx

    _, path = onnx_export
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["resnetv2.class_names"]) == list("abcde")
    assert json.loads(props["resnetv2.spec"])["num_classes"] == 5
    # Independently of the exporter's own check: onnxruntime in a new interpreter.
    for batch in (1, 7):
        x = torch.randn(batch, *SHAPE, generator=torch.Generator().manual_seed(batch))
        code = (
            "import sys, numpy as np, onnxruntime as ort;"
            "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider']);"
            "x = np.load(sys.argv[2]); np.save(sys.argv[3], s.run(None, {'input': x})[0])"
        )
        xin, yout = path.with_name(f"x{batch}.npy"), path.with_name(f"y{batch}.npy")
        np.save(xin, x.numpy())
        subprocess.run([sys.executable, "-c", code, str(path), str(xin), str(yout)], check=True)
        with torch.no_grad():
            eager = model(x).numpy()
        got = np.load(yout)
        assert got.shape == (batch, 5)
        assert np.abs(got - eager).max() <= 1e-4


def test_refuses_to_overwrite(model, onnx_export):
    _, path = onnx_export
    before = path.read_bytes()
    with pytest.raises(ResNetV2Error, match="--force"):
        export_model(model, path, "onnx", input_shape=SHAPE)
    assert path.read_bytes() == before


def test_torch_export_round_trip(model, tmp_path):
    path = tmp_path / "model.pt2"
    result = export_model(model, path, "torch-export", input_shape=SHAPE, dynamic_batch=True)
    assert result.passed and set(result.max_abs_diff) == {1, 7}
    program = torch.export.load(str(path)).module()
    x = torch.randn(3, *SHAPE)
    with torch.no_grad():
        assert (program(x) - model(x)).abs().max().item() <= 1e-4


def test_failed_parity_writes_nothing(model, tmp_path):
    path = tmp_path / "model.pt2"
    with pytest.raises(ExportError, match="differs from eager"):
        # A negative tolerance makes any export "differ": the file must not appear.
        export_model(model, path, "torch-export", input_shape=SHAPE, tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_bad_format_and_missing_folder(model, tmp_path):
    with pytest.raises(ResNetV2Error, match="format"):
        export_model(model, tmp_path / "m.tflite", "tflite")
    with pytest.raises(ResNetV2Error, match="does not exist"):
        export_model(model, tmp_path / "no" / "m.onnx", "onnx")
