"""Built-in datasets: scikit-learn digits and CIFAR from a fake archive in the official format."""

from __future__ import annotations

import pickle
import tarfile
from collections import Counter

import numpy as np
import pytest
import torch

from resnetv2.data import load_data
from resnetv2.data.cifar import CifarFormatError, read_cifar_pickle


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


def test_digits_fixed_stratified_split(digits):
    assert digits.num_train + digits.num_val == 1797
    assert (digits.num_train, digits.num_val) == (1438, 359)
    all_counts = Counter(digits.train_labels.tolist()) + Counter(digits.val_labels.tolist())
    val_counts = Counter(digits.val_labels.tolist())
    for label, total in all_counts.items():
        assert val_counts[label] == int(0.2 * total + 0.5)
    assert digits.class_names == [str(i) for i in range(10)]


def test_digits_tensors(digits):
    assert digits.in_channels == 1 and digits.image_size == (8, 8)
    assert digits.train_images.dtype == torch.uint8 and digits.train_images.shape[1:] == (1, 8, 8)
    assert digits.train_labels.dtype == torch.int64
    assert int(digits.train_images.max()) == 255 and int(digits.train_images.min()) == 0
    # 17 grey levels (0..16) map to 17 distinct uint8 values.
    assert len(torch.unique(digits.train_images)) == 17
    assert len(digits.mean) == 1 and 0 < digits.mean[0] < 1 and digits.std[0] > 0
    assert digits.default_augment == "digits"


def test_digits_split_ignores_the_run_seed_but_val_split_uses_it(digits):
    other_seed = load_data("digits", seed=123)
    assert torch.equal(other_seed.val_images, digits.val_images)
    custom = load_data("digits", val_split=0.5, seed=1)
    per_class = Counter(digits.train_labels.tolist() + digits.val_labels.tolist())
    assert custom.num_val == sum(int(0.5 * n + 0.5) for n in per_class.values())
    assert not torch.equal(load_data("digits", val_split=0.5, seed=2).val_images, custom.val_images)


def test_digits_resized_on_request():
    bundle = load_data("digits", image_size=16)
    assert bundle.train_images.shape[1:] == (1, 16, 16) and bundle.image_size == (16, 16)


def test_cifar10_from_fake_archive(tmp_path, fakes):
    written = fakes.write_fake_cifar(tmp_path)
    bundle = load_data("cifar10", data_dir=tmp_path)
    assert bundle.class_names == fakes.cifar10_names
    assert (bundle.num_train, bundle.num_val) == (30, 5)
    assert bundle.in_channels == 3 and bundle.image_size == (32, 32)
    expected = torch.from_numpy(written["train_data"].reshape(-1, 3, 32, 32))
    assert torch.equal(bundle.train_images, expected)
    assert bundle.train_labels.tolist() == written["train_labels"]
    assert bundle.val_labels.tolist() == written["test_labels"]
    mean = expected.double().mean(dim=(0, 2, 3)) / 255
    assert np.allclose(bundle.mean, mean.numpy(), atol=1e-9)


def test_cifar_data_dir_may_be_the_batch_folder_itself(tmp_path, fakes):
    written = fakes.write_fake_cifar(tmp_path)
    assert load_data("cifar10", data_dir=written["folder"]).num_train == 30


def test_cifar10_with_val_split_holds_out_training_images(tmp_path, fakes):
    fakes.write_fake_cifar(tmp_path)
    bundle = load_data("cifar10", data_dir=tmp_path, val_split=0.2)
    assert bundle.num_train + bundle.num_val == 30 and bundle.num_val == 10


def test_cifar100_from_fake_archive(tmp_path, fakes):
    written = fakes.write_fake_cifar(tmp_path, name="cifar100")
    bundle = load_data("cifar100", data_dir=tmp_path)
    assert bundle.num_classes == 100 and bundle.class_names == written["class_names"]
    assert bundle.train_labels.tolist() == written["train_labels"]


def test_cifar_local_archive_is_extracted_without_network(tmp_path, fakes, monkeypatch):
    source = tmp_path / "src"
    written = fakes.write_fake_cifar(source)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with tarfile.open(data_dir / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(written["folder"], arcname="cifar-10-batches-py")
    import torchvision.datasets.utils as tv_utils

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", _no_network)
    assert load_data("cifar10", data_dir=data_dir).num_train == 30


def _no_network(*args, **kwargs):
    raise AssertionError("the network must not be used")


def test_missing_cifar_offline_says_how_to_pass_data_dir(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", _no_network)
    with pytest.raises(FileNotFoundError, match="--data-dir") as info:
        load_data("cifar10", data_dir=tmp_path / "empty")
    assert "--download" in str(info.value)


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    import urllib.error

    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(RuntimeError, match="--data-dir") as info:
        load_data("cifar10", data_dir=tmp_path, download=True)
    assert "no network" in str(info.value)


class _Sentinel:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_pickle_that_would_run_code_is_refused(tmp_path, fakes):
    written = fakes.write_fake_cifar(tmp_path)
    sentinel = tmp_path / "pwned"
    with open(written["folder"] / "data_batch_3", "wb") as handle:
        pickle.dump({"data": _Sentinel(sentinel), "labels": []}, handle, protocol=2)
    with pytest.raises(CifarFormatError, match="refusing"):
        load_data("cifar10", data_dir=tmp_path)
    assert not sentinel.exists()


def test_malformed_batches_are_rejected(tmp_path, fakes):
    written = fakes.write_fake_cifar(tmp_path)
    batch = written["folder"] / "data_batch_1"
    with open(batch, "wb") as handle:
        pickle.dump({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, handle, protocol=2)
    with pytest.raises(CifarFormatError, match="3072"):
        load_data("cifar10", data_dir=tmp_path)
    batch.write_bytes(batch.read_bytes()[:50])
    with pytest.raises(CifarFormatError):
        load_data("cifar10", data_dir=tmp_path)


def test_python2_style_pickle_is_readable(tmp_path):
    # Official files name numpy.core.multiarray._reconstruct (NumPy 1 / Python 2 era).
    array = np.arange(6, dtype=np.uint8)
    payload = pickle.dumps({"data": array}, protocol=2).replace(
        b"numpy._core.multiarray", b"numpy.core.multiarray"
    )
    assert b"numpy.core.multiarray" in payload
    path = tmp_path / "batch"
    path.write_bytes(payload)
    assert np.array_equal(read_cifar_pickle(path)["data"], array)


def test_builtin_sources_reject_folder_options():
    with pytest.raises(ValueError, match="val_dir"):
        load_data("digits", val_dir="/tmp")
    with pytest.raises(ValueError, match="always held in memory"):
        load_data("digits", storage="streaming")
