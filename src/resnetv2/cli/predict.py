"""``resnetv2 predict``: top-k classes for image files, folders and glob patterns.

Streams: inputs are expanded lazily, decoded and predicted one batch at a time
(:meth:`resnetv2.predict.Predictor.predict_iter`), and rows are written as they come. Files
the decoding policy refuses are reported one per line on stderr and counted; the exit code
is 1 when any input failed, 0 otherwise (2 for usage errors).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from resnetv2.cli.common import add_device_argument, add_progress_arguments, show_progress
from resnetv2.cli.engine_args import add_engine_arguments, positive_int, show_engine_messages
from resnetv2.errors import ResNetV2Error
from resnetv2.limits import MAX_BATCH_SIZE, MAX_WORKERS, count_arg
from resnetv2.tta import TTA_MODES


def register(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict the classes of images with trained or imported weights",
        description="Predict the top-k classes of image files, folders (recursive) or glob "
        "patterns, in batches with bounded memory. Preprocessing (size, resize rule, "
        "interpolation, crop, channels, mean/std) comes from the weights' metadata, the "
        "same as training and evaluate use.",
    )
    p.add_argument("weights", metavar="RUN_OR_WEIGHTS", help="run folder or .safetensors file")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="image files, folders, globs")
    p.add_argument(
        "--top-k",
        type=positive_int,
        default=5,
        metavar="K",
        help="classes per image (default 5, at most the class count)",
    )
    p.add_argument(
        "--batch-size",
        type=count_arg(1, MAX_BATCH_SIZE),
        default=32,
        metavar="B",
        help="images per batch (32)",
    )
    p.add_argument(
        "--out", metavar="FILE", help="write preds.csv or preds.json (default: CSV on stdout)"
    )
    add_device_argument(p)
    p.add_argument(
        "--workers",
        type=count_arg(0, MAX_WORKERS),
        default=0,
        metavar="N",
        help=f"decoding worker processes (0; at most {MAX_WORKERS})",
    )
    add_progress_arguments(p)
    p.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation: flip = mean of the softmax of each image and its "
        "horizontal mirror; crop = the image and two 1-pixel translations (per 32 pixels); "
        "flip-crop = both (default none); recorded in each row (tta column / key)",
    )
    add_engine_arguments(p)
    p.add_argument(
        "--cam",
        metavar="DIR",
        help="also write each readable image with the class activation map of its top-1 "
        "class drawn over it to DIR/NNNNN_<name>.png (NNNNN: its row; CAM, or Grad-CAM for a "
        "head that is not linear)",
    )
    p.add_argument("--force", action="store_true", help="overwrite --out and --cam if they exist")
    p.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.out) if args.out else None
    fmt = _format_of(out)
    if out is not None and out.exists() and not args.force:
        raise ResNetV2Error(f"{out} exists; pass --force to overwrite it")
    cam_dir = _cam_folder(args)
    show_engine_messages()
    predictor = _load(args)
    cams = _cam_writer(predictor, cam_dir, args.batch_size)
    progress = show_progress(args)
    top_k = min(args.top_k, len(predictor.class_names))  # as evaluate: no empty columns
    stream = predictor.predict_iter(
        args.inputs, top_k=top_k, num_workers=args.workers, progress=progress
    )
    counts = {"ok": 0, "failed": 0}

    def counted() -> Iterator:
        for row in stream:
            if row.ok:
                counts["ok"] += 1
            else:
                counts["failed"] += 1
                print(f"resnetv2 predict: cannot read {row.source}: {row.error}", file=sys.stderr)
            if cams is not None:
                cams.add(row)
            yield row

    with _output(out) as handle:
        write_predictions(counted(), handle, fmt, top_k, tta=args.tta)
    if cams is not None:
        cams.close()
        print(f"class activation maps of {cams.written:,} images → {cam_dir}", file=sys.stderr)
    total = counts["ok"] + counts["failed"]
    where = f" → {out}" if out else ""
    engine = f" (engine {predictor.engine_used})" if predictor.engine_used else ""
    print(
        f"predicted {counts['ok']:,} of {total:,} inputs{where}; {counts['failed']:,} failed"
        f"{engine}",
        file=sys.stderr,
    )
    return 1 if counts["failed"] else 0


def _cam_folder(args) -> Path | None:
    """``--cam DIR``, refused when it exists and is not empty (unless ``--force``), and
    made now: a folder that cannot be made fails before any prediction is written."""
    folder = Path(args.cam) if args.cam else None
    if folder is None:
        return None
    if not args.force and folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ResNetV2Error(f"--cam {folder} exists and is not empty; pass --force to write there")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _cam_writer(predictor, folder: Path | None, batch_size: int):
    if folder is None:
        return None
    from resnetv2.evaluation.cam import CamWriter

    return CamWriter(predictor, folder, batch_size)


def _load(args):
    from resnetv2.device import resolve_device
    from resnetv2.io.errors import CheckpointError
    from resnetv2.predict import Predictor

    device = resolve_device(args.device)  # a missing device fails before any file is read
    _check_order(args.weights, args.inputs)
    try:
        return Predictor.from_weights(
            args.weights,
            device=device,
            batch_size=args.batch_size,
            top_k=args.top_k,
            tta=args.tta,
            engine=args.engine,
            precision=args.precision,
            threads=args.threads,
        )
    except CheckpointError as exc:
        raise ResNetV2Error(str(exc)) from None


def _is_weights(path: str) -> bool:
    """A ``.safetensors`` file, or a folder holding the run's ``model.safetensors``."""
    from resnetv2.loading import RUN_WEIGHTS

    p = Path(path)
    return (p.is_file() and p.suffix == ".safetensors") or (p / RUN_WEIGHTS).is_file()


def _check_order(weights: str, inputs: list[str]) -> None:
    """Refuse ``predict IMAGES RUN`` (the arguments swapped) with the order to use, before
    the first argument is read as weights and reported as a missing checkpoint."""
    if _is_weights(weights):
        return
    found = [i for i in inputs if _is_weights(i)]
    if found:
        raise ResNetV2Error(
            f"the run or weights come first, then the images: got {weights!r} first and the "
            f"weights {found[0]!r} after it; use `resnetv2 predict {found[0]} {weights}`"
        )


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


def write_predictions(
    rows: Iterable, handle: IO[str], fmt: str, top_k: int, *, tta: str = "none"
) -> None:
    """Write predictions as they arrive: CSV (one row per input, columns of
    :func:`resnetv2.predict.csv_header` plus ``tta``) or a JSON list (each row's
    ``to_dict()`` plus ``tta``)."""
    from resnetv2.predict import csv_cells, csv_header

    if fmt == "json":
        handle.write("[")
        for i, row in enumerate(rows):
            handle.write(("," if i else "") + "\n  " + json.dumps({**row.to_dict(), "tta": tta}))
        handle.write("\n]\n")
        return
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow([*csv_header(top_k), "tta"])
    for row in rows:
        writer.writerow([*csv_cells(row, top_k), tta])
