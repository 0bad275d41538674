"""Does ``resnetv2 train --time T`` end on time, annealed, and as accurate as fixed epochs?

Runs the installed command as a user would (a subprocess each, the whole command timed from
outside: start-up, data, training, validation, saving), one run after another:

- ``--time T`` for each ``--budget``: the wall time against T, the plan it made, the last
  epoch's learning rate against the run's peak, the held-out accuracy;
- ``--epochs N`` for each ``--fixed`` count, the same recipe with a fixed schedule: which of
  them fit in each budget, and the best accuracy among those that fit.

    python benchmarks/budget.py --data /tmp/cifar3k --budget 90s --fixed 10,20,30
    python benchmarks/budget.py --data /tmp/cifar10/train --budget 30m -- --recipe cifar-cpu

Arguments after ``--`` go to every ``resnetv2 train`` command.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_model, print_table

from resnetv2.config.duration import parse_duration


def run(args: list[str], out: Path) -> dict:
    command = [sys.executable, "-m", "resnetv2", "train", *args, "--out", str(out), "-q"]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    results = json.loads((out / "results.json").read_text())
    rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
    lrs = [float(r["lr"]) for r in rows]
    return {
        "wall": wall,
        "results": results,
        "last_lr_ratio": lrs[-1] / max(lrs),
        "epochs": len(rows),
        "final_val_acc": float(rows[-1]["val_acc"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--val-split", default="0.1")
    parser.add_argument("--budget", action="append", required=True, help="e.g. 90s, 30m")
    parser.add_argument("--fixed", default="", help="epoch counts for fixed runs, e.g. 10,20")
    parser.add_argument("extra", nargs="*", help="more resnetv2 train arguments (after --)")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}")
    common = ["--data", args.data, "--val-split", args.val_split, *args.extra]
    rows, fixed_runs = [], []
    with tempfile.TemporaryDirectory(prefix="budget-bench-") as tmp:
        for epochs in [int(e) for e in args.fixed.split(",") if e]:
            r = run([*common, "--epochs", str(epochs)], Path(tmp) / f"fixed{epochs}")
            fixed_runs.append((epochs, r))
            rows.append(
                [f"--epochs {epochs}", "-", f"{r['wall']:.1f} s", "-", r["epochs"],
                 f"{r['last_lr_ratio']:.3f}", f"{100 * r['results']['val_acc']:.2f} %",
                 f"{100 * r['final_val_acc']:.2f} %"]
            )  # fmt: skip
        for text in args.budget:
            seconds = parse_duration(text)
            r = run([*common, "--time", text], Path(tmp) / f"time{text}")
            plan = r["results"]["budget"]
            rows.append(
                [f"--time {text}", f"{plan['planned_epochs']:.1f}", f"{r['wall']:.1f} s",
                 f"{r['wall'] / seconds:.3f}", r["epochs"], f"{r['last_lr_ratio']:.3f}",
                 f"{100 * r['results']['val_acc']:.2f} %", f"{100 * r['final_val_acc']:.2f} %"]
            )  # fmt: skip
            fitting = [(e, f) for e, f in fixed_runs if f["wall"] <= seconds]
            if fitting:
                e, best = max(fitting, key=lambda ef: ef[1]["results"]["val_acc"])
                print(
                    f"--time {text}: {100 * r['results']['val_acc']:.2f} % vs the best fixed run "
                    f"that fits ({e} epochs, {best['wall']:.1f} s): "
                    f"{100 * best['results']['val_acc']:.2f} %"
                )
    print_table(
        ["run", "planned epochs", "wall", "wall / budget", "epochs", "last lr / peak",
         "best val_acc", "final val_acc"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
