"""Accuracy per FLOP: a greedy ablation of training techniques at a fixed compute budget.

Issue 19's table, made the way airbench's was (Jordan 2024, arXiv:2404.00498): start from a
baseline command, then add one technique per run; a technique is *kept* for the following
runs when the run's final-epoch held-out accuracy is at least the best so far, and dropped
otherwise (so one harmful option does not spoil every later row). Every run has the same
epochs, net and data, so the same training compute (``train_pflop`` of ``results.json``,
printed per row). Each run is ``resnetv2 train`` through the CLI, one after another.

After the training runs the kept configuration's saved weights are evaluated with every
test-time augmentation (``evaluate --tta none|flip|crop|flip-crop``): TTA costs no training
compute, only inference.

    python benchmarks/ablation.py --data /tmp/cifar10/train --epochs 6 --out ablation \\
        --base "--recipe cifar-cpu" \\
        --step "whiten=--whiten-stem frozen" --step "bias-lr=--norm-bias-lr-scale 64"

``--final-epochs N`` then trains the kept configuration once more for N epochs (the
budget of the issue's target), and evaluates it with every TTA. The script prints a
markdown table (and writes ``ablation.json``) with each row's command, the selected
accuracy, the compute and the wall time. Benchmarks, not tests: each row is a real training
run; say in the docs what CPU and load they ran under.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import environment, print_table

TTAS = ("none", "flip", "crop", "flip-crop")


def parse_step(text: str) -> tuple[str, list[str]]:
    label, sep, args = text.partition("=")
    if not sep or not label.strip():
        raise argparse.ArgumentTypeError(f"--step wants LABEL=ARGS, got {text!r}")
    return label.strip(), shlex.split(args)


def train(label: str, args: list[str], opts: argparse.Namespace) -> dict:
    """One ``resnetv2 train`` run; its results.json plus the command and the process wall."""
    run_dir = opts.out / label
    if (run_dir / "results.json").is_file() and opts.reuse:
        print(f"[{label}] reusing {run_dir}", flush=True)
        results = json.loads((run_dir / "results.json").read_text())
        return {"label": label, "args": args, "run_dir": run_dir, **results}
    if run_dir.exists():  # train wants a new or empty run folder: an unfinished run is retried
        shutil.rmtree(run_dir)
    command = [sys.executable, "-m", "resnetv2", "train", "--data", opts.data]
    command += ["--val-split", str(opts.val_split), "--out", str(run_dir), "--quiet"]
    command += args
    print("$", shlex.join(command), flush=True)
    started = time.perf_counter()
    with open(opts.out / f"{label}.log", "w", encoding="utf-8") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    if code != 0:
        print(f"[{label}] resnetv2 train exited {code}; see {opts.out}/{label}.log", flush=True)
        return {"label": label, "args": args, "run_dir": run_dir, "failed": code, "wall": wall}
    results = json.loads((run_dir / "results.json").read_text())
    print(
        f"[{label}] final {100 * results['final_val_acc']:.2f} % best "
        f"{100 * results['val_acc']:.2f} % {results.get('train_pflop', 0):.3f} PFLOP "
        f"{wall / 60:.1f} min",
        flush=True,
    )
    return {"label": label, "args": args, "run_dir": run_dir, "wall": wall, **results}


def evaluate(run_dir: Path, tta: str) -> float | None:
    """Held-out top-1 of the run's saved weights with ``evaluate --tta TTA`` (None if refused)."""
    out = run_dir / f"eval-{tta}"
    command = [sys.executable, "-m", "resnetv2", "evaluate", str(run_dir), "--tta", tta]
    command += ["--out", str(out), "--force", "--quiet", "--no-cam"]
    if subprocess.call(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) != 0:
        return None
    return json.loads((out / "metrics.json").read_text())["top1"]


def row(run: dict, kept: str) -> list[str]:
    if "failed" in run:
        return [run["label"], shlex.join(run["args"]), f"failed ({run['failed']})", "-", "-", kept]
    return [
        run["label"],
        shlex.join(run["args"]),
        f"{100 * run['final_val_acc']:.2f}",
        f"{run.get('train_pflop', float('nan')):.3f}",
        f"{run['wall'] / 60:.1f}" if run.get("wall") else "?",
        kept,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a class-folder dataset")
    parser.add_argument("--val-split", type=float, default=0.1)
    parser.add_argument("--base", default="--recipe cifar-cpu", help="the baseline's arguments")
    parser.add_argument("--step", type=parse_step, action="append", default=[], metavar="L=ARGS")
    parser.add_argument("--epochs", type=int, required=True, help="epochs of every ablation run")
    parser.add_argument("--final-epochs", type=int, help="then train the kept config this long")
    parser.add_argument("--out", type=Path, default=Path("ablation"))
    parser.add_argument("--reuse", action="store_true", help="reuse finished runs in --out")
    opts = parser.parse_args()
    opts.out.mkdir(parents=True, exist_ok=True)
    print(environment(), flush=True)

    kept_args = shlex.split(opts.base)
    epochs = ["--epochs", str(opts.epochs)]
    base = train("base", kept_args + epochs, opts)
    if "failed" in base:
        raise SystemExit("the baseline failed; nothing to compare with")
    runs, best = [(base, "baseline")], base["final_val_acc"]
    for label, extra in opts.step:
        run = train(label, kept_args + extra + epochs, opts)
        better = "failed" not in run and run["final_val_acc"] >= best
        if better:
            kept_args, best = kept_args + extra, run["final_val_acc"]
        runs.append((run, "kept" if better else "dropped"))

    best_run = max((r for r, _ in runs if "failed" not in r), key=lambda r: r["final_val_acc"])
    tta = {name: evaluate(best_run["run_dir"], name) for name in TTAS}
    final, final_tta = None, {}
    if opts.final_epochs:
        final = train("final", kept_args + ["--epochs", str(opts.final_epochs)], opts)
        if "failed" not in final:
            final_tta = {name: evaluate(final["run_dir"], name) for name in TTAS}

    headers = ["run", "arguments", "final-epoch held-out %", "PFLOP", "wall min", "kept?"]
    rows = [row(run, kept) for run, kept in runs]
    if final is not None:
        rows.append(row(final, "-"))
    print_table(headers, rows)
    for name, results in ((best_run["label"], tta), ("final", final_tta)):
        if results:
            shown = ", ".join(
                f"{k} {100 * v:.2f} %" if v is not None else f"{k} n/a" for k, v in results.items()
            )
            print(f"evaluate {name} (saved weights) --tta: {shown}")
    record = {
        "environment": environment(),
        "runs": [
            {k: (str(v) if isinstance(v, Path) else v) for k, v in r.items()} | {"kept": kept}
            for r, kept in runs
        ],
        "kept_args": kept_args,
        "tta": {best_run["label"]: tta, "final": final_tta},
        "final": {k: (str(v) if isinstance(v, Path) else v) for k, v in (final or {}).items()},
    }
    (opts.out / "ablation.json").write_text(json.dumps(record, indent=2, default=str))
    print(f"wrote {opts.out / 'ablation.json'}")


if __name__ == "__main__":
    main()
