"""Peak training memory and step time with and without activation checkpointing.

Evidence this script produces (docs/bench-memory.md records one run):
for each depth of He et al.'s CIFAR pre-activation ResNets and each checkpointing setting
(``off``, ``unit`` = every residual unit, ``sqrt`` = round(√n) segments, or an integer), one
fresh subprocess trains a few SGD steps (momentum 0.9, cross-entropy, random 32×32 images) and
reports

- **measured peak** — on CPU: parameters + momentum buffers (exact tensor sizes, allocated
  before the baseline) + the peak resident-set growth during the measured steps. The child
  first runs a warm-up step on 2 images (so every kernel's code pages and the optimizer state
  exist), frees the gradients, records ``VmRSS`` as the baseline, resets the high-water mark
  (writing ``5`` to ``/proc/self/clear_refs``) and after the measured steps reads ``VmHWM``
  from ``/proc/self/status``. ``MALLOC_MMAP_THRESHOLD_`` is pinned so that glibc serves every
  large tensor with ``mmap`` and returns it to the OS on free; without that, freed activation
  memory stays in the heap and later steps hide their peak. On CUDA (``--device cuda``):
  ``torch.cuda.max_memory_allocated`` over the measured steps, which already includes
  parameters and optimizer state.
- **estimate** — :func:`resnetv2.memory.estimate_training_memory` for the same setting, and
  the ratio measured / estimate.
- **step time** (``--timing-rounds R``) — in a separate process without the pinned mmap
  threshold (whose page faults would inflate the step time in proportion to the memory
  used), one model trains with every setting in turn, step by step, for ``R`` rounds after a
  warm-up round; the median wall time and CPU time (``time.process_time``, all threads of
  the process) per setting are reported, with ratios against ``off``. On a CPU shared with
  other work, wall time measures the neighbours as much as the code; CPU time with
  ``--threads 1`` counts only the work done, so the ratios use CPU time.

Run: ``python benchmarks/memory.py --depths 20 110 164 1001 --batch-size 64
--checkpoint off unit sqrt --threads 1 --timing-rounds 3``; ``--train-deep 10001`` times a
few training steps of a 10,001-layer net instead. Everything runs on whatever machine you
are on; docs/bench-memory.md says which machine produced its numbers. Timings on a shared
CPU are noisy: compare rows from the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time


def _proc_status() -> dict[str, int]:
    with open("/proc/self/status") as fh:
        return {k: int(v) * 1024 for k, v in re.findall(r"(Vm\w+):\s+(\d+) kB", fh.read())}


def child(args: argparse.Namespace) -> dict:
    import gc

    import torch
    import torch.nn.functional as F

    from resnetv2.memory import estimate_training_memory
    from resnetv2.nn import create_model
    from resnetv2.nn.recompute import enable_activation_checkpointing, resolve_segments

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = create_model(args.depth, device=device, drop_path_rate=args.drop_path_rate)
    units = model.spec.total_units
    setting = {"off": False, "unit": None}.get(args.checkpoint, args.checkpoint)
    if setting not in (False, None) and setting != "sqrt":
        setting = int(setting)
    resolved = resolve_segments(setting, units)
    enable_activation_checkpointing(model, resolved)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    size, batch = args.input_size, args.batch_size
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    step(x[:2], y[:2])
    opt.zero_grad(set_to_none=True)
    gc.collect()
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    state_bytes = sum(
        t.numel() * t.element_size()
        for s in opt.state.values()
        for t in s.values()
        if torch.is_tensor(t)
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        baseline = _proc_status()["VmRSS"]
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    times, cpu_times = [], []
    for _ in range(args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        step(x, y)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    if device.type == "cuda":
        measured = torch.cuda.max_memory_allocated()
        method = "torch.cuda.max_memory_allocated"
    else:
        measured = param_bytes + state_bytes + _proc_status()["VmHWM"] - baseline
        method = "params + optimizer state + peak RSS growth"
    est_segments = None if resolved is False else (-1 if resolved is None else resolved)
    estimate = estimate_training_memory(
        model.spec, batch_size=batch, input_size=size, checkpoint_segments=est_segments
    )
    return {
        "depth": args.depth,
        "units": units,
        "checkpoint": args.checkpoint,
        "segments": "every unit" if resolved is None else resolved,
        "batch_size": batch,
        "input_size": size,
        "device": str(device),
        "measured_bytes": measured,
        "estimate_bytes": estimate.total_bytes,
        "step_seconds": statistics.median(times),
        "step_cpu_seconds": statistics.median(cpu_times),
        "all_step_seconds": times,
        "threads": torch.get_num_threads(),
        "method": method,
    }


def interleaved_timing(
    depth: int, settings: list[str], rounds: int, batch: int, size: int, device: str
) -> dict[str, dict[str, float]]:
    """Step times of several checkpoint settings on one model, alternating round by round.

    Alternating the settings step by step exposes them all to the same load drift on a
    shared machine; the median over rounds is reported (after one untimed warm-up round).
    """
    import torch
    import torch.nn.functional as F

    from resnetv2.nn import create_model
    from resnetv2.nn.recompute import enable_activation_checkpointing

    torch.manual_seed(0)
    dev = torch.device(device)
    model = create_model(depth, device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    times: dict[str, list[tuple[float, float]]] = {s: [] for s in settings}
    for r in range(rounds + 1):
        for setting in settings:
            value = {"off": False, "unit": None}.get(setting, setting)
            if value not in (False, None) and value != "sqrt":
                value = int(value)
            enable_activation_checkpointing(model, value)
            wall, cpu = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if r:
                times[setting].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        s: {
            "wall": statistics.median(t[0] for t in v),
            "cpu": statistics.median(t[1] for t in v),
        }
        for s, v in times.items()
    }


def train_deep(depth: int, steps: int, batch: int, size: int, segments: str) -> dict:
    """Build a very deep net, turn on checkpointing and train ``steps`` SGD steps."""
    import torch
    import torch.nn.functional as F

    from resnetv2.nn import create_model
    from resnetv2.nn.recompute import enable_activation_checkpointing

    torch.manual_seed(0)
    start = time.perf_counter()
    model = create_model(depth)
    build = time.perf_counter() - start
    enable_activation_checkpointing(model, None if segments == "unit" else segments)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    walls, cpus, losses = [], [], []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        losses.append(loss.item())
    return {
        "depth": depth,
        "units": model.spec.total_units,
        "params": sum(p.numel() for p in model.parameters()),
        "checkpoint": segments,
        "batch_size": batch,
        "input_size": size,
        "threads": torch.get_num_threads(),
        "build_seconds": build,
        "step_seconds": walls,
        "step_cpu_seconds": cpus,
        "losses": losses,
        "peak_rss_bytes": _proc_status()["VmHWM"],
    }


def run_one(args: argparse.Namespace, depth: int, checkpoint: str) -> dict:
    env = dict(os.environ)
    # Large tensors via mmap, returned to the OS on free: see the module docstring.
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    env["MALLOC_TRIM_THRESHOLD_"] = "65536"
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--depth",
        str(depth),
        "--checkpoint",
        checkpoint,
        "--batch-size",
        str(args.batch_size),
        "--input-size",
        str(args.input_size),
        "--steps",
        str(args.steps),
        "--device",
        args.device,
        "--threads",
        str(args.threads),
        "--drop-path-rate",
        str(args.drop_path_rate),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child failed ({' '.join(cmd)}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_timing(args: argparse.Namespace, depth: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--depth", str(depth), "--checkpoint"]
    cmd += args.checkpoint
    cmd += ["--timing-rounds", str(args.timing_rounds), "--input-size", str(args.input_size)]
    cmd += ["--batch-size", str(args.timing_batch_size or args.batch_size)]
    cmd += ["--device", args.device, "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"timing child failed ({' '.join(cmd)}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timing_table(timings: list[dict]) -> str:
    lines = [
        "| depth | batch | checkpointing | step wall (s) | step CPU (s) | CPU time vs off |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for t in timings:
        off = t["timing"].get("off")
        for setting, v in t["timing"].items():
            ratio = f"{v['cpu'] / off['cpu']:.2f}×" if off else "—"
            lines.append(
                f"| {t['depth']} | {t['batch_size']} | {setting} | {v['wall']:.2f} | "
                f"{v['cpu']:.2f} | {ratio} |"
            )
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    """Memory table. Its step times include the page faults of the pinned mmap threshold;
    use ``--timing-rounds`` for time ratios."""
    mib = 1 << 20
    lines = [
        "| depth | checkpointing | measured peak (MiB) | estimate (MiB) | measured / estimate "
        "| memory vs off | step wall (s) | step CPU (s) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    base = {r["depth"]: r for r in rows if r["checkpoint"] == "off"}
    for r in rows:
        ref = base.get(r["depth"])
        mem = "—"
        if ref and r is not ref:
            mem = f"{ref['measured_bytes'] / r['measured_bytes']:.2f}× lower"
        what = "off" if r["checkpoint"] == "off" else f"{r['checkpoint']} ({r['segments']})"
        lines.append(
            f"| {r['depth']} | {what} | {r['measured_bytes'] / mib:,.0f} | "
            f"{r['estimate_bytes'] / mib:,.0f} | {r['measured_bytes'] / r['estimate_bytes']:.2f} "
            f"| {mem} | {r['step_seconds']:.2f} | {r['step_cpu_seconds']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--depths", type=int, nargs="+", default=[20, 110, 164, 1001])
    p.add_argument("--checkpoint", nargs="+", default=["off", "unit", "sqrt"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads in the child (0: default)")
    p.add_argument("--drop-path-rate", type=float, default=0.0)
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument(
        "--timing-rounds",
        type=int,
        default=0,
        help="also time all --checkpoint settings in one process, alternating, this many "
        "rounds per depth (at --timing-batch-size)",
    )
    p.add_argument("--timing-batch-size", type=int, default=None)
    p.add_argument(
        "--train-deep",
        type=int,
        metavar="DEPTH",
        help="instead: build a net this deep, checkpoint it (--checkpoint's first value, "
        "default sqrt) and time --steps training steps at --batch-size/--input-size",
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.train_deep:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        mode = args.checkpoint[0] if args.checkpoint != ["off", "unit", "sqrt"] else "sqrt"
        row = train_deep(args.train_deep, args.steps, args.batch_size, args.input_size, mode)
        print(json.dumps(row))
        return 0
    if args.timing_rounds and args.child:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        batch = args.timing_batch_size or args.batch_size
        res = interleaved_timing(
            args.depth, args.checkpoint, args.timing_rounds, batch, args.input_size, args.device
        )
        print(json.dumps({"depth": args.depth, "batch_size": batch, "timing": res}))
        return 0
    if args.child:
        args.checkpoint = args.checkpoint[0]
        print(json.dumps(child(args)))
        return 0
    rows, timings = [], []
    for depth in args.depths:
        if args.timing_rounds:
            timing = run_timing(args, depth)
            timings.append(timing)
            print(json.dumps(timing), file=sys.stderr, flush=True)
        for checkpoint in args.checkpoint:
            row = run_one(args, depth, checkpoint)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(table(rows))
    if timings:
        print()
        print(timing_table(timings))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
