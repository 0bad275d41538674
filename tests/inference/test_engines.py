"""Engine selection: the ``auto`` rule both ways, explicit choices, and the env override."""

import importlib.util

import pytest

from resnetv2.errors import ResNetV2Error
from resnetv2.inference import engines
from resnetv2.inference.engines import EngineUnavailableError, resolve_engine


@pytest.fixture
def installed(monkeypatch):
    """Pretend the onnxruntime stack is installed (True) or that ``onnxruntime`` is not."""

    def set_installed(value: bool) -> None:
        real = importlib.util.find_spec

        def find_spec(name, *args, **kwargs):
            if name in engines.ONNXRUNTIME_MODULES:
                return object() if value else (None if name == "onnxruntime" else object())
            return real(name, *args, **kwargs)

        monkeypatch.setattr(engines.importlib.util, "find_spec", find_spec)

    monkeypatch.delenv(engines.ENGINE_ENV, raising=False)
    return set_installed


def test_auto_picks_onnxruntime_when_installed(installed):
    installed(True)
    assert resolve_engine("auto") == "onnxruntime"
    assert resolve_engine(None) == "onnxruntime"


def test_auto_falls_back_to_torch_when_onnxruntime_is_missing(installed):
    installed(False)
    assert resolve_engine("auto") == "torch"
    assert resolve_engine(None) == "torch"


def test_auto_keeps_torch_off_the_cpu_and_for_bf16(installed):
    installed(True)
    assert resolve_engine("auto", "cuda") == "torch"
    assert resolve_engine("auto", "cpu", "bf16") == "torch"


def test_explicit_torch_is_torch_even_when_onnxruntime_is_installed(installed):
    installed(True)
    assert resolve_engine("torch") == "torch"


def test_uninstalled_onnxruntime_names_the_extra(installed):
    installed(False)
    with pytest.raises(EngineUnavailableError) as info:
        resolve_engine("onnxruntime")
    message = str(info.value)
    assert "resnetv2[export]" in message and "onnxruntime" in message
    assert "\n" not in message


def test_onnxruntime_refuses_other_devices_and_bf16(installed):
    installed(True)
    with pytest.raises(EngineUnavailableError, match="runs on the CPU"):
        resolve_engine("onnxruntime", "cuda")
    with pytest.raises(EngineUnavailableError, match="fp32 only"):
        resolve_engine("onnxruntime", "cpu", "bf16")


def test_unknown_names_say_what_is_valid():
    with pytest.raises(ResNetV2Error, match="auto, torch, onnxruntime"):
        resolve_engine("tensorrt")
    with pytest.raises(ResNetV2Error, match="fp32, bf16"):
        resolve_engine("torch", "cpu", "fp16")


def test_environment_pins_the_default(installed, monkeypatch):
    installed(True)
    monkeypatch.setenv(engines.ENGINE_ENV, "torch")
    assert resolve_engine(None) == "torch"
    assert resolve_engine("onnxruntime") == "onnxruntime"  # an explicit choice wins
    monkeypatch.setenv(engines.ENGINE_ENV, "fast")
    with pytest.raises(ResNetV2Error, match="RESNETV2_ENGINE"):
        resolve_engine(None)
