"""Runners: the agreement contract (fp32 engines give identical top-1 and probabilities within
1e-4 of eager fp32), ``auto``'s fallback, and a cached export that will not load."""

import json
import shutil

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from resnetv2 import create_model  # noqa: E402
from resnetv2.errors import ResNetV2Error  # noqa: E402
from resnetv2.export import ExportError  # noqa: E402
from resnetv2.inference import OnnxRuntimeRunner, TorchRunner, cache, make_runner  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = create_model(8, num_classes=10).eval()
    # Non-trivial BN statistics, so the export's BN folding is actually exercised.
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return net


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory, model):
    folder = tmp_path_factory.mktemp("onnx-cache")
    cache.cached_onnx(model, cache_dir=folder)  # the one real export most tests share
    return folder


@pytest.fixture
def no_export(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("exported although a valid cached export exists")

    monkeypatch.setattr(cache, "_export", refuse)


def test_onnxruntime_agrees_with_eager_fp32(model, cache_dir, no_export):
    runner = make_runner(model, engine="onnxruntime", cache_dir=cache_dir)
    assert isinstance(runner, OnnxRuntimeRunner)
    generator = torch.Generator().manual_seed(1)
    for batch in (1, 7, 64):
        images = torch.randn(batch, 3, 32, 32, generator=generator)
        with torch.inference_mode():
            expected = model(images).softmax(1)
        got = runner(images).softmax(1)
        assert got.dtype == torch.float32 and got.shape == expected.shape
        assert torch.equal(got.argmax(1), expected.argmax(1))
        assert (got - expected).abs().max().item() <= 1e-4


def test_auto_uses_the_cached_export(model, cache_dir, no_export):
    assert isinstance(make_runner(model, engine="auto", cache_dir=cache_dir), OnnxRuntimeRunner)


def test_auto_falls_back_to_torch_when_the_export_fails(model, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ExportError("ONNX export failed: unsupported operator")

    monkeypatch.setattr(cache, "_export", broken)
    runner = make_runner(model, engine="auto", cache_dir=tmp_path)
    assert isinstance(runner, TorchRunner)
    with pytest.raises(ExportError, match="unsupported operator"):
        make_runner(model, engine="onnxruntime", cache_dir=tmp_path)


def test_a_checksum_valid_file_that_does_not_load_is_rebuilt(model, cache_dir, tmp_path):
    shutil.copytree(cache_dir, tmp_path, dirs_exist_ok=True)
    (path,) = (tmp_path / "onnx").glob("*.onnx")
    path.write_bytes(b"not an onnx model")
    record = json.loads(path.with_suffix(".json").read_text())
    record["onnx_sha256"] = cache.file_sha256(path)  # the record agrees with the junk
    path.with_suffix(".json").write_text(json.dumps(record))
    runner = make_runner(model, engine="onnxruntime", cache_dir=tmp_path)
    images = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(runner(images).argmax(1), model(images).argmax(1))
    assert path.read_bytes() != b"not an onnx model"


def test_only_onnxruntime_declares_threads_of_its_own(model, cache_dir, no_export):
    # predict and evaluate run the tensor ops around such an engine on one PyTorch thread.
    assert make_runner(model, engine="onnxruntime", cache_dir=cache_dir).own_threads is True
    assert make_runner(model, engine="torch").own_threads is False


def test_torch_runner_is_eager_fp32(model):
    images = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(TorchRunner(model)(images), model(images))


def test_bf16_runs_in_bfloat16_and_returns_float32(model):
    images = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        fp32 = model(images)
    bf16 = make_runner(model, engine="auto", precision="bf16")(images)
    assert bf16.dtype == torch.float32
    assert not torch.equal(bf16, fp32)  # really computed at lower precision
    assert torch.allclose(bf16, fp32, rtol=0.1, atol=0.1)


def test_threads_must_be_positive(model):
    with pytest.raises(ResNetV2Error, match="threads"):
        make_runner(model, engine="torch", threads=0)
