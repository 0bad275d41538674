"""Architecture options on the command line, shared by every command that builds a model."""

from __future__ import annotations

import argparse
from typing import Any

from resnetv2.depth import LAYOUTS
from resnetv2.errors import SpecError
from resnetv2.options import make_spec, parse_int_list
from resnetv2.presets import list_presets
from resnetv2.spec import (
    BLOCKS,
    CLASSIFIERS,
    CONV_BIAS,
    HEADS,
    NORMS,
    SHORTCUT_INPUTS,
    STEM_TYPES,
    STRIDE_AT,
    ResNetV2Spec,
)


def int_list(text: str) -> list[int]:
    """:func:`~resnetv2.options.parse_int_list` with its message in argparse's error line."""
    try:
        return parse_int_list(text, "the list")
    except SpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# (flag, spec option, argparse kwargs)
_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("--layout", "layout", {"choices": LAYOUTS, "help": "stage layout (default: cifar)"}),
    ("--block", "block", {"choices": ("auto", *BLOCKS), "help": "unit type (default: auto)"}),
    ("--units", "units", {"type": int_list, "help": "units per stage, e.g. 3,4,6,3"}),
    ("--widths", "widths", {"type": int_list, "help": "inner width per stage"}),
    ("--out-channels", "out_channels", {"type": int_list, "help": "output width per stage"}),
    ("--strides", "strides", {"type": int_list, "help": "stride per stage"}),
    ("--width-multiplier", "width_multiplier", {"type": float, "help": "scale all widths"}),
    ("--classes", "num_classes", {"type": int, "help": "number of classes (0: no classifier)"}),
    ("--in-channels", "in_channels", {"type": int, "help": "input channels (default: 3)"}),
    ("--stem-type", "stem_type", {"choices": STEM_TYPES}),
    ("--stem-width", "stem_width", {"type": int}),
    ("--stem-dropout", "stem_dropout", {"type": float}),
    ("--stride-at", "stride_at", {"choices": STRIDE_AT, "help": "where a stage downsamples"}),
    ("--shortcut-input", "shortcut_input", {"choices": SHORTCUT_INPUTS}),
    ("--conv-bias", "conv_bias", {"choices": CONV_BIAS}),
    ("--norm", "norm", {"choices": NORMS}),
    ("--norm-groups", "norm_groups", {"type": int}),
    ("--norm-eps", "norm_eps", {"type": float}),
    ("--head", "head", {"choices": HEADS}),
    ("--head-hidden", "head_hidden", {"type": int}),
    ("--head-dropout", "head_dropout", {"type": float}),
    ("--classifier", "classifier", {"choices": CLASSIFIERS}),
    ("--dropout", "dropout", {"type": float, "help": "dropout before the classifier"}),
    ("--drop-path-rate", "drop_path_rate", {"type": float, "help": "stochastic depth rate"}),
]


def add_spec_arguments(parser: argparse.ArgumentParser, *, depth_flag: bool = True) -> None:
    """Add ``--preset``/``--depth`` and one flag per spec option."""
    group = parser.add_argument_group("architecture")
    group.add_argument(
        "--preset", metavar="NAME", help="named network: " + ", ".join(list_presets())
    )
    if depth_flag:
        group.add_argument("--depth", type=int, help="any valid depth (see `resnetv2 depths`)")
    for flag, name, kwargs in _OPTIONS:
        group.add_argument(flag, dest=name, default=None, **kwargs)
    group.add_argument(
        "--final-norm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="BN-ReLU before the head (default: on)",
    )
    group.add_argument(
        "--zero-init-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start every residual branch at zero",
    )


def spec_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    options = {name: getattr(args, name) for _, name, _ in _OPTIONS}
    options["final_norm"] = args.final_norm
    options["zero_init_last"] = args.zero_init_last
    return {k: v for k, v in options.items() if v is not None}


def spec_from_args(args: argparse.Namespace, *, default: str | int | None = None) -> ResNetV2Spec:
    """The spec the flags describe; ``--preset`` and ``--depth`` may be combined."""
    options = spec_options_from_args(args)
    depth = getattr(args, "depth", None)
    if args.preset is not None:
        if depth is not None:
            options["depth"] = depth
        return make_spec(args.preset, **options)
    if depth is None and "units" not in options:
        if default is None:
            from resnetv2.errors import SpecError

            raise SpecError("give --depth D, --preset NAME or --units (see `resnetv2 depths`)")
        return make_spec(default, **options)
    return make_spec(depth, **options)
