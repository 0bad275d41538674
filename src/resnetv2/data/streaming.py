"""Streaming path for datasets too large to hold decoded: files decoded per sample in
``DataLoader`` workers, with torchvision ``transforms.v2`` augmentation.

Reproducibility does not rest on worker RNG state: each sample is augmented under a seed
derived from ``(seed, epoch, sample index)``, so different samples (and hence different
workers) always get different augmentations, and the same seed reproduces them whatever the
number of workers. The ``worker_init_fn`` additionally seeds Python's and NumPy's global RNGs
per worker, for user transforms that use them. Batches are drawn by a seeded batch sampler
that can start mid-epoch, so :class:`FileBatchLoader` resumes exactly, like
:class:`~resnetv2.data.loaders.TensorBatchLoader`.

Bad files are not replaced by anything: under ``on_bad_image='skip'`` they are left out of
their batch (which is then smaller) and summarised in one warning per epoch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from resnetv2.data.augment import (
    DIGITS_AFFINE,
    SEED_AFFINE,
    STANDARD_PADDING,
    check_augmentation,
)
from resnetv2.data.badimages import SkippedImages, check_on_bad_image, warn_skipped
from resnetv2.data.decode import BadImageError, DecodeOptions, decode_image
from resnetv2.data.loaders import ResumableLoader, check_batch_size
from resnetv2.data.rng import derive_seed, generator_for
from resnetv2.errors import DataError

STATE_KIND = "resnetv2.FileBatchLoader"


def v2_augmentation(name: str, image_size: tuple[int, int], fill: Sequence[float]):
    """The ``transforms.v2`` counterpart of an augmentation preset (uint8 in, uint8 out).

    ``standard`` matches the batched version exactly in distribution. ``seed`` and ``digits``
    use ``RandomAffine``, which scales x and y together and fills with a constant (the mean
    colour for ``seed``, black for ``digits``) where the batched ``seed`` preset zooms x and
    y independently and replicates edge pixels as Keras does.
    """
    # torchvision is imported here, not at module level: it costs ~1 s of start-up that the
    # cached-tensor path (most runs) never needs.
    from torchvision.transforms import v2

    check_augmentation(name)
    fill_uint8 = [round(v) for v in fill]
    if name == "standard":
        return v2.Compose(
            [
                v2.RandomCrop(image_size, padding=STANDARD_PADDING, fill=fill_uint8),
                v2.RandomHorizontalFlip(),
            ]
        )
    if name == "seed":
        r = SEED_AFFINE
        return v2.Compose(
            [
                v2.RandomAffine(
                    degrees=r.rotation_deg,
                    translate=(r.shift_fraction, r.shift_fraction),
                    scale=(1 - r.zoom, 1 + r.zoom),
                    shear=r.shear_deg,
                    interpolation=v2.InterpolationMode.BILINEAR,
                    fill=fill_uint8,
                ),
                v2.RandomHorizontalFlip(),
            ]
        )
    if name == "digits":
        r = DIGITS_AFFINE
        height, width = image_size
        return v2.RandomAffine(
            degrees=r.rotation_deg,
            translate=(r.shift_pixels / width, r.shift_pixels / height),
            scale=(1 - r.zoom, 1 + r.zoom),
            interpolation=v2.InterpolationMode.BILINEAR,
            fill=0,
        )
    return v2.Identity()


class FileImageDataset(Dataset):
    """Files decoded on demand by the decoding policy, resized to ``image_size``, augmented
    and normalised. Items are ``(image or None, label, index, BadImageError or None)``."""

    def __init__(
        self,
        files: Sequence[str | Path],
        labels: Sequence[int] | torch.Tensor,
        *,
        image_size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        augment: str = "none",
        seed: int = 0,
        options: DecodeOptions | None = None,
    ):
        if len(files) != len(labels):
            raise DataError(f"got {len(files)} files but {len(labels)} labels")
        self.files = [str(f) for f in files]
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.image_size = tuple(image_size)
        self.augment = check_augmentation(augment)
        self.seed = int(seed)
        self.options = options or DecodeOptions()
        self.epoch = 0
        self.mean, self.std = tuple(mean), tuple(std)
        self._transform = v2_augmentation(augment, self.image_size, [m * 255 for m in self.mean])
        from torchvision.transforms import v2

        self._normalize = v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        label = int(self.labels[index])
        try:
            image = decode_image(self.files[index], self.options, size=self.image_size)
        except BadImageError as error:
            return None, label, index, error
        if self.augment != "none":
            # A private RNG stream per (seed, epoch, sample): independent of worker count and
            # of what other samples drew; the global RNG is restored afterwards.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derive_seed(self.seed, "sample", self.epoch, index))
                image = self._transform(image)
        return self._normalize(image), label, index, None


def collate_skipping_bad(items):
    """Stack the good items of a batch; return ``(x, y, errors)``."""
    good = [item for item in items if item[3] is None]
    errors = [item[3] for item in items if item[3] is not None]
    if good:
        images = torch.stack([item[0] for item in good])
    else:
        images = torch.empty(0)
    labels = torch.tensor([item[1] for item in good], dtype=torch.int64)
    return images, labels, errors


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed Python's and NumPy's global RNGs from the worker's torch seed
    (which the DataLoader derives from its seeded generator and the worker id)."""
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    np.random.seed(worker_seed)


