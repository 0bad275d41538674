"""``resnetv2 predict`` memory and speed over many files: flat peak RSS, near-model throughput.

What it measures, each in a fresh subprocess so peak RSS (``ru_maxrss``) belongs to that run
alone:

1. pure inference: the model on ready-made uint8 batches (normalisation + forward, no files),
   3,000 images — the speed ``predict`` is compared against; run again at the end, and the
   faster of the two is used, so machine load drifting during the run cannot flatter
   ``predict``;
2. ``resnetv2 predict WEIGHTS FOLDER --out preds.csv`` over 1,000 JPEGs;
3. the same over 10,000 JPEGs.

Peak RSS is the main process's (``RUSAGE_SELF``). Importing the CUDA build of torch alone
peaks at ~670 MiB here, so "flat" means the 10,000-file run peaks no higher than the
1,000-file run by more than a few percent. Decode workers are forked from the main process
and share its pages; their own ``ru_maxrss`` counts those inherited pages, so it is not shown.

The JPEGs (48×48, smooth random colour fields, ~2 KB each) are generated once under
``--root`` (default /tmp/resnetv2-predict-bench). The model is He et al.'s CIFAR ResNet-56
(32×32 input, random weights); PyTorch runs with ``--threads`` (default 1, see
docs/bench-inference.md on shared machines).

Targets (issue 4): peak RSS at 10,000 images ≈ at 1,000 (flat: the stream never holds more
than a batch or two), and predict's throughput within 20 % of pure inference.

    .venv/bin/python benchmarks/predict_memory.py              # ~3 minutes on 2 busy cores
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import torch
mode, weights, root, count, batch, workers, threads = sys.argv[1:8]
torch.set_num_threads(int(threads))
count, batch = int(count), int(batch)
if mode == "inference":
    from resnetv2.predict import Predictor
    p = Predictor.from_weights(weights, batch_size=batch)
    x = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
    p.probabilities(x)
    start = time.perf_counter()
    done = 0
    while done < count:
        p.probabilities(x)
        done += batch
    seconds = time.perf_counter() - start
else:
    from resnetv2.cli import main
    start = time.perf_counter()
    code = main(["predict", weights, root, "--batch-size", str(batch), "--workers", workers,
                 "--out", root + ".preds.csv", "--force", "--no-progress"])
    seconds = time.perf_counter() - start
    done = sum(1 for _ in open(root + ".preds.csv")) - 1
    assert code == 0, code
rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"mode": mode, "images": done, "seconds": seconds, "img_per_s": done / seconds,
                  "peak_rss_mib": rss_mib}))
"""


def make_images(root: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    existing = sum(1 for _ in root.rglob("*.jpg")) if root.exists() else 0
    if existing >= count:
        return
    for i in range(count):
        folder = root / f"part{i // 1000}"
        folder.mkdir(parents=True, exist_ok=True)
        corners = rng.integers(0, 256, (2, 2, 3)).astype(np.float32)
        t = np.linspace(0, 1, 48, dtype=np.float32)[:, None, None]
        s = np.linspace(0, 1, 48, dtype=np.float32)[None, :, None]
        field = (
            corners[0, 0] * (1 - t) * (1 - s)
            + corners[0, 1] * (1 - t) * s
            + corners[1, 0] * t * (1 - s)
            + corners[1, 1] * t * s
        )
        noisy = field + rng.normal(0, 8, field.shape)
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg")


def run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/resnetv2-predict-bench"))
    parser.add_argument("--depth", type=int, default=56)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from resnetv2 import create_model
    from resnetv2.loading import save_model

    start = time.perf_counter()
    make_images(args.root / "images", 10_000)
    print(f"images ready under {args.root} ({time.perf_counter() - start:.0f} s)", flush=True)
    weights = args.root / "model.safetensors"
    torch.manual_seed(0)
    prep = {"input_size": [32, 32], "in_channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3,
            "interpolation": "bilinear"}  # fmt: skip
    save_model(create_model(args.depth), weights, preprocessing=prep)

    common = (str(args.batch_size), str(args.workers), str(args.threads))
    images = args.root / "images"
    rows = [
        run_child("inference", str(weights), "-", "3000", *common),
        run_child("predict", str(weights), str(images / "part0"), "1000", *common),
        run_child("predict", str(weights), str(images), "10000", *common),
        run_child("inference", str(weights), "-", "3000", *common),
    ]
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.workers} decode worker(s), "
        f"batch {args.batch_size}, CIFAR ResNet-{args.depth}"
    )
    print(f"{'run':<24} {'images':>7} {'seconds':>8} {'img/s':>8} {'peak RSS MiB':>13}")
    names = ("pure inference (before)", "predict 1,000 files", "predict 10,000 files",
             "pure inference (after)")  # fmt: skip
    for row, name in zip(rows, names):
        print(
            f"{name:<24} {row['images']:>7} {row['seconds']:>8.1f} {row['img_per_s']:>8.1f} "
            f"{row['peak_rss_mib']:>13.0f}"
        )
    before, small, large, after = rows
    pure = max(before, after, key=lambda r: r["img_per_s"])
    growth = large["peak_rss_mib"] / small["peak_rss_mib"]
    speed = large["img_per_s"] / pure["img_per_s"]
    print(f"peak RSS 10k / 1k: {growth:.3f} (flat if ≈ 1)")
    print(f"predict / pure inference throughput: {speed:.2f} (target ≥ 0.80)")


if __name__ == "__main__":
    main()
