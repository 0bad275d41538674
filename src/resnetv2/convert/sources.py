"""From a user's ``--init-weights`` value to a model holding those weights.

A source is one of:

- a run folder or a resnetv2 weights file (``.safetensors`` whose metadata holds a spec),
  loaded with :func:`resnetv2.loading.load_model`;
- a foreign checkpoint file (timm or pytorchcv state dict in ``.safetensors``, or
  ``.pth/.pt/.bin/.ckpt`` read through the io layer's safe loader, never unpickling code);
  the library is detected from the key names unless ``library=`` says it;
- a keras.applications ``ResNet50V2/101V2/152V2`` weights file (``.h5`` / ``.weights.h5``),
  read by the Keras twin's converter into the matching ``keras_resnet*v2`` preset;
- ``timm:NAME`` or ``pytorchcv:NAME``: downloaded through that library's own hub code (a clear
  message says how to pass a local file when offline).

:func:`weights_from_source` reads any of them into a :class:`~resnetv2.loading.Weights`;
:func:`load_weights_source` builds its model and :func:`load_init_weights` (what ``resnetv2
train --init-weights`` calls) loads it into a model with another head.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from torch import nn

from resnetv2.convert.common import ConversionError, ImportedWeights
from resnetv2.convert.pytorchcv import (
    convert_pytorchcv_state_dict,
    fetch_pytorchcv,
    looks_like_pytorchcv,
)
from resnetv2.convert.timm import convert_timm_state_dict, fetch_timm, looks_like_timm
from resnetv2.loading import (  # noqa: F401 (the fine-tuning rules, re-exported here)
    HEAD_AND_REGULARISATION_FIELDS,
    Weights,
    backbone_differences,
    resolve_weights_path,
)
from resnetv2.spec import ResNetV2Spec

LIBRARIES = ("auto", "timm", "pytorchcv", "keras")


def import_checkpoint(
    path: str | os.PathLike[str], *, library: str = "auto", name: str | None = None
) -> ImportedWeights:
    """Read a timm or pytorchcv checkpoint file and convert it to our names and spec."""
    from resnetv2.io.weights import load_weights

    if library not in LIBRARIES:
        raise ConversionError(f"library must be one of {', '.join(LIBRARIES)}, got {library!r}")
    file_path = Path(path)
    if not file_path.is_file():
        raise FileNotFoundError(f"no such checkpoint file: {str(file_path)!r}")
    if library == "keras" or (library == "auto" and file_path.suffix.lower() == ".h5"):
        return import_keras_applications(file_path, name=name)
    state, _ = load_weights(file_path)
    if library == "auto":
        if looks_like_pytorchcv(state):
            library = "pytorchcv"
        elif looks_like_timm(state):
            library = "timm"
        else:
            keys = ", ".join(list(state)[:5])
            raise ConversionError(
                f"{str(file_path)!r}: cannot tell which library wrote this state dict (first "
                f"keys: {keys}); resnetv2 imports timm ResNetV2 and pytorchcv preresnet*_cifar "
                "checkpoints"
            )
    source = {"file": file_path.name}
    if library == "timm":
        return convert_timm_state_dict(state, name=name, source=source)
    return convert_pytorchcv_state_dict(state, name=name, source=source)


def import_keras_applications(path: Path, *, name: str | None = None) -> ImportedWeights:
    """A keras.applications ResNetV2 ``.h5`` file → our ``keras_resnet*v2`` preset.

    ``name`` is the preset (default ``keras_resnet50v2``); files without the classifier
    (``include_top=False``) become backbones. Preprocessing is keras.applications'
    ``resnet_v2.preprocess_input``: pixels scaled to [-1, 1] (mean 0.5, std 0.5), 224×224.
    """
    try:
        from resnetv2.keras.convert import load_keras_applications_weights, read_keras_weights
    except ImportError as exc:
        raise ConversionError(f"Keras weights need the keras extra ({exc})") from None
    from resnetv2.convert.common import preprocessing
    from resnetv2.convert.timm import imagenet_class_names

    preset = name or "keras_resnet50v2"
    if not preset.startswith("keras_resnet"):
        raise ConversionError(f"--name for Keras files is a keras_resnet*v2 preset, not {preset!r}")
    has_top = "predictions" in read_keras_weights(path)
    options = {} if has_top else {"num_classes": 0}
    model = load_keras_applications_weights(path, preset, **options)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    spec = model.spec
    return ImportedWeights(
        spec=spec,
        state_dict=state,
        preprocessing=preprocessing((224, 224), 3, (0.5,) * 3, (0.5,) * 3, "bilinear"),
        class_names=imagenet_class_names(spec.num_classes),
        source={"library": "keras.applications", "model": preset, "file": path.name},
    )


def is_resnetv2_weights(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a run folder or a weights file written by resnetv2 (has a spec)."""
    from resnetv2.io.weights import read_weights_metadata

    file_path = Path(path)
    if file_path.is_dir():
        return (file_path / "model.safetensors").is_file()
    if file_path.suffix.lower() != ".safetensors" or not file_path.is_file():
        return False
    return isinstance(read_weights_metadata(file_path).get("spec"), dict)


