"""Architecture diagram of a spec: stem, one panel per stage, head — readable at any depth.

The diagram is drawn from the spec alone (:func:`resnetv2.spec.iter_units` for the units,
:func:`resnetv2.analysis.analyze` for shapes and parameter counts), like the seed tutorial's
"architecture with depth 11" figure. Consecutive identical units are collapsed into one box
with a "×N" count, so ResNet-1001's 333 units draw as six boxes. Each unit box lists its
layers in pre-activation order (He et al. 2016, Fig. 1b / 4e: BN-ReLU before each conv), marks
the strided conv in red, and names its shortcut: identity, projection (1×1 conv) or subsample
(keras.applications' strided identity). :func:`architecture_boxes` returns the boxes as data
so the layout can be tested without reading pixels; :func:`plot_architecture` draws them.
"""

from __future__ import annotations

import os
from pathlib import Path

from resnetv2.analysis import analyze, stem_stats, unit_stats
from resnetv2.spec import (
    ResNetV2Spec,
    UnitSpec,
    conv_has_bias,
    iter_units,
    stem_out_channels,
    unit_convs,
)
from resnetv2.viz.diagram import SHORTCUT_COLOURS as SHORTCUT_COLOURS  # re-exported
from resnetv2.viz.diagram import STRIDE_COLOUR as STRIDE_COLOUR  # re-exported
from resnetv2.viz.diagram import DiagramBox, draw_diagram


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def _shape(channels: int, hw: tuple[int, int]) -> str:
    return f"{channels}×{hw[0]}×{hw[1]}"


def _norm(spec: ResNetV2Spec) -> str:
    return "BN-ReLU" if spec.norm == "batch" else "GN-ReLU"


def _conv(k: int, cin: int, cout: int, stride: int, bias: bool) -> str:
    text = f"conv {k}×{k}  {cin}→{cout}"
    if bias:
        text += " +b"
    if stride > 1:
        text += f"  /{stride}"
    return text


def _unit_key(unit: UnitSpec) -> tuple:
    # drop_path differs per unit (a linear schedule) but not the unit's structure.
    return (
        unit.stage,
        unit.in_channels,
        unit.width,
        unit.out_channels,
        unit.stride,
        unit.stride_on,
        unit.shortcut,
        unit.preact,
    )


def _unit_lines(spec: ResNetV2Spec, unit: UnitSpec, out_hw, drop: tuple[float, float]):
    norm = _norm(spec)
    lines: list[str] = []
    strided: list[int] = []
    if unit.preact:
        lines.append(f"{norm} (pre-activation)")
    else:
        lines.append("no pre-act (stem ends in BN-ReLU)")
    convs = unit_convs(spec, unit)
    for i, conv in enumerate(convs.branch):
        if i:
            lines.append(norm)
        if conv.stride > 1:
            strided.append(len(lines))
        lines.append(
            _conv(conv.kernel_size, conv.in_channels, conv.out_channels, conv.stride, conv.bias)
        )
    if drop[1] > 0:
        rate = f"{drop[0]:.3f}" if drop[0] == drop[1] else f"{drop[0]:.3f}–{drop[1]:.3f}"
        lines.append(f"drop-path {rate}")
    if unit.shortcut == "identity":
        lines.append("⊕ identity shortcut")
    elif unit.shortcut == "subsample":
        strided.append(len(lines))
        lines.append(f"⊕ subsampled identity  /{unit.stride}")
    elif (proj := convs.shortcut) is not None:
        if proj.stride > 1:
            strided.append(len(lines))
        lines.append(
            "⊕ projection " + _conv(1, proj.in_channels, proj.out_channels, proj.stride, proj.bias)
        )
        seen = "pre-activated" if spec.shortcut_input == "preact" and unit.preact else "raw"
        lines.append(f"   on the {seen} input")
    lines.append(f"out {_shape(unit.out_channels, out_hw)}")
    return tuple(lines), tuple(strided)


def _stem_box(spec: ResNetV2Spec, size: tuple[int, int]) -> DiagramBox:
    stats = stem_stats(spec, size)
    width = stem_out_channels(spec)
    lines = [f"input {_shape(spec.in_channels, size)}"]
    strided: list[int] = []
    bias = conv_has_bias(spec, "stem")
    if spec.stem_type == "none":
        lines.append("(no stem)")
    elif spec.stem_type.startswith("conv7x7"):
        strided.append(len(lines))
        lines.append(_conv(7, spec.in_channels, width, 2, bias))
        if spec.stem_type == "conv7x7_zeropad_maxpool":
            lines.append("zero-pad 1")
        strided.append(len(lines))
        lines.append("max-pool 3×3  /2")
    else:
        lines.append(_conv(3, spec.in_channels, width, 1, bias))
        if spec.stem_type == "conv3x3_bn_relu":
            lines.append(_norm(spec))
            if spec.stem_dropout:
                lines.append(f"dropout {spec.stem_dropout:g}")
    lines.append(f"out {_shape(width, stats.output_size)}")
    lines.append(f"{_si(stats.params)} params")
    return DiagramBox("stem", 0, "stem", tuple(lines), strided=tuple(strided))


