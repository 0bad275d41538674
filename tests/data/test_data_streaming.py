"""Streaming path: DataLoader workers, per-worker augmentation, reproducibility, bad files."""

from __future__ import annotations

import pytest
import torch

from resnetv2.data import BadImageError, FileBatchLoader, FileImageDataset, load_data
from resnetv2.data.badimages import BadImageWarning


@pytest.fixture
def one_image_many_times(tmp_path, fakes):
    path = fakes.save_image(tmp_path / "img.png", fakes.random_rgb(12, 12, 0))
    return [path] * 8, [0] * 8


def _run(files, labels, *, num_workers, seed=0, augment="standard", batch_size=2, epochs=1):
    dataset = FileImageDataset(
        files,
        labels,
        image_size=(12, 12),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        augment=augment,
        seed=seed,
    )
    loader = FileBatchLoader(dataset, batch_size, seed=seed, num_workers=num_workers)
    return [x for _ in range(epochs) for x, _ in loader]


def test_two_workers_give_different_augmentations_reproducibly(one_image_many_times):
    files, labels = one_image_many_times
    batches = _run(files, labels, num_workers=2)
    # Batches alternate between the two workers: 0, 2 from one, 1, 3 from the other.
    assert not torch.equal(batches[0], batches[1])
    samples = torch.cat(batches)
    distinct = {tuple(sample.flatten().tolist()) for sample in samples}
    assert len(distinct) >= 6  # the same file, augmented differently almost every time
    again = _run(files, labels, num_workers=2)
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))
    other_seed = _run(files, labels, num_workers=2, seed=1)
    assert not torch.equal(torch.cat(batches), torch.cat(other_seed))


def test_augmentation_does_not_depend_on_the_worker_count(one_image_many_times):
    files, labels = one_image_many_times
    two = torch.cat(_run(files, labels, num_workers=2))
    none = torch.cat(_run(files, labels, num_workers=0))
    assert torch.equal(two, none)


def test_epochs_get_new_augmentations(one_image_many_times):
    files, labels = one_image_many_times
    batches = _run(files, labels, num_workers=0, epochs=2)
    assert not torch.equal(torch.cat(batches[:4]), torch.cat(batches[4:]))


def test_global_rng_is_left_alone(one_image_many_times):
    files, labels = one_image_many_times
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    _run(files, labels, num_workers=0)
    assert torch.equal(torch.rand(3), expected)


def test_resume_mid_epoch(tmp_path, fakes):
    files = [
        fakes.save_image(tmp_path / f"{i}.png", fakes.random_rgb(12, 12, i)) for i in range(10)
    ]
    labels = list(range(10))

    def make():
        dataset = FileImageDataset(
            files, labels, image_size=(12, 12), mean=(0.5,) * 3, std=(0.25,) * 3, augment="standard"
        )
        return FileBatchLoader(dataset, 3, shuffle=True, seed=4)

    straight = list(make())
    interrupted = make()
    for count, _ in enumerate(interrupted, start=1):
        if count == 2:
            break
    resumed = make()
    resumed.load_state_dict(interrupted.state_dict())
    rest = list(resumed)
    assert len(rest) == 2
    for (x_ref, y_ref), (x_new, y_new) in zip(straight[2:], rest, strict=True):
        assert torch.equal(x_ref, x_new) and torch.equal(y_ref, y_new)


def test_bad_files_are_skipped_and_summarised(tmp_path, fakes):
    good = [fakes.save_image(tmp_path / f"{i}.png", fakes.random_rgb(12, 12, i)) for i in range(5)]
    bad = tmp_path / "zero.png"
    bad.write_bytes(b"")
    files = [good[0], good[1], bad, *good[2:]]
    dataset = FileImageDataset(
        files, list(range(6)), image_size=(12, 12), mean=(0.5,) * 3, std=(0.25,) * 3
    )
    loader = FileBatchLoader(dataset, 4, num_workers=2)
    with pytest.warns(BadImageWarning, match="skipped 1 of 6"):
        labels = torch.cat([y for _, y in loader])
    assert labels.tolist() == [0, 1, 3, 4, 5]
    assert loader.skipped.files == [str(bad)] and loader.skipped.by_kind() == {"empty": 1}
    strict = FileBatchLoader(dataset, 4, on_bad_image="error")
    with pytest.raises(BadImageError, match="zero.png"):
        list(strict)


