"""``resnetv2 evaluate RUN``: score a trained model and write ``RUN/eval/`` (metrics, report
with the top confusions, confusion matrix, the most confident mistakes with their class
activation maps)."""

from __future__ import annotations

import argparse

from resnetv2.cli.common import add_device_argument, add_progress_arguments, show_progress
from resnetv2.cli.engine_args import add_engine_arguments, positive_int, show_engine_messages
from resnetv2.limits import MAX_BATCH_SIZE, count_arg
from resnetv2.tta import TTA_MODES


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a trained run: loss, top-1/top-5, per-class report, confusion matrix, "
        "the most confident mistakes",
        description="Evaluate RUN/model.safetensors (or a .safetensors file) on the run's own "
        "validation split (from RUN/config.yaml), a built-in dataset or a class-folder "
        "directory whose classes match the model's (each file read exactly as predict reads "
        "it). Writes metrics.json, report.txt (with the top confusions), confusion_matrix.png "
        "and mistakes.png (the most confidently wrong images, each beside the class "
        "activation map of its predicted class) to RUN/eval/ and prints the report.",
    )
    p.add_argument("run", metavar="RUN", help="run folder (or a .safetensors weights file)")
    p.add_argument(
        "--data",
        metavar="SOURCE",
        help="digits, cifar10, cifar100 or a folder of class folders (evaluated whole); "
        "default: the run's own data",
    )
    p.add_argument(
        "--split",
        choices=("val", "train"),
        default="val",
        help="which split of the run's or built-in data (default val)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="where built-in datasets are stored")
    p.add_argument("--batch-size", type=count_arg(1, MAX_BATCH_SIZE), default=256, metavar="B")
    add_device_argument(p)
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default RUN/eval, replaced on each run); an existing, non-empty "
        "--out is never overwritten without --force",
    )
    p.add_argument(
        "--force", action="store_true", help="overwrite --out and --save-predictions if they exist"
    )
    p.add_argument(
        "--normalize",
        choices=("true", "pred", "all"),
        default=None,
        help="plot the confusion matrix normalised over true classes (rows), predictions "
        "(columns) or all samples; default: counts",
    )
    p.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation: flip = mean of the softmax of each image and its "
        "horizontal mirror; crop = the image and two 1-pixel translations (per 32 pixels); "
        "flip-crop = both (default none); recorded in metrics.json and the CSV",
    )
    p.add_argument(
        "--save-predictions",
        metavar="FILE",
        help="also write a per-file CSV: predict's columns (source, status, top-k labels, "
        "indices and probabilities, error) plus true_label, correct (1/0) and tta",
    )
    p.add_argument(
        "--top-k",
        type=positive_int,
        default=5,
        metavar="K",
        help="classes per row in --save-predictions (default 5, at most the class count)",
    )
    p.add_argument(
        "--mistakes",
        type=mistakes_count,
        default=DEFAULT_MISTAKES,
        metavar="N",
        help=f"how many of the most confidently wrong images mistakes.png shows "
        f"(default {DEFAULT_MISTAKES}, at most {MAX_MISTAKES}; 0: no picture)",
    )
    p.add_argument(
        "--mistakes-class",
        metavar="CLASS",
        help="show only the mistakes whose true class is CLASS",
    )
    p.add_argument(
        "--cam",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw each mistake's class activation map beside it (default; CAM, or Grad-CAM "
        "for a head that is not linear)",
    )
    add_engine_arguments(p)
    p.add_argument("--json", action="store_true", help="print metrics.json instead of the report")
    add_progress_arguments(p)
    p.set_defaults(func=run)


DEFAULT_MISTAKES = 16
MAX_MISTAKES = 100  # a grid of more images is unreadable (and slow to draw)


def mistakes_count(text: str) -> int:
    """argparse type of ``--mistakes``: a whole number from 0 to :data:`MAX_MISTAKES`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_MISTAKES:
        raise argparse.ArgumentTypeError(f"expected 0 to {MAX_MISTAKES}, got {text}")
    return value


def check_overwrite(args) -> None:
    """The rule of every command: a path named on the command line (``--out``,
    ``--save-predictions``) is never overwritten without ``--force``; the default
    ``RUN/eval`` is the run's own and is replaced."""
    from pathlib import Path

    from resnetv2.errors import ResNetV2Error

    if args.force:
        return
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ResNetV2Error(f"--out {out} exists and is not empty; pass --force to overwrite it")
    if args.save_predictions and Path(args.save_predictions).exists():
        raise ResNetV2Error(f"{args.save_predictions} exists; pass --force to overwrite it")


def run(args) -> int:
    from resnetv2.evaluation.run import evaluate_run

    check_overwrite(args)
    show_engine_messages()
    evaluation = evaluate_run(
        args.run,
        data=args.data,
        split=args.split,
        batch_size=args.batch_size,
        device=args.device,
        out=args.out,
        data_dir=args.data_dir,
        normalize=args.normalize or False,
        progress=show_progress(args),
        tta=args.tta,
        save_predictions=args.save_predictions,
        top_k=args.top_k,
        engine=args.engine,
        precision=args.precision,
        threads=args.threads,
        mistakes=args.mistakes,
        mistakes_class=args.mistakes_class,
        cam=args.cam,
    )
    if args.json:
        print(evaluation.files["metrics"].read_text(encoding="utf-8").rstrip())
        return 0
    print(evaluation.files["report"].read_text(encoding="utf-8").rstrip())
    print()
    folder = evaluation.files["metrics"].parent
    names = [p.name for k, p in evaluation.files.items() if k != "predictions"]
    print(f"written to {folder}: {', '.join(names)}")
    if "predictions" in evaluation.files:  # where the user asked, not in the eval folder
        print(f"predictions written to {evaluation.files['predictions']}")
    return 0