def _head_box(spec: ResNetV2Spec, column: int, params: int) -> DiagramBox:
    lines = []
    features = spec.num_features
    if spec.final_norm:
        lines.append(f"{_norm(spec)} (final)")
    lines.append("global average pool")
    if spec.head == "dense":
        lines.append(f"dense {features}→{spec.head_hidden}, ReLU")
        lines.append(f"BN, dropout {spec.head_dropout:g}")
        features = spec.head_hidden
    if spec.dropout:
        lines.append(f"dropout {spec.dropout:g}")
    if spec.num_classes:
        kind = "conv 1×1" if spec.classifier == "conv1x1" else "linear"
        lines.append(f"{kind}  {features}→{spec.num_classes}")
        lines.append(f"out {spec.num_classes} logits")
    else:
        lines.append(f"out {features} features (no classifier)")
    lines.append(f"{_si(params)} params")
    return DiagramBox("head", column, "head", tuple(lines))


def architecture_boxes(spec: ResNetV2Spec, input_size: int | tuple[int, int] = 32):
    """The diagram's boxes, in drawing order: stem, then per stage its title and unit groups,
    then the head. Consecutive units with the same structure share one box (``repeat`` > 1,
    title ending in ``×N``)."""
    report = analyze(spec, input_size)
    boxes = [_stem_box(spec, report.input_size)]
    hw = report.rows[0].output_size
    groups: list[list] = []  # [key, first unit, count, out_hw, min drop, max drop, params]
    for unit in iter_units(spec, stem_out_channels(spec)):
        params, _flops, hw = unit_stats(spec, unit, hw)
        key = _unit_key(unit)
        if groups and groups[-1][0] == key:
            group = groups[-1]
            group[2] += 1
            group[5] = unit.drop_path
        else:
            groups.append([key, unit, 1, hw, unit.drop_path, unit.drop_path, params])
    for s, stage in enumerate(spec.stages):
        row = report.rows[s + 1]
        boxes.append(
            DiagramBox(
                "stage",
                s + 1,
                f"stage {s + 1}",
                (
                    f"{stage.units} unit{'s' if stage.units > 1 else ''} · {spec.block}",
                    f"out {_shape(row.out_channels, row.output_size)}",
                    f"{_si(row.params)} params",
                ),
                repeat=stage.units,
                stride=stage.stride,
            )
        )
        for _key, unit, count, out_hw, drop_lo, drop_hi, params in groups:
            if unit.stage != s:
                continue
            first = unit.index + 1
            if count == 1:
                title = f"unit {first}"
            else:
                title = f"units {first}–{first + count - 1}  ×{count}"
            lines, strided = _unit_lines(spec, unit, out_hw, (drop_lo, drop_hi))
            per = f"{_si(params)} params" + (" each" if count > 1 else "")
            boxes.append(
                DiagramBox(
                    "unit",
                    s + 1,
                    title,
                    (*lines, per),
                    repeat=count,
                    shortcut=unit.shortcut,
                    stride=unit.stride,
                    strided=strided,
                )
            )
    boxes.append(_head_box(spec, len(spec.stages) + 1, report.rows[-1].params))
    return boxes


def diagram_title(spec: ResNetV2Spec, input_size: int | tuple[int, int] = 32) -> str:
    report = analyze(spec, input_size)
    h, w = report.input_size
    name = f"{spec.name}: " if spec.name else ""
    units = "-".join(str(u) for u in spec.units_per_stage)
    return (
        f"{name}pre-activation ResNet-{spec.depth} ({spec.block} units {units})\n"
        f"input {spec.in_channels}×{h}×{w} · {report.params:,} params · "
        f"{_si(report.flops)} multiply-adds"
    )


def plot_architecture(
    spec: ResNetV2Spec,
    path: str | os.PathLike[str],
    input_size: int | tuple[int, int] = 32,
    *,
    dpi: int = 150,
) -> Path:
    """Draw the architecture diagram of ``spec`` to ``path`` (PNG, or SVG/PDF by suffix)."""
    path = Path(path)
    boxes = architecture_boxes(spec, input_size)
    return draw_diagram(boxes, diagram_title(spec, input_size), path, dpi=dpi)
