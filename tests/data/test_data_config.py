"""``load_data(config, seed)``: a ``DataConfig`` gives the same data as the keyword form."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from resnetv2.config import DataConfig
from resnetv2.data import decode_image, load_data

#: The split of the folder below for seed 3 and ``val_split=0.25``, as ``load_data`` gives it
#: (membership hashes ``(seed, relative name)``, so it is the same on every platform).
TRAIN = [
    "a_dog/000.png",
    "a_dog/001.png",
    "a_dog/003.png",
    "a_dog/odd.png",
    "b_cat/000.png",
    "b_cat/001.png",
    "b_cat/003.png",
    "b_cat/004.png",
    "b_cat/006.png",
    "c_eel/000.png",
    "c_eel/003.png",
    "c_eel/004.png",
    "c_eel/005.png",
]
VAL = [
    "a_dog/002.png",
    "a_dog/004.png",
    "b_cat/002.png",
    "b_cat/005.png",
    "c_eel/001.png",
    "c_eel/002.png",
]


@pytest.fixture
def folder(tmp_path, fakes) -> Path:
    """Three classes written out of name order, 10x12 images and one 14x9 image."""
    root = fakes.make_class_folder(
        tmp_path / "data", {"b_cat": 7, "a_dog": 5, "c_eel": 6}, (10, 12)
    )
    fakes.save_image(root / "a_dog" / "odd.png", fakes.random_rgb(14, 9, 99))
    return root


def _load(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the odd image's resize warning
        return load_data(*args, progress=False, **kwargs)


def _relative(bundle, split, root):
    return [Path(f).relative_to(root).as_posix() for f in bundle.sample_sources(split)]


@pytest.mark.parametrize("storage", ["cached", "streaming"])
def test_config_and_keywords_give_the_same_split_pixels_and_batches(folder, storage):
    config = DataConfig(source=str(folder), val_split=0.25, cache=False)
    from_config = _load(config, 3, storage=storage)
    from_keywords = _load(folder, val_split=0.25, seed=3, cache=False, storage=storage)
    for bundle in (from_config, from_keywords):
        assert bundle.class_names == ["a_dog", "b_cat", "c_eel"]
        assert bundle.image_size == (10, 12)
        assert (_relative(bundle, "train", folder), _relative(bundle, "val", folder)) == (
            TRAIN,
            VAL,
        )
    assert from_config.mean == from_keywords.mean and from_config.std == from_keywords.std
    assert torch.equal(from_config.train_labels, from_keywords.train_labels)
    if storage == "cached":
        assert torch.equal(from_config.train_images, from_keywords.train_images)
        for image, name in zip(from_config.train_images, TRAIN, strict=True):
            if name != "a_dog/odd.png":  # the files' own pixels, unresized
                assert torch.equal(image, decode_image(folder / name))
    loaders = [
        b.train_loader(4, "standard", seed=5, num_workers=0) for b in (from_config, from_keywords)
    ]
    for (x1, y1), (x2, y2) in zip(*loaders, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_config_reads_size_channels_and_statistics():
    config = DataConfig(
        source="digits", image_size=[12, 10], channels=3, mean=[0.5] * 3, std=[0.25] * 3
    )
    bundle = load_data(config, 7)
    same = load_data(
        "digits", seed=7, image_size=(12, 10), channels=3, mean=(0.5,) * 3, std=(0.25,) * 3
    )
    assert bundle.image_size == (12, 10) and bundle.in_channels == 3
    assert (bundle.mean, bundle.std) == ((0.5,) * 3, (0.25,) * 3)
    assert torch.equal(bundle.train_images, same.train_images)
    assert torch.equal(bundle.val_labels, same.val_labels)


def test_a_config_separate_val_folder_and_seeded_val_split(folder, tmp_path, fakes):
    val = fakes.make_class_folder(tmp_path / "val", {"a_dog": 1, "b_cat": 1, "c_eel": 1}, (10, 12))
    bundle = _load(DataConfig(source=str(folder), val_data=str(val), cache=False), 0)
    assert bundle.num_val == 3 and bundle.num_train == 19
    digits = DataConfig(source="digits", val_split=0.5)
    assert not torch.equal(load_data(digits, 1).val_labels, load_data(digits, 2).val_labels)


def test_keyword_mistakes_are_type_errors(folder):
    with pytest.raises(TypeError, match="unexpected keyword argument 'val_data'"):
        load_data(folder, val_data=folder)
    with pytest.raises(TypeError, match="takes no 'val_split' with a DataConfig"):
        load_data(DataConfig(), val_split=0.1)
    with pytest.raises(TypeError, match="needs a DataConfig or a source"):
        load_data()
    assert load_data(source="digits").num_train == 1438
