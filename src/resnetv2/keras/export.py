"""Export to Keras' native ``.keras`` format (``resnetv2 export --format keras``).

The file holds only built-in Keras layers, so ``keras.saving.load_model(path)`` opens it with
no ``custom_objects`` on any Keras 3 backend. PyTorch weights are transferred with
:func:`resnetv2.keras.convert.torch_to_keras` (outputs equal to the PyTorch model's within
float32 rounding).
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
    model_or_spec_and_state: Any, out_path: str | Path, *, input_shape: tuple | None = None
) -> Path:
    """Write a ``.keras`` file that ``keras.saving.load_model`` opens; return its path.

    ``model_or_spec_and_state``: a PyTorch ``ResNetV2`` (its weights, BN statistics included,
    are transferred), a Keras model, a ``ResNetV2Spec`` (fresh weights), or a
    ``(spec, state_dict)`` pair. The file is written atomically (temp file, then rename).
    The model returns logits, like the PyTorch model.
    """
    from resnetv2.io.atomic import atomic_write_with

    out = Path(out_path)
    if out.suffix != ".keras":
        raise SpecError(f"a Keras export must end in .keras, got {out.name!r}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {out.parent}")
    model = to_keras_model(model_or_spec_and_state, input_shape=input_shape)
    atomic_write_with(out, lambda tmp: model.save(tmp))
    return out
