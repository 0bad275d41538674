"""``resnetv2 summary``: a table of stages with shapes, parameters and FLOPs."""

from __future__ import annotations

import json

from resnetv2.analysis import analyze
from resnetv2.cli.spec_args import add_spec_arguments, spec_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "summary",
        help="show a network's stages, shapes, parameters and FLOPs",
        description="Summarise the network described by --preset/--depth and options, "
        "computed from the spec alone (nothing is allocated).",
    )
    add_spec_arguments(p)
    p.add_argument("--input-size", type=int, default=None, help="input height=width")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def default_input_size(spec) -> int:
    return 224 if spec.stem_type.startswith("conv7x7") else 32


def run(args) -> int:
    spec = spec_from_args(args)
    size = args.input_size or default_input_size(spec)
    if size < 1:
        from resnetv2.errors import SpecError

        raise SpecError(f"--input-size must be a positive integer, got {size}")
    report = analyze(spec, size)
    if args.json:
        print(json.dumps(summary_dict(report)))
        return 0
    print(format_table(report))
    return 0


def summary_dict(report) -> dict:
    spec = report.spec
    return {
        "name": spec.name,
        "depth": spec.depth,
        "block": spec.block,
        "units_per_stage": list(spec.units_per_stage),
        "params": report.params,
        "flops": report.flops,
        "input_size": list(report.input_size),
        "stages": [
            {
                "name": r.name,
                "units": r.units,
                "in_channels": r.in_channels,
                "out_channels": r.out_channels,
                "output_shape": [r.out_channels, *r.output_size],
                "params": r.params,
                "flops": r.flops,
            }
            for r in report.rows
        ],
        "spec": spec.to_dict(),
    }


def _si(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def format_table(report) -> str:
    spec = report.spec
    h, w = report.input_size
    title = spec.name or f"depth {spec.depth}"
    lines = [
        f"{title}: pre-activation ResNet-{spec.depth}, {spec.block} units "
        f"{','.join(map(str, spec.units_per_stage))}, input {spec.in_channels}×{h}×{w}, "
        f"{spec.num_classes} classes",
        f"stride at {spec.stride_at}, shortcut on {spec.shortcut_input} input, stem "
        f"{spec.stem_type}, conv bias {spec.conv_bias}, {spec.norm} norm, {spec.head} head",
        "",
        f"{'layer':<8} {'units':>6} {'channels':>12} {'output':>16} {'params':>14} {'FLOPs':>10}",
    ]
    for r in report.rows:
        shape = f"{r.out_channels}×{r.output_size[0]}×{r.output_size[1]}"
        if r.name == "head":
            shape = f"{r.out_channels}"
        chans = f"{r.in_channels}→{r.out_channels}"
        units = str(r.units) if r.units else ""
        lines.append(
            f"{r.name:<8} {units:>6} {chans:>12} {shape:>16} {r.params:>14,} {_si(r.flops):>10}"
        )
    lines.append(
        f"{'total':<8} {spec.total_units:>6} {'':>12} {'':>16} {report.params:>14,} "
        f"{_si(report.flops):>10}"
    )
    lines.append("FLOPs are multiply-accumulates for one image; params are trainable parameters.")
    return "\n".join(lines)
