"""``load_data`` end to end: mixed good and bad files, sizes, argument validation, loaders."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from resnetv2.data import (
    AUGMENTATIONS,
    BadImageError,
    BadImageWarning,
    DataBundle,
    TensorBatchLoader,
    load_data,
)


def _mixed_folder(root, fakes):
    """50 files: 40 decodable (some needing fix-ups) and 10 bad ones, in two classes."""
    for i in range(16):
        fakes.save_image(root / "cat" / f"{i:02d}.png", fakes.random_rgb(8, 8, i))
        fakes.save_image(root / "dog" / f"{i:02d}.jpg", fakes.random_rgb(8, 8, 100 + i))
    rgba = np.zeros((8, 8, 4), np.uint8)
    fakes.save_image(root / "cat" / "rgba.png", rgba)
    fakes.save_image(root / "cat" / "gray16.png", np.full((8, 8), 40000, np.uint16))
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(root / "dog" / "cmyk.jpg")
    fakes.save_image(root / "dog" / "gray.png", np.full((8, 8), 9, np.uint8))
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(root / "cat" / "anim.gif", save_all=True, append_images=frames[1:])
    Image.new("1", (8, 8)).save(root / "dog" / "bits.png")
    exif = Image.Exif()
    exif[0x0112] = 3
    Image.new("RGB", (8, 8), (0, 0, 200)).save(root / "cat" / "exif.jpg", exif=exif)
    Image.new("L", (8, 8), 3).save(root / "dog" / "l.bmp")

    bad = []
    for i in range(3):
        path = root / "cat" / f"empty{i}.jpg"
        path.write_bytes(b"")
        bad.append(path)
    for i in range(3):
        path = root / "dog" / f"text{i}.jpg"
        path.write_text("definitely not a jpeg")
        bad.append(path)
    for i in range(4):
        full = fakes.save_image(root / "tmp" / f"{i}.png", fakes.random_rgb(32, 32, 500 + i))
        path = root / ("cat" if i % 2 else "dog") / f"truncated{i}.png"
        path.write_bytes(full.read_bytes()[:200])
        bad.append(path)
    for path in (root / "tmp").iterdir():
        path.unlink()
    (root / "tmp").rmdir()
    return bad


def test_fifty_mixed_files_load_the_good_and_count_the_bad(tmp_path, fakes):
    bad = _mixed_folder(tmp_path, fakes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = load_data(tmp_path, val_split=0.2, cache=False, progress=False)
    summaries = [w for w in caught if issubclass(w.category, BadImageWarning)]
    assert len(summaries) == 1
    message = str(summaries[0].message)
    assert "skipped 10 of 50" in message
    assert "corrupt: 4" in message and "empty: 3" in message and "not_an_image: 3" in message
    assert bundle.num_train + bundle.num_val == 40
    assert bundle.skipped.count == 10
    assert sorted(bundle.skipped.files) == sorted(map(str, bad))
    assert bundle.class_names == ["cat", "dog"]
    images = torch.cat([bundle.train_images, bundle.val_images])
    assert images.shape[1:] == (3, 8, 8) and images.dtype == torch.uint8
    assert bool((images == 255).all(dim=(1, 2, 3)).any())  # transparent PNG on white
    assert bool((images == 156).all(dim=(1, 2, 3)).any())  # 16-bit 40000 -> 156, not 255


def test_on_bad_image_error_names_the_file(tmp_path, fakes):
    _mixed_folder(tmp_path, fakes)
    with pytest.raises(BadImageError) as info:
        load_data(tmp_path, val_split=0.2, cache=False, on_bad_image="error", progress=False)
    assert str(tmp_path) in str(info.value)


def test_class_with_only_bad_files_is_an_error(tmp_path, fakes):
    fakes.make_class_folder(tmp_path, {"a": 3})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="'b'.*no decodable"), warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        load_data(tmp_path, val_split=0.3, cache=False, progress=False)


def test_mixed_sizes_use_the_most_common_and_warn(tmp_path, fakes):
    for i in range(4):
        fakes.save_image(tmp_path / "a" / f"{i}.png", fakes.random_rgb(8, 8, i))
    fakes.save_image(tmp_path / "b" / "big.png", fakes.random_rgb(20, 30, 9))
    fakes.save_image(tmp_path / "b" / "small.png", fakes.random_rgb(8, 8, 10))
    with pytest.warns(UserWarning, match="1 of 6 images .* resized"):
        bundle = load_data(tmp_path, val_split=0.3, cache=False, progress=False)
    assert bundle.image_size == (8, 8) and bundle.train_images.shape[-2:] == (8, 8)


def test_image_size_resizes_everything_silently(tmp_path, fakes):
    fakes.make_class_folder(tmp_path, {"a": 2, "b": 2}, size=(12, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bundle = load_data(tmp_path, val_split=0.5, image_size=(6, 5), cache=False, progress=False)
    assert bundle.image_size == (6, 5) and bundle.val_images.shape[1:] == (3, 6, 5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "imagenet"}, "'digits', 'cifar10', 'cifar100'"),
        ({"source": "digits", "val_split": 1.0}, "between 0 and 1"),
        ({"source": "digits", "on_bad_image": "ignore"}, "'skip', 'error'"),
        ({"source": "digits", "storage": "ram"}, "'auto', 'cached', 'streaming'"),
        ({"source": "digits", "image_size": (0, 4)}, "positive int"),
        ({"source": "digits", "mean": (0.5,)}, "both mean and std"),
        ({"source": "digits", "mean": (0.5, 0.5), "std": (1, 1)}, "one per channel"),
    ],
)
def test_bad_arguments_say_what_is_valid(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_data(**kwargs)


def test_folder_needs_exactly_one_validation_source(tmp_path, fakes):
    fakes.make_class_folder(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(ValueError, match="exactly one of val_dir"):
        load_data(tmp_path)
    with pytest.raises(ValueError, match="got both"):
        load_data(tmp_path, val_dir=tmp_path, val_split=0.5)


def test_bundle_loaders_and_metadata(tmp_path, fakes):
    fakes.make_class_folder(tmp_path, {"a": 5, "b": 5})
    bundle = load_data(
        tmp_path, val_split=0.2, cache=False, progress=False, mean=(0.5,) * 3, std=(0.2,) * 3
    )
    assert isinstance(bundle, DataBundle)
    assert (bundle.mean, bundle.std, bundle.in_channels) == ((0.5,) * 3, (0.2,) * 3, 3)
    assert bundle.num_classes == 2 and "8 train / 2 val" in bundle.summary()
    train = bundle.train_loader(4, seed=3)
    assert isinstance(train, TensorBatchLoader) and train.augment == "standard" and len(train) == 2
    x, y = next(iter(train))
    assert x.shape == (4, 3, 8, 8) and y.dtype == torch.int64
    val = bundle.val_loader(3)
    assert val.augment == "none" and torch.equal(torch.cat([y for _, y in val]), bundle.val_labels)
    with pytest.raises(ValueError, match="unknown augmentation"):
        bundle.train_loader(4, augment="autoaugment")
    assert set(AUGMENTATIONS) == {"standard", "cutout", "seed", "digits", "none"}


def test_digits_train_loader_defaults_to_the_digits_preset():
    bundle = load_data("digits")
    loader = bundle.train_loader(128)
    assert loader.augment == "digits"
    x, _ = next(iter(loader))
    assert x.shape == (128, 1, 8, 8)
