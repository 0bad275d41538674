"""TensorBatchLoader: coverage, normalisation, evaluation exactness and exact mid-epoch resume."""

from __future__ import annotations

import json

import pytest
import torch

from resnetv2.data import TensorBatchLoader


def _data(n=50, channels=3, size=8):
    images = torch.randint(
        0, 256, (n, channels, size, size), generator=torch.Generator().manual_seed(0)
    )
    return images.to(torch.uint8), torch.arange(n) % 7


def _loader(**overrides):
    images, labels = _data()
    kwargs = dict(shuffle=True, augment="standard", seed=11, mean=(0.5,) * 3, std=(0.25,) * 3)
    kwargs.update(overrides)
    return TensorBatchLoader(images, labels, 16, **kwargs)


def test_length_with_and_without_drop_last():
    assert len(_loader()) == 4 and len(_loader(drop_last=True)) == 3
    assert sum(len(y) for _, y in _loader(drop_last=True)) == 48


def test_an_epoch_visits_every_sample_once_and_epochs_differ():
    loader = _loader(augment="none")
    first = torch.cat([y for _, y in loader])
    images, labels = _data()
    assert sorted(first.tolist()) == sorted(labels.tolist())
    assert loader.epoch == 1
    second = torch.cat([y for _, y in loader])
    assert not torch.equal(first, second)


def test_batches_are_normalised_float_and_long():
    images, labels = _data()
    loader = TensorBatchLoader(images, labels, 50, mean=(0.5,) * 3, std=(0.25,) * 3)
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(x * 0.25 + 0.5, images.float() / 255, atol=1e-6)


def test_default_statistics_come_from_the_images():
    images, labels = _data()
    loader = TensorBatchLoader(images, labels, 50)
    x, _ = next(iter(loader))
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)


def test_standard_padding_normalises_to_zero():
    images = torch.full((64, 3, 8, 8), 255, dtype=torch.uint8)
    loader = TensorBatchLoader(
        images, torch.zeros(64), 64, augment="standard", mean=(0.5,) * 3, std=(0.25,) * 3
    )
    x, _ = next(iter(loader))
    values = torch.unique(x)
    # Padding is the mean colour rounded to uint8 (128 for 0.5), i.e. ~0 after normalising.
    assert torch.allclose(values, torch.tensor([(128 / 255 - 0.5) / 0.25, 2.0]), atol=1e-5)


def test_evaluation_loader_yields_each_sample_once_in_order():
    images, labels = _data(n=37)
    loader = TensorBatchLoader(images, labels, 16, mean=(0.5,) * 3, std=(0.25,) * 3)
    batches = list(loader)
    assert [len(y) for _, y in batches] == [16, 16, 5]
    assert torch.equal(torch.cat([y for _, y in batches]), labels)
    assert torch.allclose(torch.cat([x for x, _ in batches]) * 0.25 + 0.5, images / 255, atol=1e-6)


def _take(loader, count):
    """The next ``count`` batches, across epochs (each ``iter()`` runs one epoch)."""
    out = []
    while len(out) < count:
        for batch in loader:
            out.append(batch)
            if len(out) == count:
                break
    return out


@pytest.mark.parametrize("augment", ["standard", "seed"])
@pytest.mark.parametrize("stop_after", [1, 3, 4, 6])
def test_resume_mid_epoch_gives_identical_remaining_batches(augment, stop_after):
    reference = _loader(augment=augment)
    straight = _take(reference, 10)  # 4 batches per epoch: runs into the third epoch

    interrupted = _loader(augment=augment)
    _take(interrupted, stop_after)
    state = json.loads(json.dumps(interrupted.state_dict()))

    resumed = _loader(augment=augment)
    resumed.load_state_dict(state)
    rest = _take(resumed, 10 - stop_after)
    for (x_ref, y_ref), (x_new, y_new) in zip(straight[stop_after:], rest, strict=True):
        assert torch.equal(x_ref, x_new) and torch.equal(y_ref, y_new)


def test_state_counts_epoch_and_position():
    loader = _loader()
    _take(loader, 3)
    assert (loader.state_dict()["epoch"], loader.state_dict()["position"]) == (0, 3)
    list(loader)
    assert (loader.epoch, loader.position) == (1, 0)


def test_resume_with_other_settings_is_refused_with_the_differences():
    state = _loader().state_dict()
    other = TensorBatchLoader(*_data(), 32, shuffle=True, augment="seed", seed=11)
    with pytest.raises(ValueError, match="batch_size") as info:
        other.load_state_dict(state)
    assert "augment" in str(info.value)
    other.load_state_dict(state, strict=False)
    assert other.epoch == 0


