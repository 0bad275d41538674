"""``resnetv2 train``: train a recipe (or a config file) into a run folder, or resume one.

With no arguments it trains the ``digits`` recipe into a fresh ``runs/digits-<time>`` folder.
Flags override recipe values; ``--init-weights SRC`` fine-tunes pretrained weights (their
own architecture, unless ``--preset``/``--depth`` is given, with a new classifier head);
``--resume RUN`` continues ``RUN`` from its newest valid
checkpoint with the config saved there (flags still override, and a change that would make
the resume inexact is refused unless ``--resume-force``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from resnetv2.cli.spec_args import add_spec_arguments, spec_options_from_args
from resnetv2.memory import parse_checkpoint_segments


def _segments(text: str) -> int | str:
    """:func:`parse_checkpoint_segments` with its message in argparse's error line."""
    try:
        return parse_checkpoint_segments(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# (flag, dotted config key, argparse kwargs)
_FLAGS: list[tuple[str, str, dict[str, Any]]] = [
    ("--data", "data.source", {"metavar": "SRC", "help": "digits, cifar10, cifar100 or DIR"}),
    ("--val-data", "data.val_data", {"metavar": "DIR", "help": "separate validation folder"}),
    ("--val-split", "data.val_split", {"type": float, "metavar": "F", "help": "val fraction"}),
    ("--data-dir", "data.data_dir", {"metavar": "DIR", "help": "where CIFAR archives live"}),
    ("--image-size", "data.image_size", {"type": int, "metavar": "PX"}),
    (
        "--channels",
        "data.channels",
        {"type": int, "choices": (1, 3), "help": "convert images: 1 grayscale, 3 RGB"},
    ),
    ("--augment", "data.augment", {"choices": ("auto", "standard", "seed", "digits", "none")}),
    ("--batch-size", "data.batch_size", {"type": int, "metavar": "B", "help": "global batch"}),
    ("--workers", "data.workers", {"type": int, "metavar": "N", "help": "loader workers"}),
    ("--optimizer", "optim.name", {"choices": ("sgd", "adamw", "adam")}),
    ("--lr", "optim.lr", {"type": float, "help": "base (peak) learning rate"}),
    ("--momentum", "optim.momentum", {"type": float}),
    ("--weight-decay", "optim.weight_decay", {"type": float}),
    (
        "--schedule",
        "schedule.name",
        {"choices": ("constant", "cosine", "multistep", "onecycle", "plateau")},
    ),
    ("--warmup-epochs", "schedule.warmup_epochs", {"type": float}),
    ("--epochs", "train.epochs", {"type": int, "metavar": "N"}),
    ("--seed", "train.seed", {"type": int}),
    ("--label-smoothing", "train.label_smoothing", {"type": float}),
    ("--grad-clip", "train.grad_clip", {"type": float, "metavar": "NORM"}),
    ("--ema-decay", "train.ema_decay", {"type": float}),
    ("--device", "train.device", {"choices": ("auto", "cpu", "cuda")}),
    ("--amp", "train.amp", {"choices": ("auto", "on", "off"), "help": "bf16 autocast"}),
    ("--channels-last", "train.channels_last", {"choices": ("auto", "on", "off")}),
    ("--threads", "train.threads", {"type": int, "metavar": "N", "help": "CPU threads"}),
    ("--keep-checkpoints", "callbacks.keep_checkpoints", {"type": int, "metavar": "N"}),
    (
        "--init-weights",
        "model.init_weights",
        {
            "metavar": "SRC",
            "help": "fine-tune from a weights file, a run folder, timm:NAME or pytorchcv:NAME "
            "(new head for the data's classes)",
        },
    ),
    (
        "--freeze",
        "model.freeze",
        {"choices": ("backbone", "none"), "help": "backbone: train the new head only"},
    ),
    (
        "--backbone-lr-scale",
        "model.backbone_lr_scale",
        {"type": float, "metavar": "X", "help": "backbone lr = X * lr (with --freeze none)"},
    ),
    (
        "--checkpoint-activations",
        "train.checkpoint_activations",
        {
            "type": _segments,
            "nargs": "?",
            "const": "sqrt",
            "metavar": "SEGMENTS",
            "help": "recompute activations in backward to save memory: sqrt (default), unit "
            "or a segment count",
        },
    ),
]
_SWITCHES: list[tuple[str, str, str]] = [
    ("--deterministic", "train.deterministic", "bit-reproducible CPU runs"),
    ("--compile", "train.compile", "torch.compile the model"),
    ("--ema", "train.ema", "keep (and evaluate) an EMA of the weights"),
    ("--sync-bn", "train.sync_bn", "synchronise BatchNorm across processes (torchrun)"),
    ("--tensorboard", "callbacks.tensorboard", "also log to RUN/tensorboard"),
    ("--download", "data.download", "download CIFAR if it is missing"),
]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a network (default: the digits recipe)",
        description=__doc__.split("\n\n")[0],
        epilog="Recipes: digits (default), cifar-paper, cifar-fast, seed. See docs/training.md.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="YAML", help="a config file (e.g. RUN/config.yaml)")
    source.add_argument(
        "--recipe",
        metavar="NAME",
        help="a shipped recipe: digits, images, finetune, cifar-paper, cifar-fast, seed "
        "(default: digits; images when --data is other data; finetune with --init-weights)",
    )
    parser.add_argument("--out", metavar="RUN", help="run folder (must not exist or be empty)")
    parser.add_argument("--resume", metavar="RUN", help="continue the run in RUN")
    parser.add_argument(
        "--resume-force", action="store_true", help="resume even if the model/batch changed"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars, summaries only")
    parser.add_argument(
        "--early-stopping", type=int, metavar="PATIENCE", help="stop after PATIENCE flat epochs"
    )
    for flag, key, kwargs in _FLAGS:
        kwargs = dict(kwargs)
        if "choices" not in kwargs:
            kwargs.setdefault("metavar", flag.lstrip("-").upper().replace("-", "_"))
        kwargs["help"] = f"{kwargs.get('help', '')} [config: {key}]".strip()
        parser.add_argument(flag, dest=_dest(key), default=None, **kwargs)
    for flag, key, text in _SWITCHES:
        parser.add_argument(
            flag, dest=_dest(key), action="store_const", const=True, help=f"{text} [config: {key}]"
        )
    add_spec_arguments(parser)
    parser.set_defaults(func=run)


def _dest(key: str) -> str:
    return "cfg__" + key.replace(".", "__")


def default_recipe(args: argparse.Namespace) -> str:
    """The recipe used when none is named: ``finetune`` with ``--init-weights``, ``images``
    for data other than digits, else ``digits`` (the zero-argument default)."""
    if getattr(args, _dest("model.init_weights")):
        return "finetune"
    data = getattr(args, _dest("data.source"))
    return "images" if data not in (None, "digits") else "digits"


def build_config(args: argparse.Namespace):
    """The recipe/config named by the flags, with every flag applied on top."""
    from resnetv2.config import (
        apply_overrides,
        config_from_dict,
        config_to_dict,
        load_config,
        load_recipe,
    )

    if args.config:
        config = load_config(args.config)
    elif args.recipe:
        config = load_recipe(args.recipe)
    elif args.resume and (Path(args.resume) / "config.yaml").is_file():
        config = load_config(Path(args.resume) / "config.yaml")
    else:
        config = load_recipe(default_recipe(args))
    overrides: dict[str, Any] = {}
    for _, key, _ in _FLAGS:
        overrides[key] = getattr(args, _dest(key))
    for _, key, _ in _SWITCHES:
        overrides[key] = getattr(args, _dest(key))
    if args.early_stopping is not None:
        overrides["callbacks.early_stopping"] = {
            **(config_to_dict(config)["callbacks"]["early_stopping"] or {}),
            "patience": args.early_stopping,
        }
    options = spec_options_from_args(args)
    if args.preset is None and args.depth is None and getattr(args, _dest("model.init_weights")):
        # Fine-tuning uses the weights' own architecture: the recipe's model gives way, and
        # the flags' spec options (e.g. --head dense) shape the new head.
        data = config_to_dict(config)
        data["model"].update(preset=None, depth=None, options=options)
        config = config_from_dict(data, check_spec=False)
    elif args.preset is not None:
        # A preset is a whole architecture: the recipe's depth and options give way to it.
        overrides["model"] = {"preset": args.preset, "depth": args.depth, "options": options}
    else:
        if args.depth is not None:
            overrides["model.depth"] = args.depth
        if options:
            overrides["model.options"] = {**config.model.options, **options}
    return apply_overrides(config, overrides)


def run(args: argparse.Namespace) -> int:
    from resnetv2.engine import NonFiniteLossError, TrainingInterrupted, train

    config = build_config(args)
    try:
        result = train(
            config,
            out=args.out,
            resume=args.resume,
            resume_force=args.resume_force,
            quiet=args.quiet,
        )
    except TrainingInterrupted as exc:
        print(f"resnetv2 train: stopped by {exc}", file=sys.stderr)
        return exc.exit_code
    except NonFiniteLossError as exc:
        print(f"resnetv2 train: error: {exc}", file=sys.stderr)
        return 1
    if result.results.get("world_size", 1) == 1 or _is_main():
        print(f"run folder: {result.run_dir}")
    return 0


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
