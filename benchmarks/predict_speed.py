"""Files per second of ``resnetv2 predict``: the default engine against eager fp32, one run.

What it measures: ``resnetv2 predict WEIGHTS FOLDER --out preds.csv`` (the real command, its
defaults unless ``--batch-size``/``--threads``/``--workers`` are given), each engine and
precision in a fresh process. Two timings per run:

- **command** — around ``resnetv2.cli.main`` (parsing, model load, cache check, onnxruntime's
  import and session, decoding, inference, CSV writing), with ``torch`` imported before the
  clock starts: a fixed ≈1.5 s per process (2 cores) that every engine pays alike and that is
  not spent on any file. The ``files/s`` column and its ratio are this one.
- **process** — the whole child process, interpreter start and ``import torch`` included: what
  a user who runs the command once on this folder waits for (the ``process`` columns).

Rows:

- ``default`` — no engine flag: ``auto`` (onnxruntime where installed, see docs/inference.md);
- ``torch fp32`` — ``--engine torch``, the eager reference every ratio is taken against;
- ``torch bf16`` — ``--engine torch --precision bf16``.

The rows run in alternating rounds (default, torch fp32, torch bf16, default, ...), median of
``--rounds``, so machine load drifting during the run hits every engine alike. Before the
rounds, one ``default`` run with an empty export cache measures the one-off export (shown
as "first run"); the rounds then find the export cached, as every later run does.

Agreement, from the last round's CSVs, file by file against ``torch fp32``: top-1 identical
(count), and the largest difference of any top-k probability (by class index).

Models (random weights, fan-in scaled with random BN statistics so activations are O(1) as in
a trained net): He et al.'s CIFAR ResNet-56 at 32×32 on ``--images`` (default 2,000) 40×40
JPEGs, and ``resnetv2_50`` at 224×224 on ``--r50-images`` (default 200, a few minutes on two
cores; pass e.g. 2000 for the full folder) 256×256 JPEGs. Images are generated once under
``--root`` (smooth random colour fields with noise).

    .venv/bin/python benchmarks/predict_speed.py                     # both models
    .venv/bin/python benchmarks/predict_speed.py --models cifar56 --rounds 5
    .venv/bin/python benchmarks/predict_speed.py --models resnetv2_50 --r50-images 2000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import environment, print_table

CHILD = r"""
import json, sys, time
import torch  # a fixed per-process cost for every engine: outside the command timing
from resnetv2.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - start}))
"""

ENGINES = {
    "default": [],
    "torch fp32": ["--engine", "torch"],
    "torch bf16": ["--engine", "torch", "--precision", "bf16"],
}
REFERENCE = "torch fp32"
MODELS = {"cifar56": (56, 32, 40), "resnetv2_50": ("resnetv2_50", 224, 256)}


def make_images(folder: Path, count: int, side: int) -> None:
    """``count`` JPEGs of ``side``×``side`` px (smooth random colour fields plus noise)."""
    import numpy as np
    from PIL import Image

    existing = sum(1 for _ in folder.rglob("*.jpg")) if folder.exists() else 0
    if existing == count:
        return
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, side, dtype=np.float32)[:, None, None]
    s = np.linspace(0, 1, side, dtype=np.float32)[None, :, None]
    for i in range(count):
        sub = folder / f"part{i // 1000}"
        sub.mkdir(parents=True, exist_ok=True)
        c = rng.integers(0, 256, (2, 2, 3)).astype(np.float32)
        field = c[0, 0] * (1 - t) * (1 - s) + c[0, 1] * (1 - t) * s
        field = field + c[1, 0] * t * (1 - s) + c[1, 1] * t * s
        noisy = field + rng.normal(0, 12, field.shape)
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(sub / f"{i:05d}.jpg")


def make_weights(path: Path, name, size: int) -> None:
    import torch

    from resnetv2 import create_model
    from resnetv2.loading import save_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=10)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) / fan_in**0.5)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
    prep = {"input_size": [size, size], "in_channels": 3, "mean": [0.5] * 3,
            "std": [0.25] * 3, "interpolation": "bilinear"}  # fmt: skip
    save_model(model, path, class_names=[f"c{i}" for i in range(10)], preprocessing=prep)


def run_predict(
    weights: Path, images: Path, out: Path, flags: list[str], env
) -> tuple[float, float]:
    """``(command seconds, process seconds)`` of one ``resnetv2 predict`` in a fresh process."""
    args = ["predict", str(weights), str(images), "--out", str(out), "--force"]
    args += ["--no-progress", "--top-k", "5", *flags]
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env
    )
    process = time.perf_counter() - started
    if proc.returncode != 0 or '"code": 0' not in proc.stdout:
        raise SystemExit(f"predict {' '.join(flags)} failed:\n{proc.stderr[-3000:]}")
    engine_line = [line for line in proc.stderr.splitlines() if "(engine " in line]
    run_predict.last_engine = engine_line[-1].rsplit("(engine ", 1)[-1].rstrip(")")
    return json.loads(proc.stdout.strip().splitlines()[-1])["seconds"], process


def read_csv(path: Path) -> dict[str, dict[int, float]]:
    """``source → {class index: probability}`` for the top-k of each ok row."""
    rows = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["status"] == "ok":
                k = sum(1 for key in row if key.endswith("_index"))
                rows[row["source"]] = {
                    int(row[f"top{i}_index"]): float(row[f"top{i}_prob"]) for i in range(1, k + 1)
                }
    return rows


def agreement(rows: dict, reference: dict) -> tuple[int, int, float]:
    """(top-1 identical, files, max |Δ probability| over classes in both top-k lists)."""
    same, worst = 0, 0.0
    for source, ref in reference.items():
        got = rows[source]
        same += max(got, key=got.get) == max(ref, key=ref.get)
        shared = set(got) & set(ref)
        worst = max([worst, *(abs(got[c] - ref[c]) for c in shared)])
    return same, len(reference), worst


def bench_model(name: str, count: int, args, env) -> list[list[object]]:
    spec, size, side = MODELS[name]
    root = args.root / name
    images = root / "images"
    started = time.perf_counter()
    make_images(images, count, side)
    weights = root / "model.safetensors"
    make_weights(weights, spec, size)
    print(f"{name}: {count} images ready ({time.perf_counter() - started:.0f} s)", flush=True)
    shutil.rmtree(env["RESNETV2_CACHE_DIR"], ignore_errors=True)
    flags = []
    for option in ("batch_size", "threads", "workers"):
        if getattr(args, option) is not None:
            flags += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    first, first_process = run_predict(weights, images, root / "first.csv", flags, env)
    print(f"  first run (empty cache, export included): {first:.1f} s", flush=True)
    seconds: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    process: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    used: dict[str, str] = {}
    for round_ in range(args.rounds):
        for engine, extra in ENGINES.items():
            out = root / f"{engine.replace(' ', '-')}.csv"
            command, whole = run_predict(weights, images, out, [*flags, *extra], env)
            seconds[engine].append(command)
            process[engine].append(whole)
            used[engine] = run_predict.last_engine
            print(f"  round {round_ + 1} {engine:<11} {count / command:8.2f} files/s "
                  f"(process {count / whole:.2f})", flush=True)  # fmt: skip
    reference = read_csv(root / f"{REFERENCE.replace(' ', '-')}.csv")
    ref_speed = count / statistics.median(seconds[REFERENCE])
    ref_process = count / statistics.median(process[REFERENCE])
    rows = [[name, "first run, default (export)", "", f"{count / first:.2f}",
             f"{count / first / ref_speed:.2f}", f"{count / first_process:.2f}",
             f"{count / first_process / ref_process:.2f}", "", ""]]  # fmt: skip
    for engine in ENGINES:
        speed = count / statistics.median(seconds[engine])
        whole = count / statistics.median(process[engine])
        same, total, worst = agreement(
            read_csv(root / f"{engine.replace(' ', '-')}.csv"), reference
        )
        rows.append([name, engine, used[engine], f"{speed:.2f}", f"{speed / ref_speed:.2f}",
                     f"{whole:.2f}", f"{whole / ref_process:.2f}", f"{same}/{total}",
                     f"{worst:.1e}"])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/resnetv2-predict-speed"))
    parser.add_argument("--models", default="cifar56,resnetv2_50")
    parser.add_argument("--images", type=int, default=2000, help="CIFAR ResNet-56 files (2000)")
    parser.add_argument("--r50-images", type=int, default=200, help="resnetv2_50 files (200)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="(predict's default)")
    parser.add_argument("--threads", type=int, default=None, help="(predict's default)")
    parser.add_argument("--workers", type=int, default=None, help="(predict's default)")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if k != "RESNETV2_ENGINE"}
    env["RESNETV2_CACHE_DIR"] = str(args.root / "cache")
    load = os.getloadavg()[0]
    rows = []
    for name in args.models.split(","):
        count = args.r50_images if name == "resnetv2_50" else args.images
        rows += bench_model(name, count, args, env)
    import onnxruntime

    print(f"\n{environment()}, onnxruntime {onnxruntime.__version__}")
    print(f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end; rounds "
          f"{args.rounds}; flags: batch {args.batch_size or 'default'}, threads "
          f"{args.threads or 'default'}, workers {args.workers or 'default'}")  # fmt: skip
    print_table(
        ["model", "row", "engine used", "files/s", f"vs {REFERENCE}", "process files/s",
         f"process vs {REFERENCE}", "top-1 same", "max |Δp|"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
