"""CPU training and inference throughput: resnetv2 vs its peers on the same architecture.

Evidence: images/s of ours vs pytorchcv ``preresnet164bn_cifar10`` (32×32) and vs timm
``resnetv2_50`` (224×224), in one process, same batch, same random data, both in
``torch.float32`` on CPU. Each round times ``--steps`` steps of ours then the peer (order
alternates every round), after ``--warmup`` untimed steps each; ``--rounds`` rounds; the
median img/s is reported with the ratio ours/peer. Training = forward + cross-entropy +
backward + SGD step (train mode); inference = forward under ``torch.inference_mode`` (eval).
Target: ratio ≥ 0.98.

    python benchmarks/throughput_cpu.py [--rounds 5] [--steps 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import environment, median, print_table


def make_pairs():
    import timm
    from pytorchcv.model_provider import get_model

    from resnetv2 import create_model

    return [
        (
            "preresnet164 32x32",
            create_model("preresnet164"),
            get_model("preresnet164bn_cifar10"),
            32,
        ),
        ("resnetv2_50 224x224", create_model("resnetv2_50"), timm.create_model("resnetv2_50"), 224),
    ]


def run(model, x, y, steps: int, train: bool) -> float:
    if train:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    else:
        model.eval()
        start = time.perf_counter()
        with torch.inference_mode():
            for _ in range(steps):
                model(x)
    return steps * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-cifar", type=int, default=64)
    parser.add_argument("--batch-imagenet", type=int, default=8)
    args = parser.parse_args()
    print(environment())
    torch.manual_seed(0)
    rows = []
    for label, ours, peer, size in make_pairs():
        batch = args.batch_cifar if size == 32 else args.batch_imagenet
        x = torch.randn(batch, 3, size, size)
        y = torch.randint(0, 10 if size == 32 else 1000, (batch,))
        for mode, train in (("train", True), ("infer", False)):
            for model in (ours, peer):
                run(model, x, y, args.warmup, train)
            speeds: dict[str, list[float]] = {"ours": [], "peer": []}
            for r in range(args.rounds):
                order = [("ours", ours), ("peer", peer)]
                for name, model in order if r % 2 == 0 else order[::-1]:
                    speeds[name].append(run(model, x, y, args.steps, train))
            o, p = median(speeds["ours"]), median(speeds["peer"])
            rows.append([label, mode, batch, f"{o:.1f}", f"{p:.1f}", f"{o / p:.3f}"])
    print_table(["model", "mode", "batch", "ours img/s", "peer img/s", "ours / peer"], rows)


if __name__ == "__main__":
    main()