class _EpochBatchSampler:
    """Index batches of one epoch in a seeded order, starting at batch ``start``."""

    def __init__(self, order: list[int], batch_size: int, drop_last: bool, start: int):
        self.order, self.batch_size, self.drop_last, self.start = (
            order,
            batch_size,
            drop_last,
            start,
        )

    def _count(self) -> int:
        n = len(self.order)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self) -> int:
        return max(0, self._count() - self.start)

    def __iter__(self):
        for index in range(self.start, self._count()):
            yield self.order[index * self.batch_size : (index + 1) * self.batch_size]


class FileBatchLoader(ResumableLoader):
    """Iterate ``(x, y)`` batches from a :class:`FileImageDataset` through a ``DataLoader``.

    Same interface as :class:`~resnetv2.data.loaders.TensorBatchLoader`: ``len()``,
    ``set_epoch``, ``state_dict`` / ``load_state_dict``; plus ``skipped``, the files left out.
    """

    STATE_KIND = STATE_KIND

    def __init__(
        self,
        dataset: FileImageDataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        device: str | torch.device | None = None,
        num_workers: int = 0,
        on_bad_image: str = "skip",
    ):
        self.dataset = dataset
        self.batch_size = check_batch_size(batch_size)
        self.shuffle, self.drop_last, self.seed = bool(shuffle), bool(drop_last), int(seed)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise DataError(f"num_workers must be a non-negative int, got {num_workers!r}")
        self.num_workers = num_workers
        self.on_bad_image = check_on_bad_image(on_bad_image)
        self.skipped = SkippedImages()
        self.epoch = 0
        self.position = 0

    @property
    def num_samples(self) -> int:
        return len(self.dataset)

    @property
    def augment(self) -> str:
        return self.dataset.augment

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position = int(epoch), 0

    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_samples))
        return torch.randperm(
            self.num_samples, generator=generator_for(self.seed, "order", epoch)
        ).tolist()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch
        self.dataset.epoch = epoch
        sampler = _EpochBatchSampler(
            self._order(epoch), self.batch_size, self.drop_last, self.position
        )
        loader = DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate_skipping_bad,
            worker_init_fn=seed_worker,
            generator=generator_for(self.seed, "workers", epoch),
            pin_memory=self.device.type == "cuda",
        )
        epoch_skipped = SkippedImages()
        for images, labels, errors in loader:
            self.position += 1
            if errors:
                if self.on_bad_image == "error":
                    raise errors[0]
                seen = set(self.skipped.files)
                new = [e for e in errors if e.path not in seen]
                epoch_skipped.extend(new)
                self.skipped.extend(new)
            if labels.numel() == 0:
                continue
            yield (
                images.to(self.device, non_blocking=True),
                labels.to(self.device, non_blocking=True),
            )
        warn_skipped(epoch_skipped, self.num_samples)
        self.epoch, self.position = epoch + 1, 0
