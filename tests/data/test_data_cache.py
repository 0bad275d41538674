"""The decoded-tensor cache: hits, invalidation, corruption, bad-image bookkeeping."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

import resnetv2.data.cached as cached
from resnetv2.data import BadImageError, CacheWarning, load_data
from resnetv2.data.cached import decode_files


@pytest.fixture(autouse=True)
def cache_root(tmp_path_factory, monkeypatch):
    """The user cache folder of these tests (``$RESNETV2_CACHE_DIR``), apart from the data."""
    folder = tmp_path_factory.mktemp("user-cache")
    monkeypatch.setenv("RESNETV2_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    real = cached.decode_image

    def counting(path, *args, **kwargs):
        calls.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(cached, "decode_image", counting)
    return calls


def _load(root, **kwargs):
    return load_data(root, val_split=0.25, progress=False, **kwargs)


def test_second_load_hits_the_cache(tmp_path, cache_root, fakes, count_decodes):
    fakes.make_class_folder(tmp_path, {"a": 4, "b": 4})
    first = _load(tmp_path)
    assert len(count_decodes) == 8
    cache_files = list(cache_root.glob("*.safetensors"))
    assert len(cache_files) == 1
    second = _load(tmp_path)
    assert len(count_decodes) == 8  # nothing decoded again
    assert second.class_names == ["a", "b"]  # the hidden cache folder is not a class
    assert torch.equal(first.train_images, second.train_images)
    assert torch.equal(first.val_labels, second.val_labels)


def test_changed_file_invalidates_the_cache(tmp_path, fakes, count_decodes):
    fakes.make_class_folder(tmp_path, {"a": 4, "b": 4})
    before = _load(tmp_path)
    changed = tmp_path / "a" / "001.png"
    fakes.save_image(changed, np.full((8, 8, 3), 7, np.uint8))
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = _load(tmp_path)
    assert len(count_decodes) == 16
    all_before = torch.cat([before.train_images, before.val_images])
    all_after = torch.cat([after.train_images, after.val_images])
    assert not torch.equal(all_before, all_after)
    assert bool((all_after == 7).all(dim=(1, 2, 3)).any())


def test_other_decode_options_use_another_cache_entry(tmp_path, cache_root, fakes, count_decodes):
    fakes.make_class_folder(tmp_path, {"a": 2, "b": 2})
    _load(tmp_path)
    _load(tmp_path, image_size=4)
    assert len(count_decodes) == 8
    assert len(list(cache_root.glob("*.safetensors"))) == 2


def _listing(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_cache_dir_and_no_cache(tmp_path, fakes, cache_root):
    data = fakes.make_class_folder(tmp_path / "data", {"a": 2, "b": 2})
    listing = _listing(data)
    _load(data, cache_dir=tmp_path / "elsewhere")
    assert list((tmp_path / "elsewhere").glob("*.safetensors"))
    assert not list(cache_root.iterdir()) and _listing(data) == listing
    _load(data, cache=False)
    assert not list(cache_root.iterdir()) and _listing(data) == listing


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path, cache_root, fakes, count_decodes):
    fakes.make_class_folder(tmp_path, {"a": 2, "b": 2})
    first = _load(tmp_path)
    (cache_file,) = cache_root.glob("*.safetensors")
    cache_file.write_bytes(b"\xff" * 64)
    with pytest.warns(CacheWarning, match="unreadable"):
        second = _load(tmp_path)
    assert len(count_decodes) == 8
    assert torch.equal(first.train_images, second.train_images)
    assert cache_file.stat().st_size > 64  # rewritten


def test_cache_keeps_the_skipped_files(tmp_path, fakes):
    fakes.make_class_folder(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "a" / "broken.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 1 of 7"):
        first = _load(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 of 7"):
        second = _load(tmp_path)
    assert first.skipped.files == second.skipped.files == [str(tmp_path / "a" / "broken.png")]
    assert second.skipped.errors[0].kind == "empty"
    with pytest.raises(BadImageError, match="broken.png"):
        _load(tmp_path, on_bad_image="error")


def test_decode_files_reports_cache_use(tmp_path, fakes):
    files = [fakes.save_image(tmp_path / f"{i}.png", fakes.random_rgb(6, 6, i)) for i in range(3)]
    first = decode_files(files, size=(6, 6), cache_dir=tmp_path / "c", progress=False)
    second = decode_files(files, size=(6, 6), cache_dir=tmp_path / "c", progress=False)
    assert (first.from_cache, second.from_cache) == (False, True)
    assert torch.equal(first.images, second.images) and second.kept.tolist() == [0, 1, 2]


def test_unwritable_cache_location_only_warns(tmp_path, fakes):
    data = fakes.make_class_folder(tmp_path / "data", {"a": 2, "b": 2})
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would go")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = _load(data, cache_dir=blocker / "cache")
    assert bundle.num_train + bundle.num_val == 4
    assert any(issubclass(w.category, CacheWarning) for w in caught)


def test_default_cache_follows_xdg_and_never_touches_the_data(tmp_path, fakes, monkeypatch):
    monkeypatch.delenv("RESNETV2_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    data = fakes.make_class_folder(tmp_path / "data", {"a": 2, "b": 2})
    listing = _listing(data)
    _load(data)
    assert list((tmp_path / "xdg" / "resnetv2" / "images").glob("images-*.safetensors"))
    assert _listing(data) == listing


def test_cache_size_cap_evicts_the_least_recently_used(tmp_path, fakes, cache_root, monkeypatch):
    data = fakes.make_class_folder(tmp_path / "data", {"a": 2, "b": 2})
    _load(data, image_size=4)
    (old,) = cache_root.glob("*.safetensors")
    os.utime(old, ns=(1, 1))  # long unused
    # A cap just above one entry's size: writing a second entry evicts the older one.
    monkeypatch.setenv("RESNETV2_CACHE_MAX_GB", str(old.stat().st_size * 1.5 / 1024**3))
    _load(data, image_size=6)
    (kept,) = cache_root.glob("*.safetensors")
    assert kept != old and not old.exists()


def test_bad_cache_cap_is_refused(monkeypatch):
    monkeypatch.setenv("RESNETV2_CACHE_MAX_GB", "lots")
    with pytest.raises(ValueError, match="RESNETV2_CACHE_MAX_GB"):
        cached.cache_size_cap()
