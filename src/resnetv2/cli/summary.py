"""``resnetv2 summary``: a table of stages with shapes, parameters and FLOPs."""

from __future__ import annotations

import json

from resnetv2.analysis import analyze
from resnetv2.cli.common import add_input_size_argument
from resnetv2.cli.spec_args import add_spec_arguments, spec_from_args
from resnetv2.memory import parse_checkpoint_segments


def register(sub) -> None:
    p = sub.add_parser(
        "summary",
        help="show a network's stages, shapes, parameters and FLOPs",
        description="Summarise the network described by --preset/--depth and options, "
        "computed from the spec alone (nothing is allocated).",
    )
    add_spec_arguments(p)
    add_input_size_argument(p, "default: 224 with a 7x7 stem, else 32")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--framework",
        choices=("torch", "keras"),
        default="torch",
        help="also build the model in this framework and print its own summary "
        "(keras needs the `resnetv2[keras]` extra)",
    )
    p.add_argument("--plot", metavar="PNG", help="draw the architecture diagram to this file")
    memory = p.add_argument_group("memory estimate")
    memory.add_argument(
        "--estimate-memory",
        action="store_true",
        help="predict peak training memory (parameters, gradients, optimizer state, activations)",
    )
    memory.add_argument("--batch-size", type=int, default=128, help="for --estimate-memory")
    memory.add_argument(
        "--checkpoint-activations",
        type=parse_checkpoint_segments,
        nargs="?",
        const="sqrt",
        default=None,
        metavar="SEGMENTS",
        help="estimate with activation checkpointing: sqrt (the default: about √units "
        "segments), unit (every unit) or a number of segments",
    )
    p.set_defaults(func=run)


def default_input_size(spec) -> int:
    return 224 if spec.stem_type.startswith("conv7x7") else 32


def run(args) -> int:
    spec = spec_from_args(args)
    size = args.input_size or (default_input_size(spec),) * 2
    report = analyze(spec, size)
    data = summary_dict(report)
    extra_text = []
    if args.estimate_memory:
        from resnetv2.memory import estimate_training_memory

        estimate = estimate_training_memory(
            spec,
            batch_size=args.batch_size,
            input_size=size,
            checkpoint_segments=args.checkpoint_activations,
        )
        data["memory"] = estimate.to_dict()
        extra_text.append(estimate.format())
    if args.framework == "keras":
        from resnetv2.keras.summary import keras_summary

        if size[0] != size[1]:
            from resnetv2.errors import SpecError

            raise SpecError("--framework keras summarises square inputs; give --input-size N")
        keras_info = keras_summary(spec, input_size=size[0])
        data["keras"] = keras_info
        extra_text.append(keras_info["text"])
    if args.plot:
        from resnetv2.viz.architecture import plot_architecture

        plot_architecture(spec, args.plot, input_size=size)
        data["plot"] = str(args.plot)
        extra_text.append(f"architecture diagram written to {args.plot}")
    if args.json:
        print(json.dumps(data))
        return 0
    print(format_table(report))
    for text in extra_text:
        print()
        print(text)
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
