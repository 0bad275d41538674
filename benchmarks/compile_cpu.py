"""torch.compile on CPU: compile time against steady-state gain, and the run length where it pays.

Evidence for the default of ``train.compile`` (issue: "on by default only where it wins end to
end for the run's length"). In one process, for a CIFAR-sized net (default: the ``cifar-cpu``
recipe's network at its batch size), with the engine's CPU settings (bf16 autocast where
``amp: auto`` picks it, channels_last):

1. eager: ``--warmup`` steps, then the median over ``--rounds`` of ``--steps`` training steps;
2. compiled (``torch.compile`` of the same model): the wall time of the first training step
   and of the first evaluation pass (each triggers a compilation: train and eval mode are
   different graphs), then the same steady-state measurement.

The end-to-end estimate for a run that takes ``T`` minutes eager is
``compile_s + T * eager_s_per_step / compiled_s_per_step``; the table prints it for 5, 30
and 90 minute runs. Rounds alternate eager and compiled, so background load hits both alike.

    python benchmarks/compile_cpu.py [--depth 20] [--batch 128] [--rounds 5] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from _common import environment, median, print_table

from resnetv2 import create_model
from resnetv2.engine.precision import choose_precision


def make_step(model, optimizer, x, y, autocast: bool):
    def step() -> None:
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def seconds_per_step(step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--widths", default=None, help="e.g. 16,32,64 (default: the layout's)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--amp", choices=("auto", "on", "off"), default="auto")
    args = parser.parse_args()
    print(environment())
    precision = choose_precision(args.amp, torch.device("cpu"))
    print("precision:", precision.describe())
    options = {"widths": [int(w) for w in args.widths.split(",")]} if args.widths else {}
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.randint(0, 10, (args.batch,))

    def build():
        model = create_model(args.depth, num_classes=10, **options)
        model = model.to(memory_format=torch.channels_last)
        return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    eager_model, eager_opt = build()
    eager = make_step(eager_model, eager_opt, x, y, precision.autocast)
    seconds_per_step(eager, args.warmup)

    compiled_model, compiled_opt = build()
    compiled_fn = torch.compile(compiled_model)
    compiled = make_step(compiled_fn, compiled_opt, x, y, precision.autocast)
    start = time.perf_counter()
    compiled()
    compile_train = time.perf_counter() - start
    compiled_model.eval()
    start = time.perf_counter()
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision.autocast):
        compiled_fn(x)
    compile_eval = time.perf_counter() - start
    seconds_per_step(compiled, args.warmup)

    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for r in range(args.rounds):
        order = [("eager", eager), ("compiled", compiled)]
        for name, step in order if r % 2 == 0 else order[::-1]:
            times[name].append(seconds_per_step(step, args.steps))
    e, c = median(times["eager"]), median(times["compiled"])
    compile_s = compile_train + compile_eval
    print(
        f"first compiled training step {compile_train:.1f} s, first compiled eval pass "
        f"{compile_eval:.1f} s; steady state: eager {args.batch / e:.0f} img/s, compiled "
        f"{args.batch / c:.0f} img/s (compiled / eager = {e / c:.3f})"
    )
    rows = []
    for minutes in (5, 30, 90):
        total = compile_s / 60 + minutes * c / e
        verdict = "compile wins" if total < minutes else "eager wins"
        rows.append([minutes, f"{total:.2f}", f"{minutes / total:.3f}", verdict])
    print_table(["eager run (min)", "compiled run (min)", "speed-up end to end", "verdict"], rows)


if __name__ == "__main__":
    main()
