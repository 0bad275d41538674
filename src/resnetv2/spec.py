"""The architecture spec: one frozen, JSON-serialisable description of a pre-activation ResNet.

A :class:`ResNetV2Spec` is pure data (no torch import). Every other part of the project —
the PyTorch and Keras builders, the summary table, the analytic counts, checkpoint
metadata — is derived from it, so two models built from equal specs are the same network.

The spec makes explicit the conventions that He et al. 2016 ("Identity Mappings in Deep
Residual Networks", arXiv:1603.05027) leave open and that reference implementations resolve
differently: where the downsampling stride sits, what the projection shortcut sees, the stem,
conv biases, and the head. :func:`iter_units` expands a spec into one :class:`UnitSpec` per
residual unit; builders consume that list and never re-derive the rules themselves.

Turning a depth (plus options) into a spec is the job of :mod:`resnetv2.depth` and
:func:`resnetv2.options.make_spec`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from resnetv2.errors import SpecError, suggest

# The string choices of the spec, typed as the config's are (``Literal``); each runtime tuple is
# derived from its alias with ``get_args``, so the type checker and ``_validate`` cannot drift.
Block = Literal["basic", "bottleneck"]
StrideAt = Literal["first_1x1", "first_3x3", "last_unit"]
ShortcutInput = Literal["preact", "raw"]
StemType = Literal[
    "conv3x3", "conv3x3_bn_relu", "conv7x7_maxpool", "conv7x7_zeropad_maxpool", "none"
]
ConvBias = Literal["none", "all", "keras"]
Norm = Literal["batch", "group"]
Head = Literal["linear", "dense"]
Classifier = Literal["linear", "conv1x1"]
#: What a unit's shortcut is (resolved per unit by :func:`iter_units`).
Shortcut = Literal["identity", "projection", "subsample"]
#: The conv of a unit that carries its stride.
StrideOn = Literal["conv1", "conv2"]
#: The roles a conv plays, for :func:`conv_has_bias`.
ConvRole = Literal["stem", "shortcut", "inner", "last"]

BLOCKS: tuple[Block, ...] = get_args(Block)
STRIDE_AT: tuple[StrideAt, ...] = get_args(StrideAt)
SHORTCUT_INPUTS: tuple[ShortcutInput, ...] = get_args(ShortcutInput)
STEM_TYPES: tuple[StemType, ...] = get_args(StemType)
CONV_BIAS: tuple[ConvBias, ...] = get_args(ConvBias)
NORMS: tuple[Norm, ...] = get_args(Norm)
HEADS: tuple[Head, ...] = get_args(Head)
CLASSIFIERS: tuple[Classifier, ...] = get_args(Classifier)
SHORTCUTS: tuple[Shortcut, ...] = get_args(Shortcut)
STRIDE_ON: tuple[StrideOn, ...] = get_args(StrideOn)
CONV_ROLES: tuple[ConvRole, ...] = get_args(ConvRole)
CONVS_PER_UNIT: dict[Block, int] = {"basic": 2, "bottleneck": 3}

#: Upper bounds that stop hostile values before anything is allocated. A depth-100,000 net is
#: already ~40x deeper than anything published; widths past 2**16 channels are not a ResNet.
MAX_DEPTH = 100_000
MAX_WIDTH = 1 << 16
MAX_STRIDE = 8
MAX_CLASSES = 1_000_000
MAX_IN_CHANNELS = 4096


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``units`` residual units that share a width.

    ``width`` is the inner (bottleneck) width of each unit; for basic units it equals
    ``out_channels``. ``stride`` is the stage's total downsampling factor; where inside the
    stage it is applied is the spec's ``stride_at``.
    """

    units: int
    width: int
    out_channels: int
    stride: int = 1


