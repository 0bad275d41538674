"""``resnetv2 export``: ONNX, torch.export or Keras files from trained or imported weights."""

from __future__ import annotations

import math
from pathlib import Path

from resnetv2.cli.common import add_input_size_argument
from resnetv2.errors import ResNetV2Error


def register(sub) -> None:
    from resnetv2.export import DEFAULT_OPSET, FORMATS

    p = sub.add_parser(
        "export",
        help="export weights to ONNX, torch.export (.pt2) or Keras, with a parity check",
        description="Export a model for deployment. The exported model is run against the "
        "eager model (ONNX: onnxruntime in a fresh process, batches 1 and 7 with "
        "--dynamic-batch; Keras: in-process, batches 1 and 7) and the file is only written "
        "when outputs agree within 1e-4. The .keras file stands alone: raw 0-255 pixels (HWC, "
        "at the weights' input size) in, softmax probabilities out, with the normalisation, "
        "class names and spec inside; load it with keras.saving.load_model.",
    )
    p.add_argument("weights", metavar="RUN_OR_WEIGHTS", help="run folder or .safetensors file")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="output format (onnx)")
    p.add_argument("--out", metavar="FILE", help="output file (default: next to the weights)")
    p.add_argument(
        "--dynamic-batch",
        action="store_true",
        help="variable batch size (parity checked at batches 1 and 7)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default %(default)s)"
    )
    add_input_size_argument(p, "default: from the weights' metadata")
    p.add_argument("--tolerance", type=float, default=1e-4, help="parity tolerance (1e-4)")
    p.add_argument(
        "--logits",
        action="store_true",
        help="keras: output logits instead of softmax probabilities (the default, as "
        "keras.applications); the .keras file always takes raw 0-255 HWC pixels",
    )
    p.set_defaults(func=run)


def default_out(weights: Path, fmt: str) -> Path:
    from resnetv2.export import SUFFIXES

    base = weights / "model" if weights.is_dir() else weights.with_suffix("")
    return base.with_suffix(SUFFIXES[fmt])


def run(args) -> int:
    from resnetv2.convert.sources import load_weights_source
    from resnetv2.export import ExportResult, default_input_shape, export_model
    from resnetv2.io.errors import CheckpointError

    if not 7 <= args.opset <= 25:
        raise ResNetV2Error(f"--opset must be between 7 and 25, got {args.opset}")
    # Checked before exporting: nan and -1 failed only after the whole export, and inf
    # switched the parity check off.
    if not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise ResNetV2Error(
            f"--tolerance must be a positive finite number (default 1e-4), got {args.tolerance}"
        )
    weights = Path(args.weights)
    out = Path(args.out) if args.out else default_out(weights, args.format)
    if out.exists() and not args.force:
        raise ResNetV2Error(f"{out} exists; pass --force to overwrite it")
    try:
        model = load_weights_source(weights)
    except CheckpointError as exc:
        raise ResNetV2Error(str(exc)) from None
    shape = None
    if args.input_size:
        channels = default_input_shape(model)[0]
        shape = (channels, *args.input_size)
    result = export_model(
        model,
        out,
        args.format,
        input_shape=shape,
        dynamic_batch=args.dynamic_batch,
        opset=args.opset,
        force=args.force,
        tolerance=args.tolerance,
        logits=args.logits,
    )
    if isinstance(result, ExportResult):
        print(result.summary())
    else:
        print(f"keras → {result}")
    if args.format == "keras":
        print(KERAS_LOADING.format(path=out))
    return 0


KERAS_LOADING = (
    "load it with keras.saving.load_model('{path}') in Keras 3 — no resnetv2 needed, but a "
    "backend is: KERAS_BACKEND=torch (torch is already installed) or an installed "
    "TensorFlow or JAX; it takes 0-255 pixels resized as `resnetv2 predict` does "
    "(upright by EXIF, cover, centre-crop): docs/keras.md, Export"
)
"""The line ``export --format keras`` ends with: Keras 3 picks TensorFlow by default, which
resnetv2 does not install, so the file's user must be told how to open it."""
