"""Parameter and FLOP counts computed from a spec alone (no torch).

``params`` counts trainable parameters (BN running statistics excluded), exactly as
``sum(p.numel() for p in model.parameters())`` does for the built model — a property test
checks that equality over random specs. ``flops`` counts multiply-accumulates of conv and
linear layers for one image (the convention behind He et al.'s "3.8×10⁹ FLOPs" for
ResNet-50); norms, activations, pooling and additions are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnetv2.spec import (
    ResNetV2Spec,
    UnitSpec,
    conv_has_bias,
    iter_units,
    stem_out_channels,
    unit_convs,
)


@dataclass(frozen=True)
class LayerGroupStats:
    """One row of a summary: the stem, a stage, or the head."""

    name: str
    units: int
    in_channels: int
    out_channels: int
    output_size: tuple[int, int]
    params: int
    flops: int


@dataclass(frozen=True)
class Analysis:
    spec: ResNetV2Spec
    input_size: tuple[int, int]
    rows: tuple[LayerGroupStats, ...]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def flops(self) -> int:
        return sum(r.flops for r in self.rows)


def _conv(cin: int, cout: int, k: int, bias: bool, out_hw: tuple[int, int]) -> tuple[int, int]:
    params = k * k * cin * cout + (cout if bias else 0)
    return params, k * k * cin * cout * out_hw[0] * out_hw[1]


def _down(size: tuple[int, int], stride: int) -> tuple[int, int]:
    # 1×1 convs without padding, 3×3 with padding 1, 7×7 with 3 and the 3×3/2 max-pool with 1
    # all map H to floor((H - 1) / stride) + 1.
    return ((size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1)


def stem_stats(spec: ResNetV2Spec, size: tuple[int, int]) -> LayerGroupStats:
    cin, cout = spec.in_channels, stem_out_channels(spec)
    if spec.stem_type == "none":
        return LayerGroupStats("stem", 0, cin, cout, size, 0, 0)
    bias = conv_has_bias(spec, "stem")
    if spec.stem_type.startswith("conv7x7"):
        conv_hw = _down(size, 2)
        params, flops = _conv(cin, cout, 7, bias, conv_hw)
        out_hw = _down(conv_hw, 2)
    else:
        out_hw = size
        params, flops = _conv(cin, cout, 3, bias, out_hw)
    if spec.stem_type == "conv3x3_bn_relu":
        params += 2 * cout
    return LayerGroupStats("stem", 0, cin, cout, out_hw, params, flops)


def unit_stats(spec: ResNetV2Spec, unit: UnitSpec, size: tuple[int, int]) -> tuple[int, int, tuple]:
    """``(params, flops, output_size)`` of one residual unit (its convs: :func:`unit_convs`)."""
    params = 2 * unit.in_channels if unit.preact else 0  # norm1's scale and shift
    flops = 0
    hw = size
    convs = unit_convs(spec, unit)
    for i, conv in enumerate(convs.branch):
        if i:
            params += 2 * conv.in_channels  # the norm-activation before this conv
        hw = _down(hw, conv.stride)
        p, f = _conv(conv.in_channels, conv.out_channels, conv.kernel_size, conv.bias, hw)
        params += p
        flops += f
    if (proj := convs.shortcut) is not None:
        p, f = _conv(proj.in_channels, proj.out_channels, 1, proj.bias, _down(size, proj.stride))
        params += p
        flops += f
    return params, flops, hw


def head_stats(spec: ResNetV2Spec, size: tuple[int, int]) -> LayerGroupStats:
    c = spec.num_features
    params = 2 * c if spec.final_norm else 0
    flops = 0
    features = c
    if spec.head == "dense":
        params += c * spec.head_hidden + spec.head_hidden + 2 * spec.head_hidden
        flops += c * spec.head_hidden
        features = spec.head_hidden
    if spec.num_classes:
        params += features * spec.num_classes + spec.num_classes
        flops += features * spec.num_classes
    out = spec.num_classes or features
    return LayerGroupStats("head", 0, c, out, (1, 1), params, flops)


def analyze(spec: ResNetV2Spec, input_size: int | tuple[int, int] = 32) -> Analysis:
    """Per-stage parameter and FLOP counts and output sizes for one input size."""
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size):
        raise ValueError(f"input_size must be a positive int or (height, width), got {input_size}")
    rows = [stem_stats(spec, size)]
    hw = rows[0].output_size
    stage_rows: dict[int, list] = {}
    for unit in iter_units(spec, stem_out_channels(spec)):
        params, flops, hw = unit_stats(spec, unit, hw)
        acc = stage_rows.setdefault(unit.stage, [0, 0, unit.in_channels, hw])
        acc[0] += params
        acc[1] += flops
        acc[3] = hw
    for s, stage in enumerate(spec.stages):
        params, flops, cin, out_hw = stage_rows[s]
        rows.append(
            LayerGroupStats(
                f"stage{s + 1}", stage.units, cin, stage.out_channels, out_hw, params, flops
            )
        )
    rows.append(head_stats(spec, hw))
    return Analysis(spec, size, tuple(rows))


def count_params(spec: ResNetV2Spec) -> int:
    """Trainable parameters of the model built from ``spec`` (independent of input size)."""
    return analyze(spec, 32).params


def count_flops(spec: ResNetV2Spec, input_size: int | tuple[int, int] = 32) -> int:
    """Multiply-accumulates for one image of ``input_size``."""
    return analyze(spec, input_size).flops


#: FLOPs of one training step per multiply-accumulate of the forward pass: 2 FLOPs per
#: multiply-add, times 3 for forward + backward (the backward pass computes the gradients
#: of the inputs and of the weights, each about one forward's work; Kaplan et al. 2020,
#: "Scaling Laws for Neural Language Models", count training compute the same way).
TRAIN_FLOPS_PER_MAC = 2 * 3


def training_pflop(spec: ResNetV2Spec, input_size: int | tuple[int, int], images: int) -> float:
    """Training compute in PFLOP (10**15 FLOPs): ``count_flops(spec, input_size)`` ×
    2 FLOPs per multiply-add × 3 (forward + backward) × ``images`` seen in training.

    The convention of airbench (Jordan 2024, arXiv:2404.00498), which makes runs on different
    machines comparable: validation, test-time augmentation and data loading are not counted,
    and a frozen layer is counted as if it trained.
    """
    if isinstance(images, bool) or not isinstance(images, int) or images < 0:
        raise ValueError(f"images must be a non-negative int, got {images!r}")
    return count_flops(spec, input_size) * TRAIN_FLOPS_PER_MAC * images / 1e15
