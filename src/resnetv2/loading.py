"""Save a model with everything needed to use it, and rebuild it from the file alone.

A weights file is safetensors with a JSON metadata block (see :mod:`resnetv2.io.weights`):
``spec`` (the architecture, :meth:`ResNetV2Spec.to_dict`), ``class_names``, ``preprocessing``
(``input_size``, ``in_channels``, ``mean``, ``std``, ``interpolation``), ``num_params`` and
whatever ``extra`` the caller adds. :func:`load_model` needs nothing else: no code, no config,
no pickle.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from resnetv2.errors import ResNetV2Error
from resnetv2.spec import ResNetV2Spec

#: File name of the weights inside a run folder (written by ``resnetv2 train``).
RUN_WEIGHTS = "model.safetensors"


class WeightsFileError(ResNetV2Error, ValueError):
    """A weights file or run folder that cannot be loaded as a resnetv2 model."""


def resolve_weights_path(path: str | os.PathLike[str]) -> Path:
    """``path`` itself, or ``path/model.safetensors`` when ``path`` is a run folder."""
    p = Path(path)
    if p.is_dir():
        candidate = p / RUN_WEIGHTS
        if not candidate.is_file():
            raise WeightsFileError(
                f"{p} is a folder without {RUN_WEIGHTS}; pass a run folder written by "
                "`resnetv2 train` or a .safetensors weights file"
            )
        return candidate
    if not p.exists():
        raise FileNotFoundError(f"no such weights file or run folder: {p}")
    return p


def default_preprocessing(spec: ResNetV2Spec, input_size: int | None = None) -> dict[str, Any]:
    size = input_size or (224 if spec.stem_type.startswith("conv7x7") else 32)
    return {
        "input_size": [size, size],
        "in_channels": spec.in_channels,
        "mean": [0.5] * spec.in_channels,
        "std": [0.5] * spec.in_channels,
        "interpolation": "bilinear",
    }


def save_model(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    *,
    class_names: list[str] | None = None,
    preprocessing: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and metadata atomically to ``path`` (a ``.safetensors`` file)."""
    from resnetv2.io import save_weights
    from resnetv2.nn.model import spec_of

    spec = spec_of(model)
    if class_names is not None and spec.num_classes and len(class_names) != spec.num_classes:
        raise WeightsFileError(
            f"{len(class_names)} class names for a model with {spec.num_classes} classes"
        )
    metadata: dict[str, Any] = dict(extra or {})
    metadata.update(
        {
            "spec": spec.to_dict(),
            "class_names": list(class_names) if class_names is not None else None,
            "preprocessing": preprocessing or default_preprocessing(spec),
            "num_params": sum(p.numel() for p in model.parameters()),
        }
    )
    inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None) or model
    state = {k: v.detach().cpu().contiguous() for k, v in inner.state_dict().items()}
    save_weights(path, state, metadata)
    return Path(path)


def load_model(
    path: str | os.PathLike[str], *, device: torch.device | str | None = None
) -> torch.nn.Module:
    """Rebuild the model stored at ``path`` (a weights file or a run folder).

    The returned :class:`~resnetv2.nn.ResNetV2` is in eval mode and carries the file's
    metadata as ``model.metadata``. Loading is strict: any missing, unexpected or mis-shaped
    tensor raises an error listing them.
    """
    from resnetv2.io import load_state_dict_strict, load_weights
    from resnetv2.nn.model import ResNetV2

    weights = resolve_weights_path(path)
    state, metadata = load_weights(weights)
    if not isinstance(metadata.get("spec"), dict):
        raise WeightsFileError(
            f"{weights} has no resnetv2 spec in its metadata; to use weights from timm, "
            "pytorchcv or Keras, import them with `resnetv2 convert` first"
        )
    spec = ResNetV2Spec.from_dict(metadata["spec"])
    model = ResNetV2(spec)
    load_state_dict_strict(model, state, source=str(weights))
    model.metadata = metadata
    if device is not None:
        model.to(device)
    return model.eval()
