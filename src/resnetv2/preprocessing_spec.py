"""The preprocessing description: what a model's input is, as pure data beside the spec.

A :class:`PreprocessingSpec` is the ``preprocessing`` block saved with every weights file
(input size, channels, mean/std, resize interpolation, ``crop_pct``) with its validation, and
nothing else: no torch, no pixels. It sits in the spec layer so that ``nn/``
(``model.preprocessing``, timm's ``pretrained_cfg``) and the weights files can describe a
model's input without importing the data layer. The pixel code that applies it — decoding,
resizing, channel conversion, normalisation — is :class:`resnetv2.data.preprocessing.
Preprocessing`, a subclass with the same fields; the two compare equal when their values do.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from resnetv2.errors import DataError
from resnetv2.spec import ResNetV2Spec

Interpolation = Literal["bilinear", "bicubic", "nearest"]
INTERPOLATIONS: tuple[Interpolation, ...] = get_args(Interpolation)
#: Image channels a model input may have: grayscale or RGB.
VALID_CHANNELS = (1, 3)


class PreprocessingError(DataError):
    """A preprocessing description, or an input, that does not fit the rules."""


@dataclass(frozen=True, eq=False)
class PreprocessingSpec:
    """Input size ``(H, W)``, model channels (1 or 3), per-channel ``mean``/``std`` on the
    0..1 scale, the resize ``interpolation`` and ``crop_pct`` (the centre crop keeps this
    fraction of a target enlarged to ``floor(size / crop_pct)``; 1.0 = no margin)."""

    input_size: tuple[int, int]
    in_channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    interpolation: Interpolation = "bilinear"
    crop_pct: float = 1.0

    def __post_init__(self) -> None:
        size = tuple(self.input_size)
        # numbers.Integral also admits NumPy's integers (read from arrays), not bools.
        if len(size) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in size
        ):
            raise PreprocessingError(
                f"input_size must be two positive ints (H, W), got {self.input_size!r}"
            )
        if self.in_channels not in VALID_CHANNELS or isinstance(self.in_channels, bool):
            raise PreprocessingError(f"in_channels must be 1 or 3, got {self.in_channels!r}")
        mean = tuple(float(v) for v in self.mean)
        std = tuple(float(v) for v in self.std)
        if len(mean) != self.in_channels or len(std) != self.in_channels:
            raise PreprocessingError(
                f"mean and std need {self.in_channels} value(s) each, got {len(mean)} and "
                f"{len(std)}"
            )
        if not all(math.isfinite(v) for v in mean) or not all(v > 0 for v in std):
            raise PreprocessingError(f"mean must be finite and std > 0, got {mean} and {std}")
        if self.interpolation not in INTERPOLATIONS:
            raise PreprocessingError(
                f"interpolation {self.interpolation!r} is not one of {', '.join(INTERPOLATIONS)}"
            )
        if not 0 < float(self.crop_pct) <= 1:
            raise PreprocessingError(f"crop_pct must be in (0, 1], got {self.crop_pct!r}")
        for name, value in (
            ("input_size", (int(size[0]), int(size[1]))),
            ("mean", mean),
            ("std", std),
            ("crop_pct", float(self.crop_pct)),
            ("in_channels", int(self.in_channels)),
        ):
            object.__setattr__(self, name, value)

    # Equality by value across the description and its pixel-applying subclass, so
    # ``model.preprocessing == Preprocessing.from_metadata(block)`` holds.
    def _values(self) -> tuple:
        return (
            self.input_size,
            self.in_channels,
            self.mean,
            self.std,
            self.interpolation,
            self.crop_pct,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PreprocessingSpec):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    @classmethod
    def from_metadata(cls, block: Mapping[str, Any]):
        """Read the ``preprocessing`` block of a weights file (unknown keys are ignored)."""
        try:
            channels = int(block.get("in_channels", 3))
            size = block["input_size"]
            return cls(
                input_size=(int(size[0]), int(size[1])),
                in_channels=channels,
                mean=tuple(block.get("mean", [0.5] * channels)),
                std=tuple(block.get("std", [0.5] * channels)),
                interpolation=str(block.get("interpolation", "bilinear")),  # type: ignore[arg-type]
                crop_pct=float(block.get("crop_pct", 1.0)),
            )
        except PreprocessingError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise PreprocessingError(
                f"invalid preprocessing metadata {block!r}: {type(exc).__name__}: {exc}"
            ) from None

    def to_metadata(self) -> dict[str, Any]:
        """The JSON-ready ``preprocessing`` block saved with weights and exports."""
        return {
            "input_size": list(self.input_size),
            "in_channels": self.in_channels,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
        }

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one preprocessed image."""
        return (self.in_channels, *self.input_size)


def default_preprocessing(spec: ResNetV2Spec, input_size: int | None = None) -> dict[str, Any]:
    """The ``preprocessing`` block of a model saved without one: 224 px for ImageNet stems,
    32 px otherwise, mean = std = 0.5 per input channel, bilinear."""
    size = input_size or (224 if spec.stem_type.startswith("conv7x7") else 32)
    return {
        "input_size": [size, size],
        "in_channels": spec.in_channels,
        "mean": [0.5] * spec.in_channels,
        "std": [0.5] * spec.in_channels,
        "interpolation": "bilinear",
    }


__all__ = [
    "INTERPOLATIONS",
    "VALID_CHANNELS",
    "Interpolation",
    "PreprocessingError",
    "PreprocessingSpec",
    "default_preprocessing",
]
