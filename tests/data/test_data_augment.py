"""Batched augmentation presets: shapes, determinism, and what each preset may or may not do."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from resnetv2.data import AUGMENTATIONS, augment_batch
from resnetv2.data.augment import affine_theta, apply_affine, cutout, pad_crop_flip


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(dtype=torch.uint8, size=16, channels=3, height=12, width=12) -> torch.Tensor:
    values = torch.randint(0, 256, (size, channels, height, width), generator=_gen(99))
    return values.to(dtype)


@pytest.mark.parametrize("name", AUGMENTATIONS)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_shape_and_dtype_are_preserved(name, dtype):
    batch = _batch(dtype, height=10, width=14)
    out = augment_batch(batch, name, _gen(0))
    assert out.shape == batch.shape and out.dtype == dtype


@pytest.mark.parametrize("name", ["standard", "cutout", "seed", "digits"])
def test_same_generator_same_result_other_seed_other_result(name):
    batch = _batch()
    first = augment_batch(batch, name, _gen(5))
    assert torch.equal(first, augment_batch(batch, name, _gen(5)))
    assert not torch.equal(first, augment_batch(batch, name, _gen(6)))
    assert not torch.equal(first, batch)


def test_none_is_identity():
    batch = _batch()
    assert torch.equal(augment_batch(batch, "none", _gen(0)), batch)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'standard', 'cutout', 'seed', 'digits', 'none'"):
        augment_batch(_batch(), "cutmix", _gen(0))


def test_standard_is_a_padded_shift_and_maybe_a_flip():
    """Every output equals some 4-pixel zero-pad crop of the input, possibly mirrored."""
    batch = _batch(size=32, height=8, width=8)
    out = pad_crop_flip(batch, _gen(1), padding=4, fill=0)
    padded = F.pad(batch, (4, 4, 4, 4))
    flips = 0
    for image, result in zip(padded, out):
        candidates = {
            (dy, dx, flip)
            for dy in range(9)
            for dx in range(9)
            for flip in (False, True)
            if torch.equal(_crop(image, dy, dx, flip), result)
        }
        assert candidates, "output is not a pad-crop(-flip) of its input"
        flips += all(flip for _, _, flip in candidates)
    assert 6 <= flips <= 26  # about half are mirrored


def _crop(image, dy, dx, flip):
    crop = image[:, dy : dy + 8, dx : dx + 8]
    return crop.flip(-1) if flip else crop


def test_standard_padding_colour():
    batch = torch.full((64, 3, 6, 6), 200, dtype=torch.uint8)
    out = pad_crop_flip(batch, _gen(2), fill=[10, 20, 30])
    pixels = out.permute(1, 0, 2, 3).reshape(3, -1)
    values = {tuple(p) for p in pixels.t().tolist()}
    assert values <= {(200, 200, 200), (10, 20, 30)} and (10, 20, 30) in values


def test_digits_never_flips():
    # Bright left half, dark right half: any mirror would put the bright half on the right.
    batch = torch.zeros((256, 1, 16, 16), dtype=torch.uint8)
    batch[..., :8] = 255
    out = augment_batch(batch, "digits", _gen(3)).float()
    left, right = out[..., :8].mean(dim=(1, 2, 3)), out[..., 8:].mean(dim=(1, 2, 3))
    assert bool((left > right + 100).all())
    seed_out = augment_batch(batch, "seed", _gen(3)).float()
    mirrored = seed_out[..., 8:].mean(dim=(1, 2, 3)) > seed_out[..., :8].mean(dim=(1, 2, 3))
    assert 60 < int(mirrored.sum()) < 196  # the seed preset does flip, about half the time


def test_digits_moves_glyphs_only_slightly():
    batch = torch.zeros((64, 1, 8, 8), dtype=torch.uint8)
    batch[:, :, 3:5, 3:5] = 255
    out = augment_batch(batch, "digits", _gen(4)).float()
    rows = torch.arange(8.0).view(1, 1, 8, 1)
    centre_row = (out * rows).sum(dim=(1, 2, 3)) / out.sum(dim=(1, 2, 3))
    assert bool(((centre_row - 3.5).abs() <= 1.3).all())
    assert centre_row.std() > 0.1


def test_seed_preset_replicates_edges_like_keras_nearest():
    batch = torch.full((8, 3, 10, 10), 123, dtype=torch.uint8)
    assert bool((augment_batch(batch, "seed", _gen(5)) == 123).all())
    # Black fill would show in the corners after a rotation or shift.
    digits = augment_batch(torch.full((32, 1, 10, 10), 123, dtype=torch.uint8), "digits", _gen(5))
    assert bool((digits < 123).any())


def _theta(height, width, **overrides):
    params = dict(
        angle_deg=0.0, shear_deg=0.0, zoom_x=1.0, zoom_y=1.0, shift_x=0.0, shift_y=0.0, flip=False
    )
    params.update(overrides)
    as_tensor = {
        key: torch.tensor([value], dtype=torch.bool if key == "flip" else torch.float64)
        for key, value in params.items()
    }
    return affine_theta(height, width, **as_tensor)


def test_identity_parameters_reproduce_the_input_exactly():
    batch = _batch(size=1, height=7, width=11)
    assert torch.equal(apply_affine(batch, _theta(7, 11)), batch)


def test_ninety_degree_rotation_is_exact():
    batch = _batch(size=1, height=9, width=9)
    out = apply_affine(batch, _theta(9, 9, angle_deg=90.0))
    assert any(torch.equal(out, torch.rot90(batch, k, dims=(2, 3))) for k in (1, -1))


def test_one_pixel_shift_and_flip_are_exact_on_non_square_images():
    batch = _batch(size=1, height=6, width=10)
    shifted = apply_affine(batch, _theta(6, 10, shift_x=1.0))
    assert torch.equal(shifted[..., :-1], batch[..., 1:]) and bool((shifted[..., -1] == 0).all())
    assert torch.equal(apply_affine(batch, _theta(6, 10, flip=True)), batch.flip(-1))


def test_same_augmentation_on_float_and_uint8():
    batch = _batch()
    as_uint8 = augment_batch(batch, "seed", _gen(8)).float()
    as_float = augment_batch(batch.float(), "seed", _gen(8))
    assert (as_uint8 - as_float).abs().max() <= 0.5 + 1e-4


def test_cutout_paints_one_clipped_square_per_image_with_the_fill():
    """DeVries & Taylor: a size×size square centred anywhere (clipped at the borders); the
    rest of the image is untouched."""
    batch = torch.full((64, 3, 16, 16), 200, dtype=torch.uint8)
    out = cutout(batch, _gen(3), 6, fill=(10, 20, 30))
    painted = out[:, 0] == 10
    assert torch.equal(painted, out[:, 1] == 20) and torch.equal(painted, out[:, 2] == 30)
    assert torch.equal(
        out[~painted[:, None].expand_as(out)], batch[~painted[:, None].expand_as(out)]
    )
    for mask in painted:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert 3 <= len(rows) <= 6 and 3 <= len(cols) <= 6  # clipped by at most half
        # one solid rectangle: every pixel between the extremes is painted
        assert mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
        assert mask.sum() == len(rows) * len(cols)
    sides = {int(m.any(1).sum()) for m in painted}
    assert 6 in sides and min(sides) < 6  # both whole and border-clipped squares occur


def test_cutout_preset_is_standard_then_the_square():
    batch = _batch(size=8, height=16, width=16)
    shifted = pad_crop_flip(batch, _gen(4), fill=0)
    out = augment_batch(batch, "cutout", _gen(4))
    assert not torch.equal(out, shifted)
    differs = (out != shifted).any(1)  # [B, H, W]: only inside the square
    assert (out[:, :, :, :][differs[:, None].expand_as(out)] == 0).all()


def test_a_registered_preset_is_applied_and_accepted_by_the_config(monkeypatch):
    """Adding a preset is one entry in ``AUGMENTATIONS``: ``augment_batch`` and
    ``augment_pixels`` dispatch through it, ``flip='alternate'`` follows its ``flips``, and
    the config accepts its name."""
    from resnetv2.config import config_from_dict
    from resnetv2.data.augment import Augmentation, augment_pixels, check_flip

    seen = []

    def invert(batch, generator, fill, flips):
        seen.append((batch.dtype, fill, flips))
        return 255 - batch

    monkeypatch.setitem(AUGMENTATIONS, "invert", Augmentation(invert, resamples=True))
    batch = _batch()
    assert torch.equal(augment_batch(batch, "invert", _gen(0), fill=7), 255 - batch)
    out = augment_pixels(batch, "invert", _gen(0))
    assert out.dtype == torch.float32 and torch.equal(out, 255 - batch.float())
    assert seen == [(torch.uint8, 7, None), (torch.float32, 0.0, None)]
    with pytest.raises(ValueError, match="needs an augmentation that flips"):
        check_flip("alternate", "invert")
    monkeypatch.setitem(AUGMENTATIONS, "invert", Augmentation(invert, flips=True))
    assert check_flip("alternate", "invert") == "alternate"

    config = {"model": {"depth": 8}, "data": {"augment": "invert"}}
    assert config_from_dict(config).data.augment == "invert"
