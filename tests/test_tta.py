"""Test-time augmentation: the mean of the softmax of an image and its mirror, and of
translated crops (airbench's multi-crop TTA)."""

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
    assert TTA_MODES == ("none", "flip", "crop", "flip-crop")
    assert check_tta("flip") == "flip"
    with pytest.raises(ResNetV2Error, match="valid: none, flip, crop, flip-crop"):
        check_tta("rotate")


def _pixel_model(size: int = 8) -> torch.nn.Module:
    """A linear model on raw pixels: it sees every translation and mirror."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * size * size, 5)).eval()


@pytest.mark.parametrize("mode", ["crop", "flip-crop"])
def test_translation_invariant_input_gets_the_single_crop_answer(mode):
    model = _pixel_model()
    # constant per image and channel: translating (with reflected borders) changes nothing
    constant = torch.randn(4, 3, 1, 1).expand(4, 3, 8, 8).contiguous()
    with torch.no_grad():
        single = tta_probabilities(model, constant, "none")
        assert torch.allclose(tta_probabilities(model, constant, mode), single, atol=1e-6)
        # a varied image is changed by the crops
        varied = torch.randn(4, 3, 8, 8)
        assert not torch.allclose(
            tta_probabilities(model, varied, mode), tta_probabilities(model, varied, "none")
        )


def test_crop_tta_weights_the_image_half_and_each_translation_a_quarter():
    from resnetv2.tta import translations, tta_shift

    model = _pixel_model()
    images = torch.randn(2, 3, 8, 8)
    views = translations(images)
    # one view moved down-right by a pixel, the other up-left, borders reflected
    assert torch.equal(views[0][..., 1:, 1:], images[..., :-1, :-1])
    assert torch.equal(views[1][..., :-1, :-1], images[..., 1:, 1:])
    assert torch.equal(views[0][..., 0, 1:], images[..., 1, :-1])  # reflection, not zeros
    with torch.no_grad():
        p = [model(v).softmax(1) for v in (images, *views)]
        expected = p[0] / 2 + (p[1] + p[2]) / 4
        assert torch.allclose(tta_probabilities(model, images, "crop"), expected, atol=1e-7)
        mirrored = [model(v.flip(-1)).softmax(1) for v in (images, *views)]
        both = [(a + b) / 2 for a, b in zip(p, mirrored)]
        expected = both[0] / 2 + (both[1] + both[2]) / 4
        assert torch.allclose(tta_probabilities(model, images, "flip-crop"), expected, atol=1e-7)
    assert (tta_shift(32, 32), tta_shift(224, 224), tta_shift(8, 8)) == (1, 7, 1)


def test_every_tta_mode_is_a_validation_choice():
    import typing

    from resnetv2.config import TrainSection

    hint = typing.get_type_hints(TrainSection)["val_tta"]
    assert typing.get_args(hint) == TTA_MODES


def test_predict_with_crop_tta_on_a_constant_image_and_a_varied_one(tmp_path):
    import numpy as np

    from resnetv2 import create_model
    from resnetv2.loading import save_model
    from resnetv2.predict import Predictor

    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    prep = {"input_size": [16, 16], "in_channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3}
    save_model(create_model(8, num_classes=3), path, class_names=["a", "b", "c"],
               preprocessing=prep)  # fmt: skip
    plain = Predictor.from_weights(path, top_k=3)
    crops = Predictor.from_weights(path, top_k=3, tta="flip-crop")
    constant = np.full((16, 16, 3), 90, dtype=np.uint8)
    (a,), (b,) = plain.predict(constant), crops.predict(constant)
    assert b.indices == a.indices and b.probabilities == pytest.approx(a.probabilities, abs=1e-6)
    varied = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    (c,), (d,) = plain.predict(varied), crops.predict(varied)
    assert d.probabilities != pytest.approx(c.probabilities, abs=1e-6)
