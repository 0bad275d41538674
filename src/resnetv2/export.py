"""Export a ResNetV2 to ONNX or a ``torch.export`` program, with a parity check every time.

Each export is written to a temporary file next to the target, checked, and only then renamed
into place (:func:`resnetv2.io.atomic_write_with`): a file that fails its check is never left
behind. The checks:

- ONNX: ``onnx.checker.check_model``, then onnxruntime **in a fresh Python process** (so no
  state of the exporting process can hide a problem) runs batches of 1 and 7 (with
  ``dynamic_batch``; otherwise the exported batch) and its outputs must equal the eager
  model's within ``tolerance`` (1e-4 by default; multiplied by the largest output magnitude
  when that exceeds 1, since float32 rounding grows with the values).
- ``torch.export``: the saved program is reloaded with ``torch.export.load`` and compared the
  same way.

The ONNX file also carries the weights' metadata (spec, class names, preprocessing) as
``metadata_props``, so a deployment needs nothing else.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from resnetv2.errors import ResNetV2Error
from resnetv2.export_result import PARITY_BATCHES, ExportError, ExportResult
from resnetv2.model_metadata import ModelMetadata, metadata_of

if TYPE_CHECKING:  # torch is imported where used, so `resnetv2 --help` starts fast
    import torch
    from torch import nn

DEFAULT_OPSET = 18


def default_input_shape(model: nn.Module) -> tuple[int, int, int]:
    """``(C, H, W)`` from the weights' preprocessing metadata, else the spec's usual size."""
    prep = metadata_of(model).preprocessing or {}
    spec = model.spec
    if "input_size" in prep:
        height, width = (int(v) for v in prep["input_size"])
    else:
        height = width = 224 if spec.stem_type.startswith("conv7x7") else 32
    return (int(prep.get("in_channels", spec.in_channels)), height, width)


def export_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    format: str = "onnx",
    *,
    input_shape: tuple[int, int, int] | None = None,
    dynamic_batch: bool = True,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    tolerance: float = 1e-4,
    logits: bool = False,
) -> ExportResult:
    """Export ``model`` to ``path`` in ``format`` (:data:`FORMATS`: ``onnx``, ``torch-export``
    or ``keras``).

    Refuses to overwrite an existing file unless ``force``. Returns an :class:`ExportResult`.
    Raises :class:`ExportError` when the exported model's outputs differ from eager outputs
    by more than ``tolerance``. The Keras file takes 0-255 pixels and returns softmax
    probabilities (``logits=True``: logits); ``input_shape`` does not apply to it (its input
    is the weights' preprocessing size).
    """
    if format not in EXPORT_FORMATS:
        raise ResNetV2Error(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    target = Path(path)
    if target.exists() and not force:
        raise ResNetV2Error(f"{target} exists; pass --force (force=True) to overwrite it")
    if not target.parent.is_dir():
        raise ResNetV2Error(f"folder {target.parent} does not exist")
    request = ExportRequest(input_shape, dynamic_batch, opset, tolerance, logits)
    return EXPORT_FORMATS[format].write(model.eval(), target, request)


def _no_grad(fn):
    """``torch.no_grad()`` as a decorator that imports torch only when called."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper


def _parity_inputs(shape: tuple[int, ...], dynamic_batch: bool, export_batch: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    batches = PARITY_BATCHES if dynamic_batch else (export_batch,)
    return {b: torch.randn((b, *shape), generator=generator) for b in batches}


def _dynamic_shapes(dynamic_batch: bool):
    import torch

    if not dynamic_batch:
        return None
    return ({0: torch.export.Dim("batch", min=1, max=65536)},)


def _prepare(model, path, fmt: str, input_shape, dynamic_batch: bool, tolerance: float):
    """``(example, parity inputs, eager outputs, result)`` shared by the exporters."""
    import torch

    # A batch of 2 keeps the exporter from specialising the batch dimension to 1.
    example = torch.randn((2, *input_shape))
    inputs = _parity_inputs(tuple(input_shape), dynamic_batch, 2)
    expected = {b: model(x) for b, x in inputs.items()}
    result = ExportResult(Path(path), fmt, (2 if not dynamic_batch else -1, *input_shape))
    result.tolerance = tolerance
    result.output_scale = max(y.abs().max().item() for y in expected.values())
    return example, inputs, expected, result


@_no_grad
def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_shape: tuple[int, int, int],
    dynamic_batch: bool = True,
    opset: int = DEFAULT_OPSET,
    tolerance: float = 1e-4,
) -> ExportResult:
    """Export to ONNX, check it (checker + onnxruntime parity in a subprocess), commit it."""
    import onnx
    import torch

    from resnetv2.io import atomic_write_with

    example, inputs, expected, result = _prepare(
        model, path, "onnx", input_shape, dynamic_batch, tolerance
    )

    def write(tmp: Path) -> None:
        try:
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                dynamic_shapes=_dynamic_shapes(dynamic_batch),
                input_names=["input"],
                output_names=["logits"],
                opset_version=opset,
                verbose=False,
            )
        except Exception as exc:  # noqa: BLE001 - exporter errors become one clear message
            raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
        proto = program.model_proto
        for key, value in _metadata_props(model).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
        onnx.checker.check_model(str(tmp), full_check=True)
        result.checker = "onnx.checker passed"
        result.max_abs_diff = onnx_parity_in_subprocess(tmp, inputs, expected)
        if not result.passed:
            raise ExportError("ONNX output differs from eager: " + result.summary())

    atomic_write_with(path, write)
    return result