@dataclass(frozen=True)
class ResNetV2Spec:
    """A complete, explicit pre-activation ResNet.

    Field defaults follow He et al.'s CIFAR networks; presets set the rest (see
    :mod:`resnetv2.presets`). Each convention field names the choice it makes:

    - ``stride_at``: ``first_1x1`` — the first conv of the stage's first unit (the 1×1 of a
      bottleneck, as in KaimingHe/resnet-1k-layers); ``first_3x3`` — the 3×3 of the first unit
      (timm, pytorchcv); ``last_unit`` — the 3×3 of the stage's *last* unit, with the identity
      shortcut subsampled (keras.applications). Basic units have no 1×1, so both ``first_*``
      values put the stride on their first 3×3.
    - ``shortcut_input``: the projection shortcut sees the pre-activated input (``preact``, as
      in the paper) or the raw input (``raw``, as in the seed tutorial).
    - ``stem_type``: ``conv3x3`` (paper CIFAR nets), ``conv3x3_bn_relu`` (the tutorial's
      conv-BN-ReLU-Dropout; the first unit then skips its own pre-activation, as the paper's
      code does after a normalised stem), ``conv7x7_maxpool`` (ImageNet, timm),
      ``conv7x7_zeropad_maxpool`` (keras.applications: zero padding before the max-pool), or
      ``none`` (stages appended to a user's own network).
    - ``conv_bias``: ``none``; ``all`` (the tutorial); ``keras`` — bias on the convs that are
      not followed by a norm layer inside the unit: stem, shortcut and each unit's last conv.
    - ``head``: ``linear`` (pool, dropout, classifier) or ``dense`` (the tutorial's pool,
      Dense(``head_hidden``)-ReLU-BN-Dropout(``head_dropout``), classifier). The tutorial's
      fixed AveragePooling2D(8) is generalised to global average pooling, which is identical
      for 32×32 inputs and makes every input size work.
    - ``classifier``: a ``linear`` layer or a ``conv1x1`` (timm's layout, for weight parity).
    - ``num_classes = 0`` builds no classifier (a backbone).
    """

    block: Block
    stages: tuple[StageSpec, ...]
    in_channels: int = 3
    num_classes: int = 10
    stem_type: StemType = "conv3x3"
    stem_width: int = 16
    stem_dropout: float = 0.0
    stride_at: StrideAt = "first_1x1"
    shortcut_input: ShortcutInput = "preact"
    conv_bias: ConvBias = "none"
    norm: Norm = "batch"
    norm_groups: int = 32
    norm_eps: float = 1e-5
    final_norm: bool = True
    head: Head = "linear"
    head_hidden: int = 512
    head_dropout: float = 0.5
    classifier: Classifier = "linear"
    dropout: float = 0.0
    drop_path_rate: float = 0.0
    zero_init_last: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        _validate(self)

    # -- derived facts -------------------------------------------------------------------
    @property
    def convs_per_unit(self) -> int:
        return CONVS_PER_UNIT[self.block]

    @property
    def units_per_stage(self) -> tuple[int, ...]:
        return tuple(s.units for s in self.stages)

    @property
    def total_units(self) -> int:
        return sum(self.units_per_stage)

    @property
    def depth(self) -> int:
        """Weighted layers: one stem conv, the units' convs, one classifier (He et al.)."""
        return 2 + self.convs_per_unit * self.total_units

    @property
    def num_features(self) -> int:
        """Channels of the final feature map (input to the head)."""
        return self.stages[-1].out_channels

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResNetV2Spec:
        """Rebuild a spec from :meth:`to_dict` output; unknown or ill-typed fields are errors."""
        if not isinstance(data, Mapping):
            raise SpecError(f"a spec must be a JSON object, got {type(data).__name__}")
        check_keys(data, {f.name for f in dataclasses.fields(cls)}, "spec")
        values = dict(data)
        if "stages" not in values or "block" not in values:
            raise SpecError("a spec needs at least 'block' and 'stages'")
        stages = values["stages"]
        if not isinstance(stages, (list, tuple)):
            raise SpecError("'stages' must be a list of objects with units/width/out_channels")
        parsed = []
        stage_fields = {f.name for f in dataclasses.fields(StageSpec)}
        for i, stage in enumerate(stages):
            if not isinstance(stage, Mapping):
                raise SpecError(f"stages[{i}] must be an object, got {type(stage).__name__}")
            check_keys(stage, stage_fields, f"stages[{i}]")
            missing = {"units", "width", "out_channels"} - set(stage)
            if missing:
                raise SpecError(f"stages[{i}] is missing {sorted(missing)}")
            parsed.append(StageSpec(**stage))
        values["stages"] = tuple(parsed)
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> ResNetV2Spec:
        from resnetv2.jsontext import loads  # nesting bounded: the text may be a user's

        try:
            data = loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"spec is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> ResNetV2Spec:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class UnitSpec:
    """One residual unit, fully resolved: what a builder instantiates.

    ``stride_on`` names the conv carrying the stride (``conv1``/``conv2``, or ``None``).
    ``shortcut`` is ``identity``, ``projection`` (1×1 conv, strided with the unit) or
    ``subsample`` (identity taken every ``stride`` pixels, keras.applications' 1×1 max-pool).
    ``preact`` is False only for a first unit that follows a normalised stem.
    """

    stage: int
    index: int
    block: Block
    in_channels: int
    width: int
    out_channels: int
    stride: int
    stride_on: StrideOn | None
    shortcut: Shortcut
    preact: bool
    drop_path: float


