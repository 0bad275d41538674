"""The project's first impression: ``resnetv2 train`` with no arguments.

What: wall time (process start to exit, start-up included) and the best validation accuracy
of the default command, which trains the ``digits`` recipe (scikit-learn digits, 1,438 train
/ 359 val images) into a fresh run folder.
On what: this machine's CPU; the command runs in a subprocess in a temporary folder.
How many runs: 3 by default (``--runs N``); extra arguments after ``--`` are passed to the
command (e.g. ``-- --threads 2`` to compare thread counts).
Target: >= 98.5 % validation accuracy in under 60 s.

    python benchmarks/train_default.py [--runs 3] [-- extra train args]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("extra", nargs="*", help="arguments for `resnetv2 train`")
    args = parser.parse_args()
    rows = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            command = [sys.executable, "-m", "resnetv2", "train", "--quiet", *args.extra]
            started = time.perf_counter()
            done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"run {run + 1} failed:\n{done.stderr}")
            (run_dir,) = (Path(folder) / "runs").iterdir()
            results = json.loads((run_dir / "results.json").read_text())
            rows.append((wall, results["val_acc"], results["train_seconds"], results["epochs"]))
            print(
                f"run {run + 1}: wall {wall:5.1f} s  val_acc {100 * results['val_acc']:.2f} %  "
                f"(training loop {results['train_seconds']:.1f} s, {results['epochs']} epochs)",
                flush=True,
            )
    print()
    print(f"command: resnetv2 train {' '.join(args.extra)}".rstrip())
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print("| run | wall time (s) | val acc (%) | training loop (s) |")
    print("|---|---|---|---|")
    for i, (wall, acc, loop, _) in enumerate(rows, 1):
        print(f"| {i} | {wall:.1f} | {100 * acc:.2f} | {loop:.1f} |")
    walls = [r[0] for r in rows]
    accs = [100 * r[1] for r in rows]
    print(
        f"| median | {statistics.median(walls):.1f} | {statistics.median(accs):.2f} | "
        f"{statistics.median(r[2] for r in rows):.1f} |"
    )


if __name__ == "__main__":
    main()
