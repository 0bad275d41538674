"""Time to accuracy: held-out accuracy against wall-clock minutes, through the real CLI.

Evidence for "a good model, trained fast": each ``--run LABEL=ARGS`` runs
``resnetv2 train --data DATA --val-split F --quiet ARGS`` in a subprocess (the command a user
types), one after another, never two at once. Every epoch's held-out accuracy is read from the
run's ``metrics.csv`` together with its ``elapsed`` column (wall seconds since the command
started its run: data loading, model building, training, validation and checkpoints). The
script writes ``time_to_accuracy.csv`` (one row per run and epoch) and
``time_to_accuracy.png`` (accuracy against minutes, one line per run) into ``--out`` and
prints a table: epochs, process wall time, best and final held-out accuracy, and the minutes
to reach each ``--target``. ``--tta`` also evaluates each run's weights with flip TTA.

    python benchmarks/time_to_accuracy.py --data /tmp/cifar10/train \\
        --run "cifar-cpu=--recipe cifar-cpu" --run "cifar-cpu fp32=--recipe cifar-cpu --amp off"
    python benchmarks/time_to_accuracy.py --from-runs runs/A runs/B --out tta-plot   # no training

Runs are benchmarks, not tests: a run of the 30-minute recipe takes 30 minutes. Measure on a
quiet machine and say in the docs under what load a figure was taken.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from _common import environment, print_table


def parse_run(text: str) -> tuple[str, list[str]]:
    label, sep, args = text.partition("=")
    if not sep or not label.strip():
        raise argparse.ArgumentTypeError(f"--run wants LABEL=ARGS, got {text!r}")
    return label.strip(), shlex.split(args)


def read_curve(run_dir: Path) -> list[dict[str, float]]:
    """``[{epoch, minutes, val_acc}, ...]`` from a run folder's ``metrics.csv``."""
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    curve, seconds = [], 0.0
    for r in rows:
        # Runs from before the elapsed column: training seconds only (no start-up, validation).
        seconds = float(r["elapsed"]) if r.get("elapsed") else seconds + float(r["seconds"])
        curve.append(
            {"epoch": int(r["epoch"]), "minutes": seconds / 60, "val_acc": float(r["val_acc"])}
        )
    return curve


def train(label: str, args: list[str], data: str, val_split: float, out: Path) -> dict:
    run_dir = out / label.replace(" ", "_").replace("/", "_")
    command = [sys.executable, "-m", "resnetv2", "train", "--data", data]
    command += ["--val-split", str(val_split), "--out", str(run_dir), "--quiet", *args]
    print("$", shlex.join(command), flush=True)
    started = time.perf_counter()
    with open(out / f"{run_dir.name}.log", "w", encoding="utf-8") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{label}: resnetv2 train exited {code}; see {out}/{run_dir.name}.log")
    return {"label": label, "run_dir": run_dir, "wall_seconds": wall}


def evaluate_tta(run_dir: Path) -> float | None:
    """Held-out accuracy of the run's weights with ``evaluate --tta flip`` (None if refused)."""
    out = run_dir / "eval-tta"
    command = [sys.executable, "-m", "resnetv2", "evaluate", str(run_dir), "--tta", "flip"]
    command += ["--out", str(out), "--quiet"]
    if subprocess.call(command, stdout=subprocess.DEVNULL) != 0:
        return None
    return json.loads((out / "metrics.json").read_text())["top1"]


def minutes_to(curve: list[dict[str, float]], target: float) -> float | None:
    return next((r["minutes"] for r in curve if r["val_acc"] >= target), None)


def plot(runs: list[dict], path: Path, targets: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        curve = run["curve"]
        ax.plot(
            [r["minutes"] for r in curve],
            [100 * r["val_acc"] for r in curve],
            marker=".",
            label=run["label"],
        )
    for target in targets:
        ax.axhline(100 * target, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("wall-clock minutes since the run started")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("Time to accuracy (resnetv2 train)")
    lows = [100 * r["curve"][len(r["curve"]) // 3]["val_acc"] for r in runs if r["curve"]]
    if lows:
        ax.set_ylim(bottom=max(0.0, min(lows) - 5))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a class-folder dataset (e.g. the CIFAR-10 JPEGs)")
    parser.add_argument("--val-split", type=float, default=0.1)
    parser.add_argument("--run", type=parse_run, action="append", default=[], metavar="L=ARGS")
    parser.add_argument("--from-runs", nargs="*", default=[], metavar="RUN", help="finished runs")
    parser.add_argument("--target", type=float, action="append", help="e.g. 0.9 (repeatable)")
    parser.add_argument("--tta", action="store_true", help="also evaluate with --tta flip")
    parser.add_argument("--out", type=Path, default=Path("time-to-accuracy"))
    args = parser.parse_args()
    if args.run and not args.data:
        parser.error("--run needs --data")
    if not args.run and not args.from_runs:
        parser.error("give --run LABEL=ARGS (to train) or --from-runs RUN... (to plot)")
    targets = args.target or [0.90, 0.92]
    args.out.mkdir(parents=True, exist_ok=True)
    print(environment())
    runs = [train(label, extra, args.data, args.val_split, args.out) for label, extra in args.run]
    runs += [
        {"label": Path(r).name, "run_dir": Path(r), "wall_seconds": None} for r in args.from_runs
    ]
    for run in runs:
        run["curve"] = read_curve(run["run_dir"])
        if run["wall_seconds"] is None:
            results = json.loads((run["run_dir"] / "results.json").read_text())
            run["wall_seconds"] = results.get("wall_seconds")
        run["tta"] = evaluate_tta(run["run_dir"]) if args.tta else None

    with open(args.out / "time_to_accuracy.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "epoch", "minutes", "val_acc"])
        for run in runs:
            for r in run["curve"]:
                writer.writerow([run["label"], r["epoch"], f"{r['minutes']:.3f}", r["val_acc"]])
    plot(runs, args.out / "time_to_accuracy.png", targets)

    headers = ["run", "epochs", "wall min", "best %", "final %"]
    headers += [f"min to {100 * t:g} %" for t in targets] + (
        ["final + flip TTA %"] if args.tta else []
    )
    rows = []
    for run in runs:
        curve = run["curve"]
        wall = run["wall_seconds"]
        row = [
            run["label"],
            len(curve),
            f"{wall / 60:.1f}" if wall else "?",
            f"{100 * max(r['val_acc'] for r in curve):.2f}",
            f"{100 * curve[-1]['val_acc']:.2f}",
        ]
        for target in targets:
            reached = minutes_to(curve, target)
            row.append(f"{reached:.1f}" if reached is not None else "-")
        if args.tta:
            row.append(f"{100 * run['tta']:.2f}" if run["tta"] is not None else "n/a")
        rows.append(row)
    print_table(headers, rows)
    print(f"wrote {args.out / 'time_to_accuracy.csv'} and {args.out / 'time_to_accuracy.png'}")


if __name__ == "__main__":
    main()