def iter_units(spec: ResNetV2Spec, in_channels: int | None = None) -> Iterator[UnitSpec]:
    """Expand a spec into its residual units, in order.

    Stochastic depth follows a linear per-unit schedule (Huang et al. 2016): unit ``k`` of
    ``n`` drops its branch with probability ``drop_path_rate * k / (n - 1)``.
    """
    channels = spec.stem_width if in_channels is None else in_channels
    total = spec.total_units
    k = 0
    for s, stage in enumerate(spec.stages):
        for u in range(stage.units):
            if spec.stride_at == "last_unit":
                stride = stage.stride if u == stage.units - 1 else 1
            else:
                stride = stage.stride if u == 0 else 1
            stride_on: StrideOn | None
            shortcut: Shortcut
            if stride == 1:
                stride_on = None
            elif spec.block == "bottleneck" and spec.stride_at == "first_1x1":
                stride_on = "conv1"
            elif spec.block == "bottleneck":
                stride_on = "conv2"
            else:
                stride_on = "conv1"
            if channels != stage.out_channels or (stride != 1 and spec.stride_at != "last_unit"):
                shortcut = "projection"
            elif stride != 1:
                shortcut = "subsample"
            else:
                shortcut = "identity"
            rate = spec.drop_path_rate * k / (total - 1) if total > 1 else 0.0
            yield UnitSpec(
                stage=s,
                index=u,
                block=spec.block,
                in_channels=channels,
                width=stage.width,
                out_channels=stage.out_channels,
                stride=stride,
                stride_on=stride_on,
                shortcut=shortcut,
                preact=not (k == 0 and spec.stem_type == "conv3x3_bn_relu"),
                drop_path=rate,
            )
            channels = stage.out_channels
            k += 1


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of a residual unit, as every builder and estimate must see it.

    ``name`` is the module path inside the unit (``conv1``…``conv3``, ``downsample.conv``:
    timm's names; the Keras twin writes ``.`` as ``_``). ``role`` is what
    :func:`conv_has_bias` decides ``bias`` by. Padding is ``kernel_size // 2``, so a conv maps
    ``H`` to ``floor((H - 1) / stride) + 1``.
    """

    name: str
    role: ConvRole
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    bias: bool

    @property
    def padding(self) -> int:
        return self.kernel_size // 2


@dataclass(frozen=True)
class UnitConvs:
    """A unit's convs: the residual ``branch`` in order (each after a norm-activation; the
    first after ``norm1``, which ``preact=False`` skips) and the projection ``shortcut``
    (None for identity and subsample shortcuts). Iterating gives all of them."""

    branch: tuple[ConvSpec, ...]
    shortcut: ConvSpec | None

    def __iter__(self) -> Iterator[ConvSpec]:
        yield from self.branch
        if self.shortcut is not None:
            yield self.shortcut


def unit_convs(spec: ResNetV2Spec, unit: UnitSpec) -> UnitConvs:
    """The convolutions of ``unit``: its residual branch and its projection shortcut.

    The one description of a unit's convs: the analytic counts (:mod:`resnetv2.analysis`), the
    activation-memory estimate (:mod:`resnetv2.memory.activations`) and the diagram
    (:mod:`resnetv2.viz.architecture`) read it, and both builders (``nn/blocks.py`` through
    :func:`resnetv2.nn.model.make_unit`, ``keras/builder.py``) are tested against it.
    """
    inner, last = conv_has_bias(spec, "inner"), conv_has_bias(spec, "last")

    def stride(name: str) -> int:
        return unit.stride if unit.stride_on == name else 1

    if unit.block == "bottleneck":
        w = unit.width
        convs = [
            ConvSpec("conv1", "inner", unit.in_channels, w, 1, stride("conv1"), inner),
            ConvSpec("conv2", "inner", w, w, 3, stride("conv2"), inner),
            ConvSpec("conv3", "last", w, unit.out_channels, 1, 1, last),
        ]
    else:
        convs = [
            ConvSpec("conv1", "inner", unit.in_channels, unit.width, 3, stride("conv1"), inner),
            ConvSpec("conv2", "last", unit.width, unit.out_channels, 3, 1, last),
        ]
    shortcut = None
    if unit.shortcut == "projection":
        bias = conv_has_bias(spec, "shortcut")
        shortcut = ConvSpec(
            "downsample.conv", "shortcut", unit.in_channels, unit.out_channels, 1, unit.stride, bias
        )
    return UnitConvs(tuple(convs), shortcut)


def stem_out_channels(spec: ResNetV2Spec) -> int:
    return spec.in_channels if spec.stem_type == "none" else spec.stem_width


def total_reduction(spec: ResNetV2Spec) -> int:
    """How many times smaller than the input the last feature map is: the ImageNet stems'
    stride-2 conv and max-pool (4), times every stage's stride."""
    reduction = 4 if spec.stem_type.startswith("conv7x7") else 1
    for stage in spec.stages:
        reduction *= stage.stride
    return reduction


