"""Width against depth on this CPU: training images/s of candidate CIFAR architectures.

The time-to-accuracy question ("which net learns most in 30 minutes?") has two halves: how
much a net learns per epoch, and how many epochs the machine runs in the budget. This script
measures the second half for nets the spec can express, all in one process: a training step
(forward, backward, SGD) on random 32×32 data, bf16 autocast + channels_last as
``resnetv2 train`` runs them on a CPU with fast bf16 (fp32 with ``--fp32``), median of
``--rounds`` rounds of ``--steps`` steps. Printed: parameters and FLOPs from the spec, img/s,
and img/s relative to He et al.'s ResNet-20 (the first row), so a net at 0.5× gets half the
epochs in the same time. The accuracy half is in docs/time-to-accuracy.md.

    python benchmarks/arch_speed_cpu.py                       # every candidate below
    python benchmarks/arch_speed_cpu.py --only r20 --only wide8-s2 --batch 256
"""

from __future__ import annotations

import argparse

import torch
from _common import environment, median, print_table
from compile_cpu import make_step, seconds_per_step

from resnetv2 import count_flops, count_params, make_spec
from resnetv2.nn import ResNetV2

#: name -> make_spec options. "s2": every stage starts with stride 2 (32 -> 16 -> 8 -> 4).
CANDIDATES: dict[str, dict] = {
    "r20": {"depth": 20},
    "r32": {"depth": 32},
    "r14-w2": {"depth": 14, "widths": [32, 64, 128]},
    "r14-w1.5": {"depth": 14, "widths": [24, 48, 96]},
    "wide8": {"depth": 8, "units": [1, 1, 1], "widths": [64, 128, 256]},
    "wide8-s2": {"depth": 8, "units": [1, 1, 1], "widths": [64, 128, 256], "strides": [2, 2, 2]},
    "wide14-s2": {"depth": 14, "units": [2, 2, 2], "widths": [64, 128, 256], "strides": [2, 2, 2]},
    "wide8x1.5-s2": {
        "depth": 8,
        "units": [1, 1, 1],
        "widths": [96, 192, 384],
        "strides": [2, 2, 2],
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(CANDIDATES))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    args = parser.parse_args()
    print(environment())
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,))
    rows, reference = [], None
    for name in args.only or list(CANDIDATES):
        spec = make_spec(num_classes=10, **CANDIDATES[name])
        model = ResNetV2(spec).to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        step = make_step(model, optimizer, x, y, autocast=not args.fp32)
        seconds_per_step(step, 3)  # warm-up: allocator, oneDNN primitive caches
        per_step = median([seconds_per_step(step, args.steps) for _ in range(args.rounds)])
        rate = args.batch / per_step
        reference = reference or rate
        rows.append(
            [
                name,
                f"{count_params(spec) / 1e3:.0f} k",
                f"{count_flops(spec, 32) / 1e6:.1f} M",
                f"{rate:.0f}",
                f"{rate / reference:.2f}",
            ]
        )
    print_table(["net", "params", "FLOPs/img", "train img/s", "vs first"], rows)


if __name__ == "__main__":
    main()
