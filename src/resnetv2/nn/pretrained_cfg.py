"""``model.preprocessing`` and timm's ``model.pretrained_cfg``, from one source.

A model's preprocessing is what its weights were saved with (``model.metadata.
preprocessing``, a :class:`~resnetv2.preprocessing_spec.PreprocessingSpec` block), or for a
freshly built model the library default for its stem (224 px for ImageNet stems, 32 px
otherwise, mean = std = 0.5). ``pretrained_cfg`` is the same values in timm's vocabulary
(``input_size`` as ``(C, H, W)``, ``crop_pct``, ``crop_mode``...), so
``timm.data.resolve_data_config(model=model)`` and ``timm.data.create_transform`` build the
transform our own ``predict`` applies — one description, two spellings, never two sources.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from resnetv2.preprocessing_spec import PreprocessingError, PreprocessingSpec, default_preprocessing
from resnetv2.spec import total_reduction


def preprocessing_block(model: nn.Module) -> dict[str, Any]:
    """The ``preprocessing`` metadata block of ``model`` (saved, or the default for its spec)."""
    metadata = model.metadata
    block = metadata.preprocessing if metadata is not None else None
    return dict(block) if isinstance(block, dict) else default_preprocessing(model.spec)


def model_preprocessing(model: nn.Module) -> PreprocessingSpec:
    """``model``'s :class:`~resnetv2.preprocessing_spec.PreprocessingSpec`.

    Raises :class:`~resnetv2.preprocessing_spec.PreprocessingError` for a model whose input
    is not an image (``in_channels`` other than 1 or 3).
    """
    return PreprocessingSpec.from_metadata(preprocessing_block(model))


def pretrained_cfg(model: nn.Module) -> dict[str, Any]:
    """timm's ``pretrained_cfg`` dict, derived from :func:`model_preprocessing`."""
    spec = model.spec
    try:
        pre = model_preprocessing(model)
        channels, size = pre.in_channels, pre.input_size
        mean, std, interpolation, crop_pct = pre.mean, pre.std, pre.interpolation, pre.crop_pct
    except PreprocessingError:  # not an image model (e.g. 4 input channels): raw values
        block = preprocessing_block(model)
        channels, size = spec.in_channels, tuple(block["input_size"])
        mean, std = tuple(block["mean"]), tuple(block["std"])
        interpolation, crop_pct = block.get("interpolation", "bilinear"), 1.0
    reduction = total_reduction(spec)
    return {
        "architecture": spec.name or f"resnetv2_depth{spec.depth}",
        "input_size": (channels, int(size[0]), int(size[1])),
        "fixed_input_size": False,
        "interpolation": interpolation,
        "crop_pct": float(crop_pct),
        "crop_mode": "center",
        "mean": tuple(mean),
        "std": tuple(std),
        "num_classes": spec.num_classes,
        "pool_size": (max(1, int(size[0]) // reduction), max(1, int(size[1]) // reduction)),
        "first_conv": "stem.conv" if spec.stem_type != "none" else "",
        "classifier": "head.fc",
    }