def conv_has_bias(spec: ResNetV2Spec, role: ConvRole) -> bool:
    """Whether a conv in ``role`` (stem, shortcut, inner, last) carries a bias."""
    check_choice("conv role", role, CONV_ROLES)  # a typo would otherwise read as "no bias"
    if spec.conv_bias == "all":
        return True
    if spec.conv_bias == "keras":
        return role in ("stem", "shortcut", "last")
    return False


# -- validation ---------------------------------------------------------------------------


def check_keys(data: Mapping[str, Any], valid: set[str], what: str) -> None:
    unknown = [k for k in data if k not in valid]
    if unknown:
        key = unknown[0]
        raise SpecError(
            f"unknown {what} field {key!r}{suggest(key, valid)}; valid fields: "
            + ", ".join(sorted(valid))
        )


def check_choice(name: str, value: Any, valid: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in valid:
        raise SpecError(
            f"{name} must be one of {', '.join(valid)}; got {value!r}{suggest(value, valid)}"
        )


def check_int(name: str, value: Any, low: int, high: int) -> None:
    # bool is an int subclass; True as a depth is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise SpecError(f"{name} must be between {low} and {high:,}, got {value:,}")


def check_float(name: str, value: Any, low: float, high: float, *, high_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < low or value > high or (high_open and value == high):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise SpecError(f"{name} must be in {bound}, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise SpecError(f"{name} must be true or false, got {value!r}")


def _validate(spec: ResNetV2Spec) -> None:
    check_choice("block", spec.block, BLOCKS)
    if not isinstance(spec.stages, tuple) or not spec.stages:
        raise SpecError("stages must be a non-empty tuple of StageSpec")
    if len(spec.stages) > 16:
        raise SpecError(f"at most 16 stages are supported, got {len(spec.stages)}")
    units = 0
    for i, stage in enumerate(spec.stages):
        if not isinstance(stage, StageSpec):
            raise SpecError(f"stages[{i}] must be a StageSpec, got {type(stage).__name__}")
        check_int(f"stages[{i}].units", stage.units, 1, MAX_DEPTH)
        check_int(f"stages[{i}].width", stage.width, 1, MAX_WIDTH)
        check_int(f"stages[{i}].out_channels", stage.out_channels, 1, MAX_WIDTH)
        check_int(f"stages[{i}].stride", stage.stride, 1, MAX_STRIDE)
        if spec.block == "basic" and stage.width != stage.out_channels:
            raise SpecError(
                f"stages[{i}]: basic units have one width; width {stage.width} != "
                f"out_channels {stage.out_channels}"
            )
        units += stage.units
    depth = 2 + CONVS_PER_UNIT[spec.block] * units
    if depth > MAX_DEPTH:
        raise SpecError(f"depth {depth:,} exceeds the supported maximum of {MAX_DEPTH:,}")
    check_int("in_channels", spec.in_channels, 1, MAX_IN_CHANNELS)
    check_int("num_classes", spec.num_classes, 0, MAX_CLASSES)
    check_choice("stem_type", spec.stem_type, STEM_TYPES)
    check_int("stem_width", spec.stem_width, 1, MAX_WIDTH)
    check_float("stem_dropout", spec.stem_dropout, 0.0, 1.0, high_open=True)
    check_choice("stride_at", spec.stride_at, STRIDE_AT)
    check_choice("shortcut_input", spec.shortcut_input, SHORTCUT_INPUTS)
    check_choice("conv_bias", spec.conv_bias, CONV_BIAS)
    check_choice("norm", spec.norm, NORMS)
    check_int("norm_groups", spec.norm_groups, 1, MAX_WIDTH)
    check_float("norm_eps", spec.norm_eps, 0.0, 1.0)
    if spec.norm_eps == 0:
        raise SpecError("norm_eps must be > 0 (it guards a division by the variance)")
    check_bool("final_norm", spec.final_norm)
    check_choice("head", spec.head, HEADS)
    check_int("head_hidden", spec.head_hidden, 1, MAX_WIDTH)
    check_float("head_dropout", spec.head_dropout, 0.0, 1.0, high_open=True)
    check_choice("classifier", spec.classifier, CLASSIFIERS)
    check_float("dropout", spec.dropout, 0.0, 1.0, high_open=True)
    check_float("drop_path_rate", spec.drop_path_rate, 0.0, 1.0, high_open=True)
    check_bool("zero_init_last", spec.zero_init_last)
    if not isinstance(spec.name, str):
        raise SpecError(f"name must be a string, got {spec.name!r}")
    if spec.head == "dense" and spec.classifier != "linear":
        raise SpecError("the dense head ends in a linear classifier; use classifier='linear'")
    if spec.norm == "group":
        channels = [spec.stem_width] + [c for s in spec.stages for c in (s.width, s.out_channels)]
        bad = sorted({c for c in channels if c % spec.norm_groups})
        if bad:
            raise SpecError(
                f"group norm with {spec.norm_groups} groups needs every width divisible by "
                f"{spec.norm_groups}; these are not: {bad}. Choose norm_groups dividing all widths."
            )