def weights_from_source(source: str | os.PathLike[str], *, library: str = "auto") -> Weights:
    """The :class:`~resnetv2.loading.Weights` at any supported source (see the module
    docstring): a resnetv2 file or folder, a foreign checkpoint file, ``timm:NAME`` or
    ``pytorchcv:NAME``."""
    text = os.fspath(source)
    for prefix, fetch in (("timm:", fetch_timm), ("pytorchcv:", fetch_pytorchcv)):
        if text.startswith(prefix):
            return dataclasses.replace(fetch(text[len(prefix) :]).to_weights(), source=text)
    if is_resnetv2_weights(text):
        return Weights.from_file(text)
    if not Path(text).exists():
        raise FileNotFoundError(
            f"no such weights file or run folder: {text!r} (or use timm:NAME / pytorchcv:NAME)"
        )
    # A folder: its model.safetensors (a run whose training never finished has none, and
    # says so as evaluate does), else a foreign checkpoint file.
    path = resolve_weights_path(text)
    return import_checkpoint(path, library=library).to_weights()


def load_weights_source(
    source: str | os.PathLike[str], *, library: str = "auto", device: Any = None
) -> nn.Module:
    """A model (eval mode, ``.metadata`` set) from any supported weights source."""
    return weights_from_source(source, library=library).build(device=device)


def load_init_weights(
    spec_or_model: ResNetV2Spec | nn.Module | None,
    source: str | os.PathLike[str],
    *,
    library: str = "auto",
    device: Any = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Initialise a model from pretrained weights; returns ``(model, metadata)``.

    - ``spec_or_model=None``: the model is built from the weights' own spec.
    - a spec or a ResNetV2: its backbone must equal the weights' (same stem, stages, widths,
      norm, conventions — otherwise a :class:`ResNetV2Error` lists the differences). Head and
      regularisation fields (classes, head type, dropout, drop-path) may differ: the backbone
      is loaded strictly, and the head is loaded too when its tensors fit, else it keeps its
      fresh initialisation and ``metadata["head_reinitialised"]`` is True
      (:meth:`Weights.load_into <resnetv2.loading.Weights.load_into>`).

    ``metadata`` is the weights' metadata as a dict (``spec``, ``class_names``,
    ``preprocessing`` — input size, mean/std, interpolation to use by default when
    fine-tuning — and ``imported_from``); the model carries it as ``model.metadata``. The
    model is returned in eval mode; call ``model.train()`` or
    :func:`resnetv2.finetune.prepare_finetune` next.
    """
    from resnetv2.nn.model import ResNetV2

    weights = weights_from_source(source, library=library)
    if spec_or_model is None:
        model = weights.build(device=device)
    elif isinstance(spec_or_model, ResNetV2Spec):
        model = weights.load_into(ResNetV2(spec_or_model, device=device))
    elif isinstance(spec_or_model, ResNetV2):
        model = weights.load_into(spec_or_model)
    else:
        raise TypeError(
            f"spec_or_model must be a ResNetV2Spec, a ResNetV2 or None, not "
            f"{type(spec_or_model).__name__}"
        )
    return model, model.metadata.to_dict()
