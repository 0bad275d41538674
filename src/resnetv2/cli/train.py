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
import typing
from pathlib import Path
from typing import Any

from resnetv2.cli.common import add_progress_arguments, input_size, show_progress
from resnetv2.cli.spec_args import add_spec_arguments, spec_options_from_args
from resnetv2.cli.sweep import accept_depth_list, run_sweep
from resnetv2.config import list_recipes
from resnetv2.config.sections import TrainConfig
from resnetv2.data.augment import AUGMENTATIONS
from resnetv2.lr_schedules import SCHEDULES
from resnetv2.memory import parse_checkpoint_segments
from resnetv2.optimizers import OPTIMIZERS, takes


def _segments(text: str) -> int | str:
    """:func:`parse_checkpoint_segments` with its message in argparse's error line. ``-1`` is
    how a config file records ``unit``, not a segment count a user types (0 and -5 are
    refused too)."""
    if text.strip() == "-1":
        raise argparse.ArgumentTypeError("expected sqrt, unit or a positive count, got -1")
    try:
        return parse_checkpoint_segments(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def config_choices(key: str) -> tuple[Any, ...]:
    """The values a ``Literal`` config field allows, so ``--help`` lists what the code does."""
    section, name = key.split(".")
    section_type = typing.get_type_hints(TrainConfig)[section]
    return typing.get_args(typing.get_type_hints(section_type)[name])


# (flag, dotted config key, argparse kwargs)
_FLAGS: list[tuple[str, str, dict[str, Any]]] = [
    ("--data", "data.source", {"metavar": "SRC", "help": "digits, cifar10, cifar100 or DIR"}),
    ("--val-data", "data.val_data", {"metavar": "DIR", "help": "separate validation folder"}),
    (
        "--val-split",
        "data.val_split",
        {
            "type": float,
            "metavar": "F",
            "help": "val fraction (a folder with neither this nor --val-data: 0.2 below "
            "1,000 images, else 0.1)",
        },
    ),
    ("--data-dir", "data.data_dir", {"metavar": "DIR", "help": "where CIFAR archives live"}),
    (
        "--cache-dir",
        "data.cache_dir",
        {"metavar": "DIR", "help": "decoded-image cache (default: the user cache folder)"},
    ),
    (
        "--input-size",
        "data.image_size",
        {
            "type": input_size,
            "metavar": "N|HxW",
            "help": "resize to N×N or HxW (default: the weights', else planned from the "
            "images: large photos get 128 px and the ImageNet stem)",
        },
    ),
    (
        "--channels",
        "data.channels",
        {"type": int, "choices": (1, 3), "help": "convert images: 1 grayscale, 3 RGB"},
    ),
    ("--augment", "data.augment", {"choices": ("auto", *AUGMENTATIONS)}),
    (
        "--flip",
        "data.flip",
        {
            "choices": config_choices("data.flip"),
            "help": "alternate: each image mirrored on alternate epochs (airbench)",
        },
    ),
    (
        "--batch-size",
        "data.batch_size",
        {
            "type": int,
            "metavar": "B",
            "help": "global batch (default: the recipe's, smaller on small folders, lr scaled "
            "with it)",
        },
    ),
    ("--workers", "data.workers", {"type": int, "metavar": "N", "help": "loader workers"}),
    # The registries' live key views: an optimiser or schedule registered later is a choice.
    ("--optimizer", "optim.name", {"choices": OPTIMIZERS.keys()}),
    ("--lr", "optim.lr", {"type": float, "help": "base (peak) learning rate"}),
    ("--momentum", "optim.momentum", {"type": float}),
    ("--weight-decay", "optim.weight_decay", {"type": float}),
    (
        "--norm-bias-lr-scale",
        "optim.norm_bias_lr_scale",
        {"type": float, "metavar": "X", "help": "lr of norm scales/shifts and biases = X * lr"},
    ),
    ("--schedule", "schedule.name", {"choices": SCHEDULES.keys()}),
    ("--warmup-epochs", "schedule.warmup_epochs", {"type": float}),
    (
        "--epochs",
        "train.epochs",
        {"type": int, "metavar": "N", "help": "epochs (with --time: the most epochs)"},
    ),
    (
        "--time",
        "train.time",
        {
            "metavar": "DURATION",
            "help": "wall-clock budget for the whole run (90s, 10m, 1.5h): plans the steps "
            "from the measured speed, re-plans each epoch, ends with the schedule annealed",
        },
    ),
    ("--seed", "train.seed", {"type": int}),
    ("--label-smoothing", "train.label_smoothing", {"type": float}),
    ("--grad-clip", "train.grad_clip", {"type": float, "metavar": "NORM"}),
    ("--ema-decay", "train.ema_decay", {"type": float}),
    ("--lookahead-steps", "train.lookahead_steps", {"type": int, "metavar": "K"}),
    ("--lookahead-alpha", "train.lookahead_alpha", {"type": float, "metavar": "A"}),
    (
        "--bn-momentum",
        "train.bn_momentum",
        {"type": float, "metavar": "M", "help": "BatchNorm momentum (PyTorch's 0.1 by default)"},
    ),
    ("--device", "train.device", {"choices": config_choices("train.device"), "help": "(auto)"}),
    (
        "--amp",
        "train.amp",
        {
            "choices": config_choices("train.amp"),
            "help": "bf16 autocast; auto: on for CUDA and CPUs with AMX or AVX-512 BF16",
        },
    ),
    (
        "--val-tta",
        "train.val_tta",
        {
            "choices": config_choices("train.val_tta"),
            "help": "validate each epoch with test-time augmentation (flip: image + mirror)",
        },
    ),
    (
        "--class-weights",
        "train.class_weights",
        {
            "choices": config_choices("train.class_weights"),
            "help": "balanced: weight the loss by inverse class frequency (unbalanced data)",
        },
    ),
    ("--channels-last", "train.channels_last", {"choices": config_choices("train.channels_last")}),
    ("--threads", "train.threads", {"type": int, "metavar": "N", "help": "CPU threads"}),
    (
        "--tune",
        "train.tune",
        {
            "choices": config_choices("train.tune"),
            "help": "time a few steps first to choose --channels-last and --threads where "
            "unset (auto: CPU runs of 1,000+ steps or --time 60s+; --no-tune = off)",
        },
    ),
    ("--keep-checkpoints", "callbacks.keep_checkpoints", {"type": int, "metavar": "N"}),
    (
        "--whiten-stem",
        "model.whiten_stem",
        {
            "choices": config_choices("model.whiten_stem"),
            "help": "initialise the stem conv from the data's patch covariance (whitening)",
        },
    ),
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
        {"choices": config_choices("model.freeze"), "help": "backbone: train the new head only"},
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
    ("--lookahead", "train.lookahead", "lookahead: pull the weights back every K steps"),
    ("--sync-bn", "train.sync_bn", "synchronise BatchNorm across processes (torchrun)"),
    ("--tensorboard", "callbacks.tensorboard", "also log to RUN/tensorboard"),
    ("--download", "data.download", "download CIFAR if it is missing"),
    ("--nesterov", "optim.nesterov", "Nesterov momentum (sgd with --momentum > 0)"),
]
#: (flag, dotted config key, help): switches that turn a default-on setting off.
_OFF_SWITCHES: list[tuple[str, str, str]] = [
    ("--no-cache", "data.cache", "decode folder images without the on-disk cache"),
    (
        "--no-nesterov",
        "optim.nesterov",
        "plain momentum (off by itself with --optimizer adam/adamw or --momentum 0)",
    ),
    (
        "--no-memory-check",
        "train.memory_check",
        "train even if the memory estimate exceeds the available memory",
    ),
]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a network (default: the digits recipe)",
        description="Train a recipe (or a config file) into a run folder, or resume one. With "
        "no arguments: the digits recipe into a fresh runs/digits-<time> folder. Flags override "
        "the recipe's values. For a folder of images the input size and stem, batch size and "
        "lr, validation split and fine-tuning lr are planned from the images (reasons in "
        "train.log); a flag you pass always wins.",
        epilog=f"Recipes: {', '.join(list_recipes())}. See docs/training.md.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="YAML", help="a config file (e.g. RUN/config.yaml)")
    source.add_argument(
        "--recipe",
        metavar="NAME",
        help=f"a shipped recipe: {', '.join(list_recipes())} (default: digits; images when "
        "--data is other data; finetune with --init-weights)",
    )
    parser.add_argument(
        "--out",
        metavar="RUN",
        help="run folder: new, empty, or a start that failed before its first checkpoint",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the run in RUN with its config.yaml (one process per run at a time)",
    )
    parser.add_argument(
        "--resume-force",
        action="store_true",
        help="resume even if the model, batch or data folder changed",
    )
    add_progress_arguments(parser)
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
    for flag, key, text in _OFF_SWITCHES:
        parser.add_argument(
            flag, dest=_dest(key), action="store_const", const=False, help=f"{text} [config: {key}]"
        )
    parser.add_argument(
        "--no-tune",
        dest=_dest("train.tune"),
        action="store_const",
        const="off",
        help="skip the machine probe (same as --tune off)",
    )
    add_spec_arguments(parser)
    accept_depth_list(parser)  # --depth 20,56,110: a sweep (resnetv2.cli.sweep)
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


def _resume_config_path(run: str) -> Path:
    """``RUN/config.yaml``, the run's own record; without it a resume would silently use a
    recipe's defaults (other epochs, seed, determinism), so it is refused."""
    from resnetv2.config import ConfigError
    from resnetv2.engine.runfolder import check_resume_dir

    check_resume_dir(run)  # a folder with something to resume, before its config is read
    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"--resume {run}: {path} is missing, and resuming needs the run's own config; "
            "restore it, or pass the config the run was started with as --config FILE"
        )
    return path