def _metadata_props(model: nn.Module) -> dict[str, str]:
    """``resnetv2.spec``, ``resnetv2.class_names`` and ``resnetv2.preprocessing`` as JSON; the
    preprocessing is the complete :class:`~resnetv2.data.preprocessing.Preprocessing` block
    (every field spelled out), so a deployment reads the same rule ``predict`` applies."""
    meta = metadata_of(model)
    props = {"resnetv2.spec": json.dumps(model.spec.to_dict())}
    if meta.class_names is not None:
        props["resnetv2.class_names"] = json.dumps(list(meta.class_names))
    if meta.preprocessing is not None:
        props["resnetv2.preprocessing"] = json.dumps(_preprocessing_block(model, meta))
    return props


def _preprocessing_block(model: nn.Module, meta: ModelMetadata) -> dict:
    from resnetv2.data.preprocessing import Preprocessing, PreprocessingError

    block = {"in_channels": model.spec.in_channels, **(meta.preprocessing or {})}
    try:
        return Preprocessing.from_metadata(block).to_metadata()
    except PreprocessingError as exc:
        raise ExportError(f"the weights' preprocessing metadata is invalid: {exc}") from None


_ORT_SCRIPT = """
import json, sys
import numpy as np
import onnxruntime as ort
model, data = sys.argv[1], np.load(sys.argv[2])
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
diffs = {}
for key in data.files:
    if key.startswith("x"):
        b = key[1:]
        out = session.run(None, {name: data[key]})[0]
        ref = data["y" + b]
        if out.shape != ref.shape:
            raise SystemExit(f"batch {b}: output shape {out.shape} != eager {ref.shape}")
        diffs[b] = float(np.abs(out.astype(np.float64) - ref).max())
print(json.dumps(diffs))
"""


