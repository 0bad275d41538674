"""The cost of the oneDNN workaround: strided 1×1 convs on few channels as subsample + 1×1.

``resnetv2.nn.layers.conv2d`` builds every strided 1×1 conv with fewer than 16 input
channels as :class:`~resnetv2.nn.layers.SubsampledPointwiseConv`, because oneDNN's strided
1×1 weight-gradient kernel corrupts the heap on channels_last input with so few channels
(oneDNN issue 6035). This script times a training step (forward, backward, SGD; fp32, as on
a CPU without bf16) of narrow nets, all in one process, rounds interleaved:

- ``workaround, channels_last``: what ``resnetv2 train`` runs now;
- ``plain strided, NCHW``: the only safe choice before the workaround (channels_last off);
- ``plain strided, channels_last`` (only with ``--unsafe``): the faulty kernel itself. Do
  not pass ``--unsafe`` on an AVX2-only CPU (or with ``ONEDNN_MAX_CPU_ISA=AVX2``): it aborts.

    python benchmarks/strided_pointwise.py
    python benchmarks/strided_pointwise.py --unsafe --batch 256 --size 32
"""

from __future__ import annotations

import argparse

import torch
from _common import environment, median, print_table
from compile_cpu import make_step, seconds_per_step

from resnetv2 import make_spec
from resnetv2.nn import ResNetV2, layers

NETS: dict[str, dict] = {
    "basic 4,8,16": {"depth": 8, "widths": [4, 8, 16]},
    "basic 8,12,16": {"depth": 14, "widths": [8, 12, 16]},
    "bottleneck 2,4,8 (first_1x1)": {"depth": 11, "block": "bottleneck", "widths": [2, 4, 8]},
}


def build(options: dict, workaround: bool, channels_last: bool) -> ResNetV2:
    saved = layers.SAFE_STRIDED_1X1_CHANNELS
    layers.SAFE_STRIDED_1X1_CHANNELS = saved if workaround else 0
    try:
        torch.manual_seed(0)
        model = ResNetV2(make_spec(**options))
    finally:
        layers.SAFE_STRIDED_1X1_CHANNELS = saved
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--unsafe", action="store_true", help="also time the faulty kernel")
    args = parser.parse_args()
    print(environment())
    variants = [("workaround, channels_last", True, True), ("plain strided, NCHW", False, False)]
    if args.unsafe:
        variants.append(("plain strided, channels_last", False, True))
    rows = []
    for name, options in NETS.items():
        steps = {}
        for label, workaround, channels_last in variants:
            model = build(options, workaround, channels_last)
            x = torch.randn(args.batch, 3, args.size, args.size)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = torch.randint(0, 10, (args.batch,))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            steps[label] = make_step(model, optimizer, x, y, autocast=False)
            seconds_per_step(steps[label], 3)  # warm-up
        times: dict[str, list[float]] = {label: [] for label in steps}
        for _ in range(args.rounds):
            for label, step in steps.items():
                times[label].append(seconds_per_step(step, args.steps))
        base = median(times[variants[0][0]])
        for label, values in times.items():
            t = median(values)
            rows.append([name, label, f"{args.batch / t:,.0f}", f"{base / t:.2f}x"])
    print_table(["net", "variant", "img/s", "speed vs workaround"], rows)


if __name__ == "__main__":
    main()
