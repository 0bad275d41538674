"""Class-folder scanning and stratified splits."""

from __future__ import annotations

from collections import Counter

import pytest

from resnetv2.data import load_data, scan_class_folders, stratified_split
from resnetv2.data.split import val_count


def test_classes_sorted_and_files_sorted(tmp_path, fakes):
    fakes.make_class_folder(tmp_path, {"zebra": 2, "ant": 3, "moth": 1})
    index = scan_class_folders(tmp_path)
    assert index.class_names == ("ant", "moth", "zebra")
    assert index.labels == (0, 0, 0, 1, 2, 2)
    assert list(index.names) == sorted(index.names)
    assert all(f.endswith(n.split("/")[-1]) for f, n in zip(index.files, index.names))


def test_hidden_and_non_image_files_are_ignored(tmp_path, fakes):
    fakes.make_class_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / ".DS_Store").write_bytes(b"\x00junk")
    (tmp_path / "a" / "._0001.png").write_bytes(b"resource fork")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".ipynb_checkpoints").mkdir()
    fakes.save_image(tmp_path / "a" / ".ipynb_checkpoints" / "x.png", fakes.random_rgb(8, 8, 9))
    fakes.save_image(tmp_path / ".hidden_class" / "x.png", fakes.random_rgb(8, 8, 9))
    (tmp_path / "README.md").write_text("root-level files are not classes")
    index = scan_class_folders(tmp_path)
    assert index.class_names == ("a", "b")
    assert len(index) == 4
    assert not any("/." in "/" + name for name in index.names)


def test_upper_case_extensions_and_nested_folders_count(tmp_path, fakes):
    fakes.save_image(tmp_path / "a" / "X.PNG", fakes.random_rgb(8, 8, 1))
    fakes.save_image(tmp_path / "a" / "sub" / "y.jpeg", fakes.random_rgb(8, 8, 2))
    fakes.save_image(tmp_path / "b" / "z.png", fakes.random_rgb(8, 8, 3))
    assert scan_class_folders(tmp_path).names == ("a/X.PNG", "a/sub/y.jpeg", "b/z.png")


def test_empty_class_folder_is_an_error_naming_it(tmp_path, fakes):
    fakes.make_class_folder(tmp_path, {"cat": 2, "dog": 2})
    (tmp_path / "emu").mkdir()
    (tmp_path / "emu" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="emu") as info:
        scan_class_folders(tmp_path)
    assert "cat" not in str(info.value)


def test_single_class_is_an_error_with_a_hint(tmp_path, fakes):
    fakes.make_class_folder(tmp_path / "train", {"cat": 2, "dog": 2})
    with pytest.raises(ValueError, match="val_dir"):
        scan_class_folders(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        scan_class_folders(tmp_path / "nope")


def test_unicode_class_and_file_names(tmp_path, fakes):
    fakes.save_image(tmp_path / "猫" / "ünïcödé 1.png", fakes.random_rgb(8, 8, 1))
    fakes.save_image(tmp_path / "猫" / "二.png", fakes.random_rgb(8, 8, 2))
    fakes.save_image(tmp_path / "café" / "é.png", fakes.random_rgb(8, 8, 3))
    fakes.save_image(tmp_path / "café" / "ß.png", fakes.random_rgb(8, 8, 4))
    bundle = load_data(tmp_path, val_split=0.5, cache=False, progress=False)
    assert bundle.class_names == ["café", "猫"]
    assert bundle.num_train == 2 and bundle.num_val == 2
    assert sorted(bundle.val_labels.tolist()) == [0, 1]


@pytest.mark.parametrize(
    ("n", "fraction", "expected"),
    [(1, 0.5, 0), (2, 0.1, 1), (2, 0.9, 1), (10, 0.25, 3), (10, 0.15, 2), (178, 0.2, 36)],
)
def test_val_count_rule(n, fraction, expected):
    assert val_count(n, fraction) == expected


def test_stratified_split_sizes_and_determinism():
    labels = [0] * 50 + [1] * 30 + [2] * 7 + [3] * 2 + [4] * 1
    train, val = stratified_split(labels, 0.2, seed=3)
    per_class = Counter(labels[i] for i in val)
    assert per_class == {0: 10, 1: 6, 2: 1, 3: 1}
    assert sorted(train + val) == list(range(len(labels)))
    assert stratified_split(labels, 0.2, seed=3) == (train, val)
    assert stratified_split(labels, 0.2, seed=4)[1] != val


def test_split_membership_is_stable_when_a_file_is_added():
    keys = [f"a/{i:03d}.png" for i in range(40)]
    _, val = stratified_split([0] * 40, 0.25, seed=0, keys=keys)
    _, val_more = stratified_split([0] * 41, 0.25, seed=0, keys=[*keys, "a/new.png"])
    assert len(set(val) & set(val_more)) >= 9


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, float("nan")])
def test_bad_fractions_are_rejected(bad):
    with pytest.raises(ValueError, match="between 0 and 1"):
        stratified_split([0, 1], bad, seed=0)


def test_split_of_a_folder_is_stratified_and_seeded(tmp_path, fakes):
    fakes.make_class_folder(tmp_path, {"a": 10, "b": 20})
    first = load_data(tmp_path, val_split=0.2, seed=1, cache=False, progress=False)
    again = load_data(tmp_path, val_split=0.2, seed=1, cache=False, progress=False)
    other = load_data(tmp_path, val_split=0.2, seed=2, cache=False, progress=False)
    assert Counter(first.val_labels.tolist()) == {0: 2, 1: 4}
    assert first.num_train == 24
    assert (first.val_images == again.val_images).all()
    assert not (first.val_images == other.val_images).all()


def test_separate_train_and_val_folders(tmp_path, fakes):
    fakes.make_class_folder(tmp_path / "train", {"a": 3, "b": 3})
    fakes.make_class_folder(tmp_path / "val", {"a": 1, "b": 2})
    bundle = load_data(tmp_path / "train", val_dir=tmp_path / "val", cache=False, progress=False)
    assert (bundle.num_train, bundle.num_val) == (6, 3)
    assert bundle.val_labels.tolist() == [0, 1, 1]


def test_mismatched_train_and_val_classes(tmp_path, fakes):
    fakes.make_class_folder(tmp_path / "train", {"a": 2, "b": 2, "c": 2})
    fakes.make_class_folder(tmp_path / "val", {"a": 1, "b": 1, "d": 1})
    with pytest.raises(ValueError, match="same class folders") as info:
        load_data(tmp_path / "train", val_dir=tmp_path / "val", cache=False, progress=False)
    assert "'c'" in str(info.value) and "'d'" in str(info.value)