def onnx_parity_in_subprocess(
    onnx_path: str | os.PathLike[str],
    inputs: dict[int, torch.Tensor],
    expected: dict[int, torch.Tensor],
    timeout: float = 600,
) -> dict[int, float]:
    """Max |onnxruntime − eager| per batch, computed in a fresh Python process."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "parity.npz"
        arrays = {f"x{b}": x.numpy() for b, x in inputs.items()}
        arrays.update({f"y{b}": expected[b].double().numpy() for b in inputs})
        np.savez(data, **arrays)
        proc = subprocess.run(
            [sys.executable, "-c", _ORT_SCRIPT, os.fspath(onnx_path), str(data)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ExportError("onnxruntime could not run the exported model: " + " | ".join(tail))
    return {int(b): d for b, d in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


@_no_grad
def export_program(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_shape: tuple[int, int, int],
    dynamic_batch: bool = True,
    tolerance: float = 1e-4,
) -> ExportResult:
    """``torch.export`` the model, save it (``torch.export.save``), reload it, compare."""
    import torch

    from resnetv2.io import atomic_write_with

    example, inputs, expected, result = _prepare(
        model, path, "torch-export", input_shape, dynamic_batch, tolerance
    )

    def write(tmp: Path) -> None:
        try:
            program = torch.export.export(
                model, (example,), dynamic_shapes=_dynamic_shapes(dynamic_batch)
            )
        except Exception as exc:  # noqa: BLE001 - exporter errors become one clear message
            raise ExportError(f"torch.export failed: {type(exc).__name__}: {exc}") from exc
        extra = {f"{k}.json": v for k, v in _metadata_props(model).items()}
        torch.export.save(program, str(tmp), extra_files=extra)
        reloaded = torch.export.load(str(tmp)).module()
        result.checker = "torch.export.load round trip"
        result.max_abs_diff = {
            b: (reloaded(x) - expected[b]).abs().max().item() for b, x in inputs.items()
        }
        if not result.passed:
            raise ExportError("reloaded program differs from eager: " + result.summary())

    atomic_write_with(path, write)
    return result


# -- the format registry ---------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRequest:
    """What :func:`export_model` was asked for; each format reads the fields that apply."""

    input_shape: tuple[int, int, int] | None
    dynamic_batch: bool
    opset: int
    tolerance: float
    logits: bool


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its file suffix and the function that writes and checks it."""

    suffix: str
    write: Callable[[nn.Module, Path, ExportRequest], ExportResult]


def _write_onnx(model: nn.Module, target: Path, request: ExportRequest) -> ExportResult:
    shape = tuple(request.input_shape or default_input_shape(model))
    return export_onnx(
        model, target, input_shape=shape, dynamic_batch=request.dynamic_batch,
        opset=request.opset, tolerance=request.tolerance,
    )  # fmt: skip


def _write_program(model: nn.Module, target: Path, request: ExportRequest) -> ExportResult:
    shape = tuple(request.input_shape or default_input_shape(model))
    return export_program(
        model, target, input_shape=shape, dynamic_batch=request.dynamic_batch,
        tolerance=request.tolerance,
    )  # fmt: skip


def _write_keras(model: nn.Module, target: Path, request: ExportRequest) -> ExportResult:
    """The stand-alone ``.keras`` (raw pixels in, probabilities out unless ``logits``) and
    its parity check against PyTorch; see :mod:`resnetv2.keras.standalone`. Its input is the
    weights' preprocessing size, so ``input_shape`` does not apply."""
    try:
        from resnetv2.keras.export import export_keras_checked
    except ImportError as exc:
        raise ResNetV2Error(
            f"--format keras needs the Keras extra (pip install 'resnetv2[keras]'): {exc}"
        ) from None
    return export_keras_checked(model, target, logits=request.logits, tolerance=request.tolerance)


#: Every export format by name: the CLI's ``--format`` choices and default suffixes come from
#: its keys, so a new format is one entry here (and its writer) plus its test.
EXPORT_FORMATS: dict[str, ExportFormat] = {
    "onnx": ExportFormat(".onnx", _write_onnx),
    "torch-export": ExportFormat(".pt2", _write_program),
    "keras": ExportFormat(".keras", _write_keras),
}
FORMATS = tuple(EXPORT_FORMATS)
SUFFIXES = {name: fmt.suffix for name, fmt in EXPORT_FORMATS.items()}
