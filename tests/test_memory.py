"""The training-memory estimate against what PyTorch actually keeps."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from resnetv2.memory import (
    MemoryEstimateError,
    activation_ledger,
    checkpointed_activation_peak,
    estimate_training_memory,
    segment_bounds,
    unit_weights,
)
from resnetv2.nn import create_model
from resnetv2.nn.recompute import enable_activation_checkpointing
from resnetv2.options import make_spec

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


def saved_bytes(model, x, y) -> int:
    """Distinct bytes autograd saves for backward (parameters and buffers excluded)."""
    skip = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
        if model.spec.num_classes:
            F.cross_entropy(out, y)
    return sum(seen.values())


CASES = [
    (20, {}),
    (29, {"block": "bottleneck"}),
    (56, {}),
    ("preresnet20", {"drop_path_rate": 0.3}),
    ("seed", {"depth": 29}),
    ("resnetv2_18", {"num_classes": 7}),
    ("keras_resnet50v2", {"num_classes": 5}),
    (20, {"norm": "group", "norm_groups": 4, "dropout": 0.2}),
    (20, {"stem_type": "none", "in_channels": 8, "num_classes": 0}),
    (20, {"final_norm": False, "head": "dense", "head_hidden": 7}),
    (20, {"stem_type": "conv7x7_zeropad_maxpool"}),
]


@pytest.mark.parametrize("model,options", CASES)
def test_saved_activations_match_autograd_exactly(model, options):
    torch.manual_seed(0)
    net = create_model(model, **options).train()
    size = 37 if net.spec.stem_type.startswith("conv7x7") else 13
    for batch in (2, 3):
        x = torch.randn(batch, net.spec.in_channels, size, size)
        y = torch.randint(0, max(1, net.spec.num_classes), (batch,))
        ledger = activation_ledger(net.spec, batch_size=batch, input_size=size)
        assert ledger.total == saved_bytes(net, x, y)


@pytest.mark.parametrize("segments", [None, 2, 5])
def test_checkpointed_model_keeps_only_stem_head_and_last_segment(segments):
    """Outside the checkpoints autograd saves exactly what stays resident during backward.

    That is the stem, the head, the input of every checkpointed segment (saved by the
    checkpoint itself) and everything the last, unchecked segment saves.
    """
    torch.manual_seed(0)
    net = enable_activation_checkpointing(create_model(56), segments)
    x, y = torch.randn(2, 3, 16, 16), torch.tensor([1, 2])
    ledger = activation_ledger(net.spec, batch_size=2, input_size=16)
    weights = unit_weights(net.spec)
    *checkpointed, (start, end) = segment_bounds(len(ledger.units), segments, weights)
    inputs = sum(ledger.unit_inputs[first] for first, _ in checkpointed)
    expected = ledger.stem + ledger.head + inputs + sum(ledger.units[start:end])
    assert saved_bytes(net, x, y) == expected
    assert expected < 0.6 * ledger.total


def test_param_grad_and_optimizer_bytes_match_real_tensors():
    spec = make_spec(20)
    model = create_model(spec)
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([1, 2])
    for name, opt_cls, keys in (
        ("sgd", torch.optim.SGD, ("momentum_buffer",)),
        ("adamw", torch.optim.AdamW, ("exp_avg", "exp_avg_sq")),
    ):
        kwargs = {"lr": 0.1, "momentum": 0.9} if name == "sgd" else {"lr": 1e-3}
        opt = opt_cls(model.parameters(), **kwargs)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        est = estimate_training_memory(spec, batch_size=2, input_size=8, optimizer=name)
        params = sum(p.numel() * p.element_size() for p in model.parameters())
        grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
        state = sum(s[k].numel() * s[k].element_size() for s in opt.state.values() for k in keys)
        assert (est.param_bytes, est.grad_bytes, est.optimizer_bytes) == (params, grads, state)
        assert est.params == sum(p.numel() for p in model.parameters())
        model.zero_grad(set_to_none=True)


def test_estimate_total_is_parts_plus_workspace_and_scales_with_batch():
    spec = make_spec(110)
    small = estimate_training_memory(spec, batch_size=8, input_size=32)
    big = estimate_training_memory(spec, batch_size=64, input_size=32)
    # Feature maps scale with the batch; only BN's per-channel statistics do not.
    assert 7.99 < big.activation_bytes / small.activation_bytes <= 8
    parts = ("param_bytes", "grad_bytes", "optimizer_bytes", "activation_bytes", "workspace_bytes")
    assert big.total_bytes == sum(getattr(big, p) for p in parts)
    assert big.param_bytes == small.param_bytes
    assert estimate_training_memory(spec, batch_size=8, input_size=32, dtype_bytes=2).param_bytes


def test_checkpointing_changes_the_prediction():
    spec = make_spec(1001)
    kwargs = {"batch_size": 64, "input_size": 32}
    plain = estimate_training_memory(spec, **kwargs)
    unit = estimate_training_memory(spec, checkpoint_segments=-1, **kwargs)
    sqrt = estimate_training_memory(spec, checkpoint_segments=18, **kwargs)
    one = estimate_training_memory(spec, checkpoint_segments=1, **kwargs)
    assert plain.activation_bytes == plain.activation_bytes_plain
    assert unit.activation_bytes_plain == plain.activation_bytes
    # Every unit: one stored input per unit, about a third of a bottleneck unit's tensors.
    assert 2.5 < plain.activation_bytes / unit.activation_bytes < 3.2
    # √n segments: far below per-unit; a single (unchecked) segment is the plain model.
    assert sqrt.activation_bytes < unit.activation_bytes / 3
    assert one.activation_bytes == plain.activation_bytes
    assert unit.checkpointing == "every unit" and sqrt.checkpointing == "18 segments"
    assert "without checkpointing" in sqrt.format()
    assert sqrt.to_dict()["total_bytes"] == sqrt.total_bytes


def test_checkpointed_peak_rule_by_hand():
    from resnetv2.memory import ActivationLedger

    ledger = ActivationLedger(
        stem=1, units=(10, 10, 10, 10), unit_inputs=(2, 2, 2, 2), head=5, largest_map=0
    )
    # Two segments: start of backward = stem + head + first input + last segment (20) = 28;
    # recomputing segment 0 = stem + its 20 saved bytes = 21.
    assert checkpointed_activation_peak(ledger, 2) == 28
    # Every unit: stem + head + three inputs + last unit = 22; recomputing unit j = 1 + 2j + 10.
    assert checkpointed_activation_peak(ledger, None) == 22
    assert segment_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert segment_bounds(3, None) == [(0, 1), (1, 2), (2, 3)]


def test_weighted_segments_balance_saved_bytes():
    assert segment_bounds(10, 3, [1] * 10) == [(0, 3), (3, 7), (7, 10)]
    # A heavy first unit gets a segment of its own; every segment keeps at least one unit.
    assert segment_bounds(5, 4, [100, 1, 1, 1, 1]) == [(0, 1), (1, 2), (2, 3), (3, 5)]
    spec = make_spec(1001)
    weights = unit_weights(spec)
    # Stage 1 units save about twice what stage 2 units do and four times what stage 3 do.
    assert weights[1] / weights[120] == pytest.approx(2, rel=0.01)
    assert weights[1] / weights[300] == pytest.approx(4, rel=0.02)
    bounds = segment_bounds(spec.total_units, 18, weights)
    sums = [sum(weights[a:b]) for a, b in bounds]
    assert len(bounds) == 18 and bounds[0][0] == 0 and bounds[-1][1] == spec.total_units
    assert max(sums) < 1.15 * sum(weights) / 18
    # The unchecked tail is made of cheap late units: longer than the equal-count split's.
    assert bounds[-1][1] - bounds[-1][0] > spec.total_units // 18 + 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0, "input_size": 32},
        {"batch_size": True, "input_size": 32},
        {"batch_size": 2, "input_size": (32,)},
        {"batch_size": 2, "input_size": 32, "optimizer": "lion"},
        {"batch_size": 2, "input_size": 32, "checkpoint_segments": 0},
        {"batch_size": 2, "input_size": 32, "dtype_bytes": 3},
    ],
)
def test_invalid_requests_rejected(kwargs):
    with pytest.raises(MemoryEstimateError):
        estimate_training_memory(make_spec(20), **kwargs)


def _summary(argv, capsys):
    from resnetv2.cli import summary

    parser = argparse.ArgumentParser()
    summary.register(parser.add_subparsers())
    args = parser.parse_args(["summary", *shlex.split(argv)])
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_summary_cli_estimate_memory(capsys):
    text = _summary("--depth 164 --batch-size 32 --estimate-memory", capsys)
    assert "estimated peak training memory: batch 32" in text
    argv = "--depth 164 --batch-size 32 --estimate-memory --json --checkpoint-activations"
    data = json.loads(_summary(argv, capsys))
    plain = estimate_training_memory(make_spec(164), batch_size=32, input_size=32)
    assert data["memory"]["checkpointing"] == "7 segments"  # round(sqrt(54 units))
    assert data["memory"]["activation_bytes_without_checkpointing"] == plain.activation_bytes
    assert data["memory"]["total_bytes"] < plain.total_bytes
    argv += " unit"
    data = json.loads(_summary(argv, capsys))
    assert data["memory"]["checkpointing"] == "every unit"
    assert data["memory"]["activation_bytes_without_checkpointing"] == plain.activation_bytes
    assert data["memory"]["total_bytes"] < plain.total_bytes
    argv = "--depth 164 --estimate-memory --json --checkpoint-activations 4"
    data = json.loads(_summary(argv, capsys))
    assert data["memory"]["checkpointing"] == "4 segments"


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", ["off", "unit", "sqrt"])
def test_estimate_within_25_percent_of_measured_peak_rss(checkpoint):
    """Real peak memory (RSS growth in a fresh process, see benchmarks/memory.py)."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to read the peak RSS")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--child", "--depth", "56"]
    cmd += ["--checkpoint", checkpoint, "--batch-size", "32", "--steps", "1", "--threads", "1"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert 0.75 < row["measured_bytes"] / row["estimate_bytes"] < 1.25


def test_parse_checkpoint_segments_and_sqrt():
    from resnetv2.memory import parse_checkpoint_segments

    assert parse_checkpoint_segments("sqrt") == "sqrt"
    assert parse_checkpoint_segments("unit") == -1
    assert parse_checkpoint_segments("7") == 7
    for bad in ("0", "-3", "lots", "2.5"):
        with pytest.raises(MemoryEstimateError):
            parse_checkpoint_segments(bad)
    spec = make_spec(1001)  # 333 units: round(√333) = 18 segments
    sqrt = estimate_training_memory(spec, batch_size=8, input_size=32, checkpoint_segments="sqrt")
    same = estimate_training_memory(spec, batch_size=8, input_size=32, checkpoint_segments=18)
    assert sqrt.checkpointing == "18 segments"
    assert sqrt.total_bytes == same.total_bytes
