"""Training throughput on an accelerator: resnetv2 vs timm and pytorchcv, same settings.

Evidence for the GPU suite (``benchmarks/gpu_suite.sh``): training images/s of ours vs timm
``resnetv2_50`` (224×224) and vs pytorchcv ``preresnet164bn_cifar10`` (32×32), in one
process, same random batch, with the engine's GPU settings — bf16 autocast + channels_last —
once eager and once under ``torch.compile`` (``--compile both``). Each round times ``--steps``
steps of ours then the peer (order alternating every round) after ``--warmup`` untimed steps
(which also absorb compilation); the median img/s and ours / peer are printed. Timing waits
for the device (``torch.cuda.synchronize``).

    python benchmarks/gpu_throughput.py --device cuda --compile both
    python benchmarks/gpu_throughput.py --smoke          # seconds on a CPU: checks the script
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from _common import environment, median, print_table
from throughput_cpu import make_pairs


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(model, optimizer, x, y, steps: int, device: torch.device) -> float:
    """Images per second of ``steps`` training steps (bf16 autocast on the model's device)."""
    model.train()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync(device)
    return steps * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", choices=("off", "on", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-cifar", type=int, default=256)
    parser.add_argument("--batch-imagenet", type=int, default=128)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, CPU, no compile")
    args = parser.parse_args()
    if args.smoke:
        args.device, args.compile, args.rounds, args.steps, args.warmup = "cpu", "off", 2, 1, 1
        args.batch_cifar, args.batch_imagenet = 2, 2
    device = torch.device(args.device)
    print(environment(), f"device {device}", sep=", ")
    if device.type == "cuda":
        print("gpu:", torch.cuda.get_device_name(device))
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    torch.manual_seed(0)
    rows = []
    for label, ours, peer, size in make_pairs():
        if args.smoke:
            size = min(size, 64)
        batch = args.batch_cifar if size == 32 else args.batch_imagenet
        x = torch.randn(batch, 3, size, size, device=device)
        x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (batch,), device=device)
        nets = {}
        for name, model in (("ours", ours), ("peer", peer)):
            model = model.to(device, memory_format=torch.channels_last)
            nets[name] = (model, torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9))
        for compiled in modes:
            runners = {
                name: (torch.compile(model) if compiled else model, opt)
                for name, (model, opt) in nets.items()
            }
            for model, opt in runners.values():
                timed_steps(model, opt, x, y, args.warmup, device)
            speeds: dict[str, list[float]] = {"ours": [], "peer": []}
            for r in range(args.rounds):
                order = list(runners.items())
                for name, (model, opt) in order if r % 2 == 0 else order[::-1]:
                    speeds[name].append(timed_steps(model, opt, x, y, args.steps, device))
            o, p = median(speeds["ours"]), median(speeds["peer"])
            setting = "bf16+CL" + (" +compile" if compiled else "")
            rows.append([label, setting, batch, f"{o:.0f}", f"{p:.0f}", f"{o / p:.3f}"])
    print_table(["model", "settings", "batch", "ours img/s", "peer img/s", "ours / peer"], rows)


if __name__ == "__main__":
    main()
