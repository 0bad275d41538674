"""From user options (a depth or a preset, plus named overrides) to an explicit spec.

:func:`make_spec` is the one place where layout defaults are applied. The CLI, the YAML
recipes and the Python builders all pass their options through it, so an option means the
same thing everywhere and an unknown option is rejected the same way everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, get_args

from resnetv2.depth import (
    AUTO_BASIC_MAX_DEPTH,
    LAYOUTS,
    NUM_STAGES,
    depth_from_units,
    units_for_depth,
)
from resnetv2.errors import SpecError
from resnetv2.spec import (
    BLOCKS,
    MAX_DEPTH,
    MAX_STRIDE,
    MAX_WIDTH,
    Block,
    ResNetV2Spec,
    StageSpec,
    check_choice,
    check_float,
    check_int,
    check_keys,
)

#: Layout defaults: He et al.'s CIFAR nets and the ImageNet nets (timm conventions).
LAYOUT_DEFAULTS: dict[str, dict[str, Any]] = {
    "cifar": {
        "widths": (16, 32, 64),
        "strides": (1, 2, 2),
        "stem_type": "conv3x3",
        "stem_width": 16,
        "stride_at": "first_1x1",
        "num_classes": 10,
    },
    "imagenet": {
        "widths": (64, 128, 256, 512),
        "strides": (1, 2, 2, 2),
        "stem_type": "conv7x7_maxpool",
        "stem_width": 64,
        "stride_at": "first_3x3",
        "num_classes": 1000,
    },
}

#: The ``block`` option: a spec's block, or ``auto`` (chosen from the depth, see
#: :mod:`resnetv2.depth`). Nested ``Literal`` flattens, so this is the spec's choices plus one.
BlockChoice = Literal["auto", Block]
BLOCK_CHOICES: tuple[BlockChoice, ...] = get_args(BlockChoice)

#: Output channels over inner width: the paper's bottleneck expands 4× (He et al. 2016).
EXPANSION: dict[Block, int] = {"basic": 1, "bottleneck": 4}

_SPEC_FIELDS = {f.name for f in dataclasses.fields(ResNetV2Spec)} - {"block", "stages"}
#: Options that shape the stages; everything else is copied onto the spec as it is.
STAGE_OPTIONS = {
    "depth",
    "layout",
    "block",
    "units",
    "widths",
    "out_channels",
    "strides",
    "width_multiplier",
}
OPTION_NAMES = frozenset(_SPEC_FIELDS | STAGE_OPTIONS)


def parse_int_list(text: str, name: str = "value") -> list[int]:
    """``"3,4,6,3"`` or ``"3 4 6 3"`` as ``[3, 4, 6, 3]``: the one parser of integer lists
    (spec options from Python, YAML and the command line all come through here)."""
    try:
        values = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise SpecError(f"{name} must be integers like 3,4,6,3, got {text!r}") from None
    if not values:
        raise SpecError(f"{name} must hold at least one integer, got {text!r}")
    return values


def _int_list(name: str, value: Any, low: int, high: int) -> tuple[int, ...]:
    if isinstance(value, str):
        value = parse_int_list(value, name)
    if not isinstance(value, (list, tuple)) or not value:
        raise SpecError(f"{name} must be a non-empty list of integers, got {value!r}")
    for i, v in enumerate(value):
        check_int(f"{name}[{i}]", v, low, high)
    return tuple(value)


def make_spec(model: str | int | None = None, /, **options: Any) -> ResNetV2Spec:
    """Build a spec from a preset name or a depth, plus options.

    ``make_spec(164)`` is He et al.'s CIFAR ResNet-164; ``make_spec("resnetv2_50")`` the
    timm-compatible ImageNet net; ``make_spec(50, layout="imagenet", num_classes=10)`` the
    same units with a 10-class head. Options are the spec's fields plus ``depth``,
    ``layout``, ``block`` (``auto``/``basic``/``bottleneck``), ``units`` (one count per
    stage; overrides the depth rule), ``widths`` (inner width per stage), ``out_channels``,
    ``strides`` and ``width_multiplier``. ``None`` values mean "use the default".
    """
    options = {k: v for k, v in options.items() if v is not None}
    check_keys(options, set(OPTION_NAMES), "option")
    if isinstance(model, bool):
        raise SpecError(f"model must be a preset name or a depth, got {model!r}")
    if isinstance(model, str):
        from resnetv2.presets import get_preset

        preset = dict(get_preset(model).options)
        base = dict(preset)
        if "units" in options and "depth" not in options:
            base.pop("depth", None)
        spec = _resolve({**base, **options})
        if "name" not in options and spec.stages != _resolve(preset).stages:
            # A preset with other stages is no longer that network; don't carry its name.
            spec = spec.replace(name="")
        return spec
    elif isinstance(model, int):
        if "depth" in options and options["depth"] != model:
            raise SpecError(f"depth given twice: {model} and {options['depth']}")
        options["depth"] = model
    elif model is not None:
        raise SpecError(f"model must be a preset name or a depth, got {type(model).__name__}")
    return _resolve(options)


def _resolve(options: dict[str, Any]) -> ResNetV2Spec:
    layout = options.get("layout", "cifar")
    check_choice("layout", layout, LAYOUTS)
    block = options.get("block", "auto")
    check_choice("block", block, BLOCK_CHOICES)
    defaults = LAYOUT_DEFAULTS[layout]

    depth = options.get("depth")
    if depth is not None:
        check_int("depth", depth, 1, MAX_DEPTH)
    if "units" in options:
        units = _int_list("units", options["units"], 1, MAX_DEPTH)
        if block == "auto":
            fits = [b for b in BLOCKS if depth is None or depth_from_units(units, b) == depth]
            preferred = _auto_for(depth or depth_from_units(units, "basic"), layout)
            block = preferred if preferred in fits or not fits else fits[0]
        if depth is not None and depth != depth_from_units(units, block):
            raise SpecError(
                f"units {list(units)} make a {block} net of depth {depth_from_units(units, block)}"
                f", not {depth}; drop one of depth/units"
            )
    elif depth is not None:
        block, units = units_for_depth(depth, layout, block)
    else:
        raise SpecError("give a depth (e.g. 56), a preset name, or a units list")

    stages = len(units)
    if stages != NUM_STAGES[layout] and "widths" not in options:
        raise SpecError(
            f"{stages} stages differ from the {layout} layout's {NUM_STAGES[layout]}; "
            "give widths (and strides) for each stage"
        )
    widths = _int_list("widths", options.get("widths", defaults["widths"]), 1, MAX_WIDTH)
    default_out = tuple(w * EXPANSION[block] for w in widths)
    out = _int_list("out_channels", options.get("out_channels", default_out), 1, MAX_WIDTH)
    default_strides = (
        defaults["strides"] if stages == NUM_STAGES[layout] else (1,) + (2,) * (stages - 1)
    )
    strides = _int_list("strides", options.get("strides", default_strides), 1, MAX_STRIDE)
    for name, values in (("widths", widths), ("out_channels", out), ("strides", strides)):
        if len(values) != stages:
            raise SpecError(f"{name} has {len(values)} entries but there are {stages} stages")
    multiplier = options.get("width_multiplier", 1.0)
    check_float("width_multiplier", multiplier, 1 / 64, 64.0)
    if multiplier != 1:
        widths = tuple(max(1, round(w * multiplier)) for w in widths)
        out = tuple(max(1, round(o * multiplier)) for o in out)

    fields = {k: v for k, v in options.items() if k in _SPEC_FIELDS}
    for key in ("stem_type", "stem_width", "stride_at", "num_classes"):
        fields.setdefault(key, defaults[key])
    return ResNetV2Spec(
        block=block,
        stages=tuple(StageSpec(u, w, o, s) for u, w, o, s in zip(units, widths, out, strides)),
        **fields,
    )


def _auto_for(depth: int, layout: str) -> str:
    return "basic" if depth <= AUTO_BASIC_MAX_DEPTH[layout] else "bottleneck"


def spec_options(spec: ResNetV2Spec) -> dict[str, Any]:
    """Options that :func:`make_spec` turns back into exactly ``spec``."""
    data = spec.to_dict()
    stages = data.pop("stages")
    data["units"] = [s["units"] for s in stages]
    data["widths"] = [s["width"] for s in stages]
    data["out_channels"] = [s["out_channels"] for s in stages]
    data["strides"] = [s["stride"] for s in stages]
    data["layout"] = "imagenet" if len(stages) == 4 else "cifar"
    if len(stages) not in (3, 4):
        data.pop("layout")
    return data


def coerce_options(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate option names only (values are checked by :func:`make_spec`)."""
    check_keys(raw, set(OPTION_NAMES), "option")
    return dict(raw)
