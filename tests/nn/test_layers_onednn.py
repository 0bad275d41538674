"""Strided 1×1 convs on few channels never reach oneDNN's faulty kernel (oneDNN issue 6035).

The checks run in subprocesses with ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN then picks its AVX2
kernels on any x86 CPU that has them, the ones that corrupt the heap on AVX2-only machines,
so the tests exercise the fault on the AVX-512 machines CI may get too, and a native crash
is one failed test instead of a dead suite.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from torch import nn

from resnetv2 import create_model
from resnetv2.nn.layers import SAFE_STRIDED_1X1_CHANNELS, SubsampledPointwiseConv, conv2d

AVX2_ENV = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}

# Narrow specs covering every place a strided 1×1 conv can appear: the projection shortcut
# (pre-activated or raw input), a bottleneck's conv1 when the stride sits there, both layouts.
NARROW_SPECS = [
    {"model": 8, "widths": (4, 8, 16)},
    {"model": 11, "block": "bottleneck", "widths": (2, 4, 8), "stride_at": "first_1x1"},
    {"model": 11, "block": "bottleneck", "widths": (2, 4, 8), "stride_at": "first_3x3"},
    {"model": 8, "widths": (3, 6, 12), "shortcut_input": "raw", "conv_bias": "all"},
    {"model": 18, "layout": "imagenet", "widths": (4, 8, 12, 16), "stem_width": 4},
]


def _strided_pointwise(model: nn.Module) -> list[nn.Conv2d]:
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.stride != (1, 1)
    ]


def _make(options: dict) -> nn.Module:
    options = dict(options)
    return create_model(options.pop("model"), num_classes=3, **options)


@pytest.mark.parametrize("options", NARROW_SPECS, ids=lambda o: "-".join(map(str, o.values())))
def test_every_narrow_strided_pointwise_conv_the_spec_builds_is_subsampled(options):
    convs = _strided_pointwise(_make(options))
    assert convs, "the spec should contain a strided 1x1 conv"
    for conv in convs:
        narrow = conv.in_channels < SAFE_STRIDED_1X1_CHANNELS
        assert isinstance(conv, SubsampledPointwiseConv) == narrow, conv


@pytest.mark.parametrize("size", [7, 8, 9])
def test_subsampled_conv_is_the_strided_conv(size):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    for stride in (2, 3):
        conv = conv2d(5, 7, 1, stride, bias=True)
        x = torch.randn(2, 5, size, size, dtype=torch.float64)
        conv = conv.double()
        expected = F.conv2d(x, conv.weight, conv.bias, stride=stride)
        torch.testing.assert_close(conv(x), expected, rtol=0, atol=0)


GRADIENT_CHECK = textwrap.dedent(
    """
    import json, sys
    import torch
    import torch.nn.functional as F
    from resnetv2 import create_model
    from resnetv2.nn.layers import conv2d

    specs = json.loads(sys.argv[1])
    torch.manual_seed(0)
    convs = [conv2d(cin, 8, 1, s) for cin in range(1, 18) for s in (2, 3)]
    for options in specs:
        options = dict(options)
        model = create_model(options.pop("model"), num_classes=3, **options)
        convs += [m for m in model.modules()
                  if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)
                  and m.stride != (1, 1)]
    worst = 0.0
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for conv in convs:
            for _ in range(3):  # repeated: the fault is a write past a buffer
                x = torch.randn(16, conv.in_channels, 9, 9)
                conv.zero_grad()
                xl = x.contiguous(memory_format=torch.channels_last)
                conv.to(memory_format=torch.channels_last)(xl).square().sum().backward()
                w = conv.weight.detach().double().requires_grad_()
                b = None if conv.bias is None else conv.bias.detach().double()
                F.conv2d(x.double(), w, b, stride=conv.stride).square().sum().backward()
                scale = w.grad.abs().max().item() + 1e-12
                worst = max(worst, (conv.weight.grad.double() - w.grad).abs().max().item() / scale)
    print(json.dumps({"checked": len(convs), "worst_relative_error": worst}))
    """
)


def test_weight_gradients_under_channels_last_match_a_float64_reference():
    specs = json.dumps([{**o, "widths": list(o["widths"])} for o in NARROW_SPECS])
    proc = subprocess.run(
        [sys.executable, "-c", GRADIENT_CHECK, specs],
        env=AVX2_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"crashed ({proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["checked"] >= 17 * 2 + len(NARROW_SPECS)
    assert result["worst_relative_error"] < 1e-4, result


@pytest.mark.slow
def test_narrow_net_training_survives_repeated_runs(tmp_path):
    # The command that aborted 10 of 10 times on an AVX2-only EPYC (fp32: no bf16 there).
    for attempt in range(3):
        proc = subprocess.run(
            [sys.executable, "-m", "resnetv2", "train", "--depth", "8", "--widths", "4,8,16"]
            + ["--epochs", "1", "--amp", "off", "--channels-last", "on", "-q"]
            + ["--out", str(tmp_path / f"run{attempt}")],
            env=AVX2_ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"attempt {attempt}: {proc.returncode} {proc.stderr[-2000:]}"
