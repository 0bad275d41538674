"""Export to Keras' native ``.keras`` format (``resnetv2 export --format keras``).

The file holds only built-in Keras layers, so ``keras.saving.load_model(path)`` opens it with
no ``custom_objects`` on any Keras 3 backend. PyTorch weights are transferred with
:func:`resnetv2.keras.convert.torch_to_keras` into a stand-alone model
(:mod:`resnetv2.keras.standalone`: raw pixels in, probabilities out, metadata inside), and
the export is only written when its outputs match PyTorch's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from resnetv2.errors import SpecError
from resnetv2.spec import ResNetV2Spec


def to_keras_model(source: Any, *, input_shape: tuple | None = None) -> keras.Model:
    """A Keras twin from a Keras model, a PyTorch ResNetV2, a spec, or ``(spec, state_dict)``.

    A bare spec gives a freshly initialised model. ``input_shape`` (``(H, W, C)``, or
    ``(None, None, C)`` for any size) applies when the Keras model is built here.
    """
    from resnetv2.keras.builder import build_spec
    from resnetv2.keras.convert import torch_to_keras

    if isinstance(source, keras.Model):
        if input_shape is not None:
            raise SpecError("input_shape cannot change an existing Keras model; rebuild it")
        return source
    if isinstance(source, ResNetV2Spec):
        return build_spec(source, input_shape=input_shape)
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], Mapping):
        spec, state = source
        if isinstance(spec, Mapping):
            spec = ResNetV2Spec.from_dict(spec)
        if not isinstance(spec, ResNetV2Spec):
            raise SpecError(f"expected (spec, state_dict), got a {type(spec).__name__} spec")
        from resnetv2.nn.model import ResNetV2

        torch_model = ResNetV2(spec)
        torch_model.load_state_dict(dict(state), strict=True)
        return torch_to_keras(torch_model, input_shape=input_shape)
    if getattr(source, "spec", None) is not None and hasattr(source, "state_dict"):
        return torch_to_keras(source, input_shape=input_shape)
    raise SpecError(
        "export_keras needs a keras.Model, a PyTorch ResNetV2, a ResNetV2Spec or "
        f"(spec, state_dict); got {type(source).__name__}"
    )


def export_keras(
    model_or_spec_and_state: Any,
    out_path: str | Path,
    *,
    input_shape: tuple | None = None,
    logits: bool = False,
    tolerance: float = 1e-4,
) -> Path:
    """Write a ``.keras`` file that ``keras.saving.load_model`` opens; return its path.

    ``model_or_spec_and_state``: a PyTorch ``ResNetV2`` or a ``(spec, state_dict)`` pair — the
    file then stands alone (:mod:`resnetv2.keras.standalone`: 0-255 pixels in, softmax
    probabilities out unless ``logits``, spec/class names/preprocessing stored, outputs
    checked against PyTorch before writing; see :func:`export_keras_checked`) — or a Keras
    model / ``ResNetV2Spec`` (fresh weights), saved as it is (normalised input, logits).
    ``input_shape`` applies to the latter. The file is written atomically.
    """
    if _has_torch_weights(model_or_spec_and_state):
        if input_shape is not None:
            raise SpecError("input_shape comes from the weights' preprocessing (input_size)")
        model = _torch_model(model_or_spec_and_state)
        return export_keras_checked(model, out_path, logits=logits, tolerance=tolerance).path
    from resnetv2.io.atomic import atomic_write_with

    out = _check_out(out_path)
    model = to_keras_model(model_or_spec_and_state, input_shape=input_shape)
    atomic_write_with(out, lambda tmp: model.save(tmp))
    return out


def _check_out(out_path: str | Path) -> Path:
    out = Path(out_path)
    if out.suffix != ".keras":
        raise SpecError(f"a Keras export must end in .keras, got {out.name!r}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {out.parent}")
    return out


def _has_torch_weights(source: Any) -> bool:
    if isinstance(source, (keras.Model, ResNetV2Spec)):
        return False
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], Mapping):
        return True
    return getattr(source, "spec", None) is not None and hasattr(source, "state_dict")


def _torch_model(source: Any):
    from resnetv2.nn.model import ResNetV2

    if not isinstance(source, tuple):
        return source
    spec, state = source
    if isinstance(spec, Mapping):
        spec = ResNetV2Spec.from_dict(spec)
    if not isinstance(spec, ResNetV2Spec):
        raise SpecError(f"expected (spec, state_dict), got a {type(spec).__name__} spec")
    model = ResNetV2(spec)
    model.load_state_dict(dict(state), strict=True)
    return model


def export_keras_checked(
    torch_model: Any, out_path: str | Path, *, logits: bool = False, tolerance: float = 1e-4
):
    """The stand-alone export with its parity check: an
    :class:`~resnetv2.export.ExportResult` (what ``resnetv2 export`` prints).

    Random 0-255 pixels (batches 1 and 7) go through the PyTorch model with the weights'
    preprocessing (``Preprocessing.normalize``, then softmax unless ``logits``) and through
    the Keras model; the file is written only when they agree within ``tolerance``.
    """
    import numpy as np
    import torch

    from resnetv2.data.preprocessing import Preprocessing
    from resnetv2.export_result import PARITY_BATCHES, ExportError, ExportResult
    from resnetv2.io.atomic import atomic_write_with
    from resnetv2.keras.convert import torch_to_keras
    from resnetv2.keras.standalone import build_standalone
    from resnetv2.nn.pretrained_cfg import preprocessing_block

    out = _check_out(out_path)
    torch_model = torch_model.eval()
    spec = torch_model.spec
    block = preprocessing_block(torch_model)
    names = torch_model.metadata.class_names if torch_model.metadata is not None else None
    names = list(names) if names is not None else None
    kmodel = build_standalone(spec, block, class_names=names, logits=logits)
    torch_to_keras(torch_model, kmodel)
    pre = Preprocessing.from_metadata(block)
    shape = (*pre.input_size, pre.in_channels)
    gen = np.random.default_rng(0)
    result = ExportResult(out, "keras", shape, tolerance=tolerance, checker="Keras in-process")
    for batch in PARITY_BATCHES:
        pixels = gen.integers(0, 256, size=(batch, *shape)).astype("float32")
        with torch.no_grad():
            x = pre.normalize(torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous())
            expected = torch_model(x)
            if spec.num_classes and not logits:
                expected = expected.softmax(-1)
        got = np.asarray(keras.ops.convert_to_numpy(kmodel(pixels, training=False)))
        result.max_abs_diff[batch] = float(np.abs(got - expected.numpy()).max())
        result.output_scale = max(result.output_scale, float(expected.abs().max()))
    if not result.passed:
        raise ExportError("the Keras model differs from PyTorch: " + result.summary())
    atomic_write_with(out, lambda tmp: kmodel.save(tmp))
    return result
