"""Streaming path for datasets too large to hold decoded: files decoded per sample in
``DataLoader`` workers, through the same :class:`~resnetv2.data.preprocessing.Preprocessing`
and the same augmentation code (:func:`~resnetv2.data.augment.augment_pixels`) as the cached
path, so a recipe augments identically whichever storage the data use: the cached loader
applies a preset to a batch, this one to a batch of one image.

Reproducibility does not rest on worker RNG state: each sample is augmented with a generator
seeded from ``(seed, epoch, sample index)``, so different samples (and hence different
workers) always get different augmentations, and the same seed reproduces them whatever the
number of workers. The epoch's batches come in a seeded order and can start mid-epoch, so
:class:`FileBatchLoader` resumes exactly, like :class:`~resnetv2.data.loaders.TensorBatchLoader`.

Bad files are not replaced by anything: under ``on_bad_image='skip'`` they are left out of
their batch (which is then smaller) and summarised in one warning per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset

from resnetv2.data.augment import (
    alternating_flips,
    augment_pixels,
    check_augmentation,
    check_flip,
    first_flips,
)
from resnetv2.data.badimages import SkippedImages, check_on_bad_image, warn_skipped
from resnetv2.data.decode import BadImageError, DecodeOptions
from resnetv2.data.loaders import ResumableLoader, check_batch_size
from resnetv2.data.preprocessing import Preprocessing
from resnetv2.data.rng import generator_for
from resnetv2.errors import DataError

STATE_KIND = "resnetv2.FileBatchLoader"


class FileImageDataset(Dataset):
    """Files decoded on demand by the decoding policy, resized to ``image_size``, augmented
    and normalised (all through :class:`~resnetv2.data.preprocessing.Preprocessing` and
    :func:`~resnetv2.data.augment.augment_pixels`). Items are
    ``(image or None, label, index, BadImageError or None)``."""

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
        flip: str = "random",
    ):
        if len(files) != len(labels):
            raise DataError(f"got {len(files)} files but {len(labels)} labels")
        self.files = [str(f) for f in files]
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.image_size = tuple(image_size)
        self.augment = check_augmentation(augment)
        self.flip = check_flip(flip, self.augment)
        self._first_flips = first_flips(seed, len(files)) if flip == "alternate" else None
        self.seed = int(seed)
        self.options = options or DecodeOptions()
        self.epoch = 0
        self.preprocessing = Preprocessing(self.image_size, 3, tuple(mean), tuple(std))
        self.mean, self.std = self.preprocessing.mean, self.preprocessing.std
        self._fill = [m * 255 for m in self.mean]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        label = int(self.labels[index])
        try:
            image = self.preprocessing.decode(self.files[index], self.options)[None]
        except BadImageError as error:
            return None, label, index, error
        if self.augment != "none":
            # A private generator per (seed, epoch, sample): independent of worker count and
            # of what other samples drew; the global RNG is never touched.
            generator = generator_for(self.seed, "sample", self.epoch, index)
            flips = None
            if self._first_flips is not None:
                flips = alternating_flips(self._first_flips, torch.tensor([index]), self.epoch)
            image = augment_pixels(image, self.augment, generator, fill=self._fill, flips=flips)
        return self.preprocessing.normalize(image)[0], label, index, None


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

    @property
    def flip(self) -> str:
        return self.dataset.flip

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch
        self.dataset.epoch = epoch
        batches = list(BatchSampler(self._order(epoch).tolist(), self.batch_size, self.drop_last))
        loader = DataLoader(
            self.dataset,
            batch_sampler=batches[self.position :],
            num_workers=self.num_workers,
            collate_fn=collate_skipping_bad,
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
