"""``resnetv2 evaluate RUN``: score a trained model and write ``RUN/eval/`` (metrics, report,
confusion matrix)."""

from __future__ import annotations

import argparse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a trained run: loss, top-1/top-5, per-class report, confusion matrix",
        description="Evaluate RUN/model.safetensors (or a .safetensors file) on the run's own "
        "validation split (from RUN/config.yaml), a built-in dataset or a class-folder "
        "directory whose classes match the model's. Writes metrics.json, report.txt and "
        "confusion_matrix.png to RUN/eval/ and prints the report.",
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
    p.add_argument("--batch-size", type=_positive_int, default=256, metavar="B")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--out", metavar="DIR", help="output folder (default RUN/eval)")
    p.add_argument(
        "--normalize",
        choices=("true", "pred", "all"),
        default=None,
        help="plot the confusion matrix normalised over true classes (rows), predictions "
        "(columns) or all samples; default: counts",
    )
    p.add_argument("--json", action="store_true", help="print metrics.json instead of the report")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from resnetv2.evaluation.run import evaluate_run

    evaluation = evaluate_run(
        args.run,
        data=args.data,
        split=args.split,
        batch_size=args.batch_size,
        device=args.device,
        out=args.out,
        data_dir=args.data_dir,
        normalize=args.normalize or False,
        progress=not args.quiet,
    )
    if args.json:
        print(evaluation.files["metrics"].read_text(encoding="utf-8").rstrip())
        return 0
    print(evaluation.files["report"].read_text(encoding="utf-8").rstrip())
    print()
    names = ", ".join(path.name for path in evaluation.files.values())
    print(f"written to {evaluation.files['metrics'].parent}: {names}")
    return 0
