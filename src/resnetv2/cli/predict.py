"""``resnetv2 predict``: top-k classes for image files, folders and glob patterns.

Streams: inputs are expanded lazily, decoded and predicted one batch at a time
(:meth:`resnetv2.predict.Predictor.predict_iter`), and rows are written as they come. Files
the decoding policy refuses are reported one per line on stderr and counted; the exit code
is 1 when any input failed, 0 otherwise (2 for usage errors).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from resnetv2.errors import ResNetV2Error


def register(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict the classes of images with trained or imported weights",
        description="Predict the top-k classes of image files, folders (recursive) or glob "
        "patterns, in batches with bounded memory. Preprocessing (size, interpolation, "
        "mean/std) comes from the weights' metadata.",
    )
    p.add_argument("weights", metavar="RUN_OR_WEIGHTS", help="run folder or .safetensors file")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="image files, folders, globs")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes per image (5)")
    p.add_argument("--batch-size", type=int, default=32, metavar="B", help="images per batch")
    p.add_argument(
        "--out", metavar="FILE", help="write preds.csv or preds.json (default: CSV on stdout)"
    )
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument(
        "--workers", type=int, default=0, metavar="N", help="decoding worker processes (0)"
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.out) if args.out else None
    fmt = _format_of(out)
    if out is not None and out.exists() and not args.force:
        raise ResNetV2Error(f"{out} exists; pass --force to overwrite it")
    if args.workers < 0:
        raise ResNetV2Error(f"--workers must be >= 0, got {args.workers}")
    predictor = _load(args)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    stream = predictor.predict_iter(
        args.inputs, top_k=args.top_k, num_workers=args.workers, progress=progress
    )
    counts = {"ok": 0, "failed": 0}

    def counted() -> Iterator:
        for row in stream:
            if row.ok:
                counts["ok"] += 1
            else:
                counts["failed"] += 1
                print(f"resnetv2 predict: cannot read {row.source}: {row.error}", file=sys.stderr)
            yield row

    with _output(out) as handle:
        write_predictions(counted(), handle, fmt, args.top_k)
    total = counts["ok"] + counts["failed"]
    where = f" → {out}" if out else ""
    print(
        f"predicted {counts['ok']:,} of {total:,} inputs{where}; {counts['failed']:,} failed",
        file=sys.stderr,
    )
    return 1 if counts["failed"] else 0


def check_device(name: str | None) -> None:
    """Turn a bad ``--device`` into a one-line user error instead of a torch traceback."""
    if name is None:
        return
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ResNetV2Error(
            f"--device {name!r} is not a torch device (cpu, cuda, cuda:1)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ResNetV2Error(f"--device {name}: CUDA is not available on this machine")


def _load(args):
    from resnetv2.io.errors import CheckpointError
    from resnetv2.predict import Predictor

    check_device(args.device)
    try:
        return Predictor.from_weights(
            args.weights, device=args.device, batch_size=args.batch_size, top_k=args.top_k
        )
    except CheckpointError as exc:
        raise ResNetV2Error(str(exc)) from None


def _format_of(out: Path | None) -> str:
    if out is None:
        return "csv"
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ResNetV2Error(f"--out must end in .csv or .json, got {out.name!r}")
    return suffix[1:]


@contextmanager
def _output(out: Path | None) -> Iterator[IO[str]]:
    if out is None:
        yield sys.stdout
        return
    from resnetv2.io import atomic_open

    with atomic_open(out, "w") as handle:
        yield handle


def write_predictions(rows: Iterable, handle: IO[str], fmt: str, top_k: int) -> None:
    """Write predictions as they arrive: CSV (one row per input) or a JSON list."""
    if fmt == "json":
        handle.write("[")
        for i, row in enumerate(rows):
            handle.write(("," if i else "") + "\n  " + json.dumps(row.to_dict()))
        handle.write("\n]\n")
        return
    header = ["source", "status"]
    for k in range(1, top_k + 1):
        header += [f"top{k}_label", f"top{k}_index", f"top{k}_prob"]
    header.append("error")
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        cells: list[object] = [row.source, "ok" if row.ok else "error"]
        for k in range(top_k):
            if k < len(row.labels):
                cells += [row.labels[k], row.indices[k], f"{row.probabilities[k]:.6f}"]
            else:
                cells += ["", "", ""]
        cells.append(row.error or "")
        writer.writerow(cells)
