"""bf16 autocast against fp32 on this CPU: training steps per second in one process.

Evidence for ``amp: auto`` (bf16 where the CPU has AVX-512 BF16 or AMX): the same network,
batch and random data, channels_last (the engine's CPU default), trained with fp32 and with
bf16 autocast in alternating rounds of ``--steps`` steps after ``--warmup`` steps each; the
medians and their ratio are printed for each ``--depth``. The end-to-end figure (whole
``resnetv2 train`` runs, accuracy included) is in docs/time-to-accuracy.md.

    python benchmarks/precision_cpu.py [--depth 20 --depth 56] [--batch 128] [--rounds 5]
"""

from __future__ import annotations

import argparse

import torch
from _common import environment, median, print_table
from compile_cpu import make_step, seconds_per_step

from resnetv2 import create_model
from resnetv2.engine.precision import cpu_bf16_support


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, action="append")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    print(environment())
    print("bf16 hardware:", cpu_bf16_support())
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,))
    rows = []
    for depth in args.depth or [20]:
        steps = {}
        for name, autocast in (("fp32", False), ("bf16", True)):
            model = create_model(depth, num_classes=10).to(memory_format=torch.channels_last)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            steps[name] = make_step(model, optimizer, x, y, autocast)
            seconds_per_step(steps[name], args.warmup)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for r in range(args.rounds):
            order = list(steps.items())
            for name, step in order if r % 2 == 0 else order[::-1]:
                times[name].append(seconds_per_step(step, args.steps))
        fp32, bf16 = median(times["fp32"]), median(times["bf16"])
        rows.append(
            [
                depth,
                args.batch,
                f"{args.batch / fp32:.0f}",
                f"{args.batch / bf16:.0f}",
                f"{fp32 / bf16:.2f}",
            ]
        )
    print_table(["depth", "batch", "fp32 img/s", "bf16 img/s", "bf16 / fp32"], rows)


if __name__ == "__main__":
    main()
