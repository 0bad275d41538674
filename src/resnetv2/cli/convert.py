"""``resnetv2 convert``: import a timm / pytorchcv checkpoint into resnetv2's weights format."""

from __future__ import annotations

from pathlib import Path

from resnetv2.errors import ResNetV2Error


def register(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="import timm, pytorchcv or keras.applications weights into a resnetv2 file",
        description="Convert a timm ResNetV2 or pytorchcv preresnet*_cifar checkpoint "
        "(.safetensors, or .pth/.pt/.bin read without unpickling code), a keras.applications "
        "ResNet50V2/101V2/152V2 .h5 file (--name keras_resnet101v2 for the deeper ones), or "
        "timm:NAME / "
        "pytorchcv:NAME (downloaded through that library when online), into resnetv2's "
        "weights file: safetensors with the spec, class names and preprocessing. The "
        "converted model's outputs are checked against the source tensors by a strict load.",
    )
    p.add_argument("source", metavar="SOURCE", help="checkpoint file, timm:NAME or pytorchcv:NAME")
    p.add_argument("--from", dest="library", choices=("auto", "timm", "pytorchcv", "keras"),
                   default="auto", help="library that wrote the file (default: detect)")  # fmt: skip
    p.add_argument(
        "--name",
        help="model name (resnetv2_50, preresnet20_cifar10; keras_resnet101v2 for .h5 files)",
    )
    p.add_argument("--out", metavar="FILE", help="output .safetensors (default: SOURCE stem)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=run)


def run(args) -> int:
    from resnetv2.convert.sources import (
        import_checkpoint,
        is_resnetv2_weights,
        weights_from_source,
    )
    from resnetv2.io.errors import CheckpointError
    from resnetv2.loading import save_model

    remote = args.source.startswith(("timm:", "pytorchcv:"))
    if not remote and is_resnetv2_weights(args.source):
        raise ResNetV2Error(f"{args.source} is already a resnetv2 weights file; nothing to do")
    stem = args.source.split(":", 1)[1] if remote else Path(args.source).stem
    out = Path(args.out) if args.out else Path(f"{stem}.resnetv2.safetensors")
    if out.suffix != ".safetensors":
        raise ResNetV2Error(f"--out must end in .safetensors, got {out.name!r}")
    if out.exists() and not args.force:
        raise ResNetV2Error(f"{out} exists; pass --force to overwrite it")
    try:
        if remote:
            weights = weights_from_source(args.source)
        else:
            weights = import_checkpoint(args.source, library=args.library, name=args.name)
            weights = weights.to_weights()
        model = weights.build()
    except CheckpointError as exc:
        raise ResNetV2Error(str(exc)) from None
    meta = weights.metadata
    save_model(
        model,
        out,
        class_names=meta["class_names"],
        preprocessing=meta["preprocessing"],
        extra={"imported_from": dict(meta.imported_from or {})},
    )
    spec = model.spec
    print(
        f"{args.source} → {out}: {spec.name or 'resnetv2'} (depth {spec.depth}, "
        f"{spec.num_classes} classes, {meta.num_params:,} parameters)"
    )
    return 0