def test_auto_storage_streams_when_over_the_memory_budget(tmp_path, fakes):
    fakes.make_class_folder(tmp_path, {"a": 6, "b": 6}, size=(10, 10))
    bundle = load_data(tmp_path, val_split=0.25, memory_budget=100, progress=False)
    assert bundle.storage == "streaming" and bundle.train_images is None
    assert len(bundle.train_files) == 8 and len(bundle.val_files) == 4  # 1.5 rounds up
    assert len(bundle.mean) == 3
    val = bundle.val_loader(2, num_workers=0)
    assert isinstance(val, FileBatchLoader)
    assert torch.cat([y for _, y in val]).tolist() == bundle.val_labels.tolist()
    x, y = next(iter(bundle.train_loader(4, num_workers=0)))
    assert x.shape == (4, 3, 10, 10) and x.dtype == torch.float32 and y.dtype == torch.int64
    cached = load_data(tmp_path, val_split=0.25, cache=False, progress=False)
    assert cached.storage == "cached"
    # Both storages split the same way.
    from resnetv2.data import decode_image

    streamed_val = torch.stack([decode_image(f) for f in bundle.val_files])
    assert torch.equal(streamed_val, cached.val_images)
    assert torch.equal(bundle.val_labels, cached.val_labels)


@pytest.mark.parametrize("augment", ["standard", "cutout", "seed", "digits"])
def test_cached_and_streaming_augment_a_recipe_identically(tmp_path, fakes, monkeypatch, augment):
    """Given the same random draws, both storages produce the same normalised tensors: one
    augmentation implementation, one preprocessing (no torchvision stand-ins)."""
    from resnetv2.data import TensorBatchLoader, decode_image
    from resnetv2.data import loaders as loaders_module
    from resnetv2.data import streaming as streaming_module

    def same_draws(*_parts):
        return torch.Generator().manual_seed(1234)

    monkeypatch.setattr(loaders_module, "generator_for", same_draws)
    monkeypatch.setattr(streaming_module, "generator_for", same_draws)
    files = [
        fakes.save_image(tmp_path / f"{i}.png", fakes.random_rgb(10 + i, 14, i)) for i in range(3)
    ]
    mean, std = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
    cached = TensorBatchLoader(
        torch.stack([decode_image(f, size=(12, 12)) for f in files]),
        torch.zeros(3, dtype=torch.int64),
        1,
        augment=augment,
        mean=mean,
        std=std,
    )
    dataset = FileImageDataset(
        files, [0] * 3, image_size=(12, 12), mean=mean, std=std, augment=augment
    )
    streamed = FileBatchLoader(dataset, 1, num_workers=0)
    for (x_cached, _), (x_streamed, _) in zip(cached, streamed, strict=True):
        assert torch.equal(x_cached, x_streamed)


def test_alternating_flip_is_the_same_pattern_as_the_cached_loader(tmp_path):
    from PIL import Image

    from resnetv2.data import TensorBatchLoader

    pixels = torch.zeros((3, 32, 32), dtype=torch.uint8)
    pixels[..., 16:] = 255  # dark left half, bright right half
    files = []
    for i in range(6):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(files[-1])
    labels = list(range(6))
    stats = dict(mean=(0.5,) * 3, std=(0.25,) * 3)
    dataset = FileImageDataset(
        files, labels, image_size=(32, 32), augment="standard", seed=2, flip="alternate", **stats
    )
    streaming = FileBatchLoader(dataset, 4, shuffle=True, seed=2)
    cached = TensorBatchLoader(
        pixels.expand(6, 3, 32, 32).contiguous(), torch.tensor(labels), 4, shuffle=True,
        augment="standard", seed=2, flip="alternate", **stats,
    )  # fmt: skip
    patterns = []
    for loader in (streaming, cached):
        epochs = []
        for _ in range(2):
            flags = torch.zeros(6, dtype=torch.bool)
            for x, y in loader:
                flags[y] = x[:, 0, 16, 8] > x[:, 0, 16, 23]
            epochs.append(flags)
        assert torch.equal(epochs[1], ~epochs[0])
        patterns.append(epochs)
    assert all(torch.equal(a, b) for a, b in zip(*patterns))
    assert streaming.state_dict()["flip"] == "alternate"
