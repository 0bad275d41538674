"""The precision choice: bf16 autocast where the hardware is fast at it, fp32 elsewhere."""

from __future__ import annotations

import pytest
import torch

from resnetv2.engine import precision
from resnetv2.engine.precision import choose_precision, cpu_bf16_support

CPU = torch.device("cpu")


@pytest.fixture
def fast_cpu(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)


@pytest.fixture
def slow_cpu(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)


def test_auto_on_a_cpu_with_bf16_arithmetic_uses_bf16(fast_cpu):
    choice = choose_precision("auto", CPU)
    assert choice.autocast and choice.name == "bf16"
    assert "AVX-512 BF16" in choice.reason and choice.warning is None


def test_amx_alone_counts_as_fast(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert cpu_bf16_support() == (True, "the CPU has AMX tiles")


def test_auto_on_a_cpu_without_bf16_arithmetic_stays_fp32(slow_cpu):
    choice = choose_precision("auto", CPU)
    assert not choice.autocast and choice.name == "fp32"
    assert "neither AMX nor AVX-512 BF16" in choice.reason


def test_a_torch_without_the_probes_is_treated_as_slow(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert choose_precision("auto", CPU).name == "fp32"


def test_on_where_bf16_is_slow_is_honoured_with_a_warning(slow_cpu):
    choice = choose_precision("on", CPU)
    assert choice.autocast
    assert "likely slower than fp32" in choice.warning and "--amp auto" in choice.warning


def test_on_where_bf16_is_fast_has_no_warning(fast_cpu):
    assert choose_precision("on", CPU).warning is None


def test_off_is_fp32_everywhere(fast_cpu):
    assert choose_precision("off", CPU).name == "fp32"
    assert choose_precision("off", torch.device("cuda")).name == "fp32"


def test_cuda_defaults_to_bf16(slow_cpu):
    choice = choose_precision("auto", torch.device("cuda"))
    assert choice.autocast and choice.reason == "CUDA device"


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="auto, on or off"):
        choose_precision("fast", CPU)


def test_describe_names_the_choice_and_reason(fast_cpu):
    text = choose_precision("auto", CPU).describe()
    assert text.startswith("bf16 autocast") and "AVX-512 BF16" in text


def test_module_reads_torch_at_call_time(monkeypatch):
    # No cached answer: a mocked capability takes effect immediately (tests above rely on it).
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert precision.cpu_bf16_support()[0]
