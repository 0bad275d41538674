"""Test-time augmentation: the mean of the softmax of an image and its mirror."""

from __future__ import annotations

import pytest
import torch

from resnetv2.errors import ResNetV2Error
from resnetv2.tta import TTA_MODES, check_tta, tta_probabilities


def _left_detector(batch: torch.Tensor) -> torch.Tensor:
    """Logits that see which half of the image is brighter: not mirror-invariant."""
    half = batch.shape[-1] // 2
    left = batch[..., :half].mean(dim=(1, 2, 3))
    right = batch[..., half:].mean(dim=(1, 2, 3))
    return torch.stack([4 * (left - right), torch.zeros_like(left)], dim=1)


def test_mirror_symmetric_input_is_unchanged_by_flip():
    half = torch.rand(3, 2, 6, 4)
    symmetric = torch.cat([half, half.flip(-1)], dim=-1)
    plain = tta_probabilities(_left_detector, symmetric, "none")
    flipped = tta_probabilities(_left_detector, symmetric, "flip")
    assert torch.allclose(plain, flipped, atol=1e-7)


def test_asymmetric_input_gets_the_mean_of_both_softmaxes():
    image = torch.zeros(1, 1, 4, 4)
    image[..., :2] = 1.0  # bright left half
    plain = tta_probabilities(_left_detector, image, "none")
    flipped = tta_probabilities(_left_detector, image, "flip")
    mirror = _left_detector(image.flip(-1)).softmax(1)
    assert not torch.allclose(plain, flipped)
    assert torch.allclose(flipped, (plain + mirror) / 2)
    # Left and right evidence cancel exactly: both classes end at 1/2.
    assert torch.allclose(flipped, torch.full((1, 2), 0.5))


def test_unknown_mode_names_the_valid_ones():
    assert TTA_MODES == ("none", "flip")
    assert check_tta("flip") == "flip"
    with pytest.raises(ResNetV2Error, match="valid: none, flip"):
        check_tta("rotate")
