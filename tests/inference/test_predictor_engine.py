"""The ``Predictor``'s engine arguments: checked at construction, reported once used."""

import importlib.util

import pytest
import torch

from resnetv2 import create_model
from resnetv2.inference import engines
from resnetv2.inference.engines import EngineUnavailableError
from resnetv2.predict import Predictor

PREP = {"input_size": [16, 16], "in_channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model(8, num_classes=3).eval()


def test_uninstalled_engine_fails_at_construction_before_any_file(model, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        engines.importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "onnxruntime" else real(name, *a, **k),
    )
    with pytest.raises(EngineUnavailableError, match=r"resnetv2\[export\]"):
        Predictor(model, preprocessing=PREP, device="cpu", engine="onnxruntime")


def test_engine_used_is_known_after_the_first_batch(model):
    predictor = Predictor(model, preprocessing=PREP, device="cpu", engine="torch")
    assert predictor.engine_used is None  # nothing run, nothing exported yet
    pixels = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    rows = predictor.predict(pixels)
    assert predictor.engine_used == "torch fp32" and len(rows) == 2


def test_bf16_predictor_reports_its_precision(model):
    predictor = Predictor(model, preprocessing=PREP, device="cpu", engine="torch", precision="bf16")
    predictor.predict(torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8))
    assert predictor.engine_used == "torch bf16"


class _RecordingRunner:
    """Stands in for an engine's runner: records PyTorch's intra-op threads at each call."""

    precision = "fp32"

    def __init__(self, name: str, model) -> None:
        self.name, self.model, self.threads = name, model, []
        # As the real runners declare it: only onnxruntime computes with threads of its own.
        self.own_threads = name == "onnxruntime"

    def __call__(self, batch):
        self.threads.append(torch.get_num_threads())
        return self.model(batch)


@pytest.mark.parametrize("name, inside", [("onnxruntime", 1), ("torch", 2)])
def test_tensor_ops_beside_onnxruntime_run_on_one_thread(model, name, inside):
    # onnxruntime has threads of its own: PyTorch's workers would only spin beside them.
    # The torch engine computes with PyTorch's threads, which must stay as they are.
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        predictor = Predictor(model, preprocessing=PREP, device="cpu", engine="torch")
        predictor._runner = runner = _RecordingRunner(name, model)
        predictor.predict(torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8))
        assert runner.threads == [inside]
        assert torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(previous)