def test_same_seed_same_batches_other_seed_other_batches():
    a, b, c = (torch.cat([x for x, _ in _loader(seed=s)]) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_set_epoch_restarts_an_epoch():
    loader = _loader()
    first = _take(loader, 2)
    loader.set_epoch(0)
    again = _take(loader, 2)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(first, again))


def test_bad_arguments():
    images, labels = _data()
    with pytest.raises(ValueError, match="uint8"):
        TensorBatchLoader(images.float(), labels, 4)
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatchLoader(images, labels, 0)
    with pytest.raises(ValueError, match="unknown augmentation"):
        TensorBatchLoader(images, labels, 4, augment="mixup")
    with pytest.raises(ValueError, match="one per channel"):
        TensorBatchLoader(images, labels, 4, mean=(0.5,), std=(0.2,))


def test_thread_setting_is_restored_after_each_batch():
    before = torch.get_num_threads()
    loader = _loader()
    iterator = iter(loader)
    next(iterator)
    assert torch.get_num_threads() == before
    list(iterator)
    assert torch.get_num_threads() == before


def _halves(n=20, size=32):
    """Images dark on the left half, bright on the right: a mirror is easy to see."""
    images = torch.zeros((n, 3, size, size), dtype=torch.uint8)
    images[..., size // 2 :] = 255
    return images, torch.arange(n)


def _flipped_by_epoch(loader, epochs):
    """``{epoch: [flipped? per sample]}`` read from the batches (4-pixel crops cannot move
    column 8 into the other half; a mirror does)."""
    seen = {}
    for _ in range(epochs):
        epoch = loader.epoch
        flags = torch.zeros(loader.num_samples, dtype=torch.bool)
        for x, y in loader:
            flags[y] = x[:, 0, 16, 8] > x[:, 0, 16, 23]
        seen[epoch] = flags
    return seen


@pytest.mark.parametrize("augment", ["standard", "seed"])
def test_alternating_flip_mirrors_each_image_on_alternate_epochs(augment):
    # airbench (arXiv:2404.00498): a random first choice per image, then alternate.
    images, labels = _halves()
    kwargs = dict(shuffle=True, augment=augment, seed=3, mean=(0.5,) * 3, std=(0.25,) * 3)
    loader = TensorBatchLoader(images, labels, 8, flip="alternate", **kwargs)
    seen = _flipped_by_epoch(loader, 4)
    assert 0 < int(seen[0].sum()) < 20  # the first choice is random per image
    for epoch in range(3):
        assert torch.equal(seen[epoch + 1], ~seen[epoch])
    # random flips do not alternate
    plain = _flipped_by_epoch(TensorBatchLoader(images, labels, 8, **kwargs), 4)
    assert any(torch.equal(plain[e + 1], plain[e]) is False for e in range(3))
    assert any(bool((plain[e + 1] == plain[e]).any()) for e in range(3))


def test_alternating_flip_pattern_is_exact_after_a_mid_epoch_resume():
    images, labels = _halves()
    kwargs = dict(shuffle=True, augment="cutout", seed=5, flip="alternate", mean=(0.5,) * 3)
    kwargs["std"] = (0.25,) * 3
    straight = _take(TensorBatchLoader(images, labels, 8, **kwargs), 9)  # 3 per epoch
    first = TensorBatchLoader(images, labels, 8, **kwargs)
    _take(first, 4)
    state = json.loads(json.dumps(first.state_dict()))
    assert state["flip"] == "alternate"
    resumed = TensorBatchLoader(images, labels, 8, **kwargs)
    resumed.load_state_dict(state)
    for (x_ref, y_ref), (x_new, y_new) in zip(straight[4:], _take(resumed, 5), strict=True):
        assert torch.equal(x_ref, x_new) and torch.equal(y_ref, y_new)
    # a state saved with random flips is refused: the pattern would change
    plain = TensorBatchLoader(images, labels, 8, **{**kwargs, "flip": "random"})
    with pytest.raises(ValueError, match="flip"):
        plain.load_state_dict(state)


def test_alternating_flip_needs_a_preset_that_flips():
    images, labels = _halves()
    with pytest.raises(ValueError, match="never mirrors"):
        TensorBatchLoader(images, labels, 8, augment="digits", flip="alternate")
    with pytest.raises(ValueError, match="flip mode"):
        TensorBatchLoader(images, labels, 8, augment="standard", flip="sometimes")
