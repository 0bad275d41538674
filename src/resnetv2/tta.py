"""Test-time augmentation: average the class probabilities of an image and its variants.

``flip`` is the one variant He et al. and most CIFAR/ImageNet pipelines use: the horizontal
mirror. The result is the **arithmetic mean of the two softmax outputs** (not of the
logits), so it is itself a probability vector, and a mirror-symmetric image gives exactly
its un-augmented probabilities. ``evaluate`` and ``predict`` share :func:`tta_probabilities`
so both apply it identically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from resnetv2.errors import ResNetV2Error

if TYPE_CHECKING:  # no torch at import: the CLI reads TTA_MODES to build its --help
    import torch

TTA_MODES = ("none", "flip")
"""Valid ``tta`` values: ``none`` (one pass) and ``flip`` (the image and its mirror)."""


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
    averaged.
    """
    check_tta(mode)
    probabilities = logits(batch).float().softmax(dim=1)
    if mode == "flip":
        mirrored = logits(batch.flip(-1)).float().softmax(dim=1)
        probabilities = (probabilities + mirrored) / 2
    return probabilities
