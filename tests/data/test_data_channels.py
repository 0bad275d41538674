import numpy as np
import pytest
import torch
from PIL import Image

from resnetv2.data import load_data
from resnetv2.data.channels import convert_channels
from resnetv2.errors import DataError


def test_rgb_to_gray_equals_pillow():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    got = convert_channels(tensor, 1)[0, 0].numpy()
    assert np.array_equal(got, expected)


def test_gray_to_rgb_repeats_and_bad_values_rejected():
    gray = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8)
    rgb = convert_channels(gray, 3)
    assert rgb.shape == (2, 3, 4, 4) and all(torch.equal(rgb[:, c], gray[:, 0]) for c in range(3))
    with pytest.raises(DataError, match="1 \\(grayscale\\) or 3"):
        convert_channels(gray, 2)


def _folder(root, size=6):
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_load_data_converts_folder_to_grayscale_with_fresh_stats(tmp_path):
    _folder(tmp_path / "imgs")
    rgb = load_data(tmp_path / "imgs", val_split=0.5, progress=False)
    gray = load_data(tmp_path / "imgs", val_split=0.5, progress=False, channels=1)
    assert rgb.in_channels == 3 and gray.in_channels == 1
    assert gray.train_images.shape[1] == 1 and gray.val_images.shape[1] == 1
    assert len(gray.mean) == 1 and len(gray.std) == 1
    expected = gray.train_images.float().mean().item() / 255
    assert gray.mean[0] == pytest.approx(expected, rel=1e-4)
    # given statistics for the converted channel count are used as they are
    fixed = load_data(
        tmp_path / "imgs", val_split=0.5, progress=False, channels=1, mean=[0.5], std=[0.25]
    )
    assert tuple(fixed.mean) == (0.5,) and tuple(fixed.std) == (0.25,)


def test_digits_as_rgb():
    bundle = load_data("digits", progress=False, channels=3)
    assert bundle.in_channels == 3 and bundle.train_images.shape[1] == 3
    assert len(bundle.mean) == 3