def build_config(args: argparse.Namespace):
    """The recipe/config named by the flags, with every flag applied on top."""
    from resnetv2.config import (
        HEAD_OPTION_NAMES,
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
    elif args.resume:
        config = load_config(_resume_config_path(args.resume))
    else:
        config = load_recipe(default_recipe(args))
    overrides: dict[str, Any] = {}
    for _, key, _ in _FLAGS:
        overrides[key] = getattr(args, _dest(key))
    if (size := overrides["data.image_size"]) is not None:
        overrides["data.image_size"] = size[0] if size[0] == size[1] else list(size)
    for _, key, _ in _SWITCHES + _OFF_SWITCHES:
        overrides[key] = getattr(args, _dest(key))
    if (
        overrides["train.time"] is not None
        and overrides["train.epochs"] is None
        and not args.resume
    ):
        # A budget replaces the recipe's epoch count: epochs cap it only when asked to.
        from resnetv2.config.validate import MAX_EPOCHS

        overrides["train.epochs"] = MAX_EPOCHS
    _nesterov_follows(config, overrides)
    if args.early_stopping is not None:
        overrides["callbacks.early_stopping"] = {
            **(config_to_dict(config)["callbacks"]["early_stopping"] or {}),
            "patience": args.early_stopping,
        }
    options = spec_options_from_args(args)
    if args.preset is not None or args.depth is not None or set(options) - HEAD_OPTION_NAMES:
        # The command line names the architecture: a budget-native recipe's choice yields.
        overrides["model.by_budget"] = []
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
        elif "units" in options and config.model.depth is not None:
            # --units alone describes the stages: the recipe's depth gives way, so that e.g.
            # `--units 2,2,2` on a depth-20 recipe is the 14-layer basic net, not a
            # 20-layer bottleneck net that happens to have two units per stage.
            data = config_to_dict(config)
            data["model"]["depth"] = None
            config = config_from_dict(data, check_spec=False)
        if options:
            overrides["model.options"] = {**config.model.options, **options}
    overrides["plan.keep"] = _kept_keys(args, overrides, options)
    return apply_overrides(config, overrides)


def _nesterov_follows(config, overrides: dict[str, Any]) -> None:
    """Nesterov momentum is an SGD-with-momentum option: when the flags choose another
    optimizer or ``--momentum 0``, a recipe's ``nesterov: true`` gives way instead of refusing
    the flags (an explicit ``--nesterov`` is still checked)."""
    name, momentum = overrides["optim.name"], overrides["optim.momentum"]
    if overrides["optim.nesterov"] is not None or (name is None and momentum is None):
        return
    name = config.optim.name if name is None else name
    momentum = config.optim.momentum if momentum is None else momentum
    if config.optim.nesterov and (not takes(name, "nesterov") or momentum == 0):
        overrides["optim.nesterov"] = False


def _kept_keys(args: argparse.Namespace, overrides: dict[str, Any], options) -> list[str] | None:
    """The config keys the data plan must leave alone (engine/data_plan.py): every flag
    given, and with ``--config FILE`` (or ``--resume RUN``: its config.yaml) every key the
    file sets (its own ``plan.keep`` too)."""
    keys = {key for key, value in overrides.items() if value is not None}
    keys |= {f"model.options.{name}" for name in options}
    keys |= {f"model.{name}" for name in ("preset", "depth") if getattr(args, name) is not None}
    path = args.config or (args.resume and _resume_config_path(args.resume))
    if path:
        from resnetv2.config.yamlfile import read_yaml_file

        data = read_yaml_file(path) or {}
        keys |= set(_dotted_keys(data))
        keys |= set((data.get("plan") or {}).get("keep") or [])
    keys.discard("model")
    return sorted(keys) or None


def _dotted_keys(data: Any, prefix: str = "") -> list[str]:
    if not isinstance(data, dict) or not data:
        return [prefix] if prefix else []
    out = []
    for key, value in data.items():
        out += _dotted_keys(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def flag_words(message: str) -> str:
    """``message`` with each config key it names also named by its flag, the flag first:
    ``data.val_split must be …`` → ``--val-split (data.val_split) must be …``. Keys whose
    flag the message already names are left as they are."""
    import re

    for flag, key, *_ in _FLAGS + _SWITCHES + _OFF_SWITCHES:
        if flag not in message:
            message = re.sub(rf"(?<![\w.(-]){re.escape(key)}(?![\w])", f"{flag} ({key})", message)
    return message


def run(args: argparse.Namespace) -> int:
    from resnetv2.engine import NonFiniteLossError, TrainingInterrupted, train
    from resnetv2.errors import ResNetV2Error

    if isinstance(args.depth, list):
        return run_sweep(args, run, build_config)
    from resnetv2.engine.budget import now, process_age

    global _START_COUNTED
    # A --time budget counts the command's start-up too, once: the runs of a sweep after
    # the first start their budget when they start.
    started = now() if _START_COUNTED else now() - process_age()
    _START_COUNTED = True
    try:
        config = build_config(args)
        result = train(
            config,
            started=started,
            out=args.out,
            resume=args.resume,
            resume_force=args.resume_force,
            quiet=args.quiet,
            progress=show_progress(args),
        )
    except TrainingInterrupted as exc:
        print(f"resnetv2 train: stopped by {exc}", file=sys.stderr)
        return exc.exit_code
    except NonFiniteLossError as exc:
        print(f"resnetv2 train: error: {exc}", file=sys.stderr)
        return 1
    except ResNetV2Error as exc:  # in the command line's words: flags, with their keys
        words = flag_words(str(exc))
        if words == str(exc):
            raise
        raise ResNetV2Error(words) from None
    if result.results.get("world_size", 1) == 1 or _is_main():
        print(f"run folder: {result.run_dir}")
    return 0


_START_COUNTED = False


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
