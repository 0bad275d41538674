"""Test-time augmentation: average the class probabilities of an image and its variants.

``flip`` is the one variant He et al. and most CIFAR/ImageNet pipelines use: the horizontal
mirror. The result is the **arithmetic mean of the two softmax outputs** (not of the
logits), so it is itself a probability vector, and a mirror-symmetric image gives exactly
its un-augmented probabilities. ``evaluate`` and ``predict`` share :func:`tta_probabilities`
so both apply it identically.

``crop`` is airbench's multi-crop TTA (Jordan 2024, arXiv:2404.00498): the image (weight
1/2) and two copies translated by :func:`tta_shift` pixels (weight 1/4 each), one up-left
and one down-right, with the borders filled by reflection;
``flip-crop`` scores each of those three views and its mirror (airbench94's setting). A
1-pixel shift suits 32×32 images; the shift grows with the image (one pixel per 32 of the
shorter side), so a 224×224 image moves by 7. The weights and the reflection follow airbench;
the averaging is of softmax outputs, as for ``flip``, so an image that translation does not
change (e.g. a constant one) gets exactly its single-crop answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from resnetv2.errors import ResNetV2Error

if TYPE_CHECKING:  # no torch at import: the CLI reads TTA_MODES to build its --help
    import torch

TTA_MODES = ("none", "flip", "crop", "flip-crop")
"""Valid ``tta`` values: ``none`` (one pass), ``flip`` (the image and its mirror), ``crop``
(the image and two translations) and ``flip-crop`` (those three and their mirrors)."""


def check_tta(mode: str) -> str:
    """``mode`` if it is one of :data:`TTA_MODES`, else an error naming the valid ones."""
    if mode not in TTA_MODES:
        raise ResNetV2Error(f"unknown TTA {mode!r}; valid: {', '.join(TTA_MODES)}")
    return mode


def tta_probabilities(
    logits: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, mode: str = "none"
) -> torch.Tensor:
    """Softmax probabilities (float32) of a preprocessed ``[N, C, H, W]`` ``batch``.

    ``logits`` turns a batch into logits (a model, or an inference engine's run function).
    With ``mode='flip'`` the probabilities of the batch and of its horizontal mirror are
    averaged; ``crop`` and ``flip-crop`` add translated views (module docstring).
    """
    check_tta(mode)
    flip = mode in ("flip", "flip-crop")
    probabilities = _view_probabilities(logits, batch, flip)
    if mode in ("crop", "flip-crop"):
        shifted = [_view_probabilities(logits, view, flip) for view in translations(batch)]
        probabilities = probabilities / 2 + (shifted[0] + shifted[1]) / 4
    return probabilities


def _view_probabilities(logits, view: torch.Tensor, flip: bool) -> torch.Tensor:
    probabilities = logits(view).float().softmax(dim=1)
    if flip:
        probabilities = (probabilities + logits(view.flip(-1)).float().softmax(dim=1)) / 2
    return probabilities


def tta_shift(height: int, width: int) -> int:
    """Pixels the ``crop`` views move: one per 32 pixels of the shorter side, at least one."""
    return max(1, round(min(height, width) / 32))


def translations(batch: torch.Tensor) -> list[torch.Tensor]:
    """The up-left and down-right translated copies of ``batch`` (reflected borders)."""
    import torch.nn.functional as F

    height, width = batch.shape[-2:]
    shift = min(tta_shift(height, width), height - 1, width - 1)
    if shift < 1:  # a 1-pixel image: nothing to translate
        return [batch, batch]
    padded = F.pad(batch, (shift,) * 4, mode="reflect")
    end = 2 * shift
    return [padded[..., :height, :width], padded[..., end : end + height, end : end + width]]
