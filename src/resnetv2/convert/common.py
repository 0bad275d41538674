"""What every importer returns, and the steps they share (building and strictly loading).

An importer turns another library's state dict into an :class:`ImportedWeights`: our spec,
a state dict whose keys are our module names, and the metadata the project's weights file
carries (preprocessing, class names, where the weights came from). :meth:`ImportedWeights.
to_weights` makes it the :class:`~resnetv2.loading.Weights` every load goes through, whose
``build`` loads strictly, so a conversion that forgot or invented a tensor fails loudly
instead of leaving part of the network random.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from resnetv2.errors import ResNetV2Error
from resnetv2.loading import Weights
from resnetv2.model_metadata import ModelMetadata
from resnetv2.spec import ResNetV2Spec

#: ImageNet statistics (torchvision / timm ``IMAGENET_DEFAULT_MEAN``/``STD``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConversionError(ResNetV2Error, ValueError):
    """A foreign checkpoint cannot be mapped onto a ResNetV2 (unknown layout, missing keys)."""


@dataclass
class ImportedWeights:
    """A converted checkpoint: our spec, our key names, and the weights-file metadata."""

    spec: ResNetV2Spec
    state_dict: dict[str, torch.Tensor]
    preprocessing: dict[str, Any]
    class_names: list[str]
    source: dict[str, Any] = field(default_factory=dict)

    def to_weights(self) -> Weights:
        """These weights as the :class:`~resnetv2.loading.Weights` every load goes through."""
        return Weights(
            self.spec,
            self.state_dict,
            ModelMetadata.from_dict(self.metadata()),
            source=self.source.get("file"),
        )

    def build_model(self, device: Any = None):
        """A :class:`~resnetv2.nn.ResNetV2` holding these weights (strictly loaded), eval mode."""
        return self.to_weights().build(device=device)

    def metadata(self) -> dict[str, Any]:
        """The weights-file metadata (see the weights-file contract in ``docs/weights.md``)."""
        return {
            "spec": self.spec.to_dict(),
            "class_names": list(self.class_names),
            "preprocessing": dict(self.preprocessing),
            "num_params": sum(
                v.numel()
                for k, v in self.state_dict.items()
                if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
            ),
            "imported_from": dict(self.source),
        }


def preprocessing(
    input_size: tuple[int, int] | list[int],
    in_channels: int = 3,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    interpolation: str = "bilinear",
    crop_pct: float = 1.0,
) -> dict[str, Any]:
    """A ``preprocessing`` metadata block (``crop_pct`` < 1 resizes to size/crop_pct first)."""
    return {
        "input_size": [int(input_size[0]), int(input_size[1])],
        "in_channels": int(in_channels),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "interpolation": str(interpolation),
        "crop_pct": float(crop_pct),
    }


def default_class_names(num_classes: int) -> list[str]:
    return [f"class_{i}" for i in range(num_classes)]


def tensor_dict(state: Mapping[str, Any], what: str) -> dict[str, torch.Tensor]:
    """Check that ``state`` is a flat ``{name: tensor}`` mapping and strip wrapper prefixes."""
    from resnetv2.io.weights import strip_prefixes

    if not isinstance(state, Mapping) or not state:
        raise ConversionError(f"{what}: expected a non-empty state dict of tensors")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(f"{what}: entries that are not tensors: {bad[:5]}")
    return strip_prefixes(state)


def shape(state: Mapping[str, torch.Tensor], key: str, what: str) -> tuple[int, ...]:
    if key not in state:
        raise ConversionError(f"{what}: expected key {key!r} is missing")
    return tuple(state[key].shape)
