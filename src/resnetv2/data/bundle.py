"""``DataBundle``: a loaded dataset (both splits plus its metadata) and its loader factories."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from resnetv2.data.augment import check_augmentation
from resnetv2.data.badimages import SkippedImages
from resnetv2.data.decode import DecodeOptions
from resnetv2.data.loaders import TensorBatchLoader
from resnetv2.data.streaming import FileBatchLoader, FileImageDataset

Storage = Literal["cached", "streaming"]


def default_num_workers() -> int:
    """Streaming workers when none are asked for: one per core, at most 8, leaving one free."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


@dataclass
class DataBundle:
    """Training and validation data of one source, with what a model and a trainer need.

    ``storage='cached'``: ``train_images`` / ``val_images`` are uint8 ``[N, C, H, W]`` tensors.
    ``storage='streaming'``: they are ``None`` and ``train_files`` / ``val_files`` list the
    image files instead. ``train_labels`` / ``val_labels`` are int64 tensors in both cases.
    ``mean`` / ``std`` are per channel on the 0..1 scale, from the training split unless given.
    ``skipped`` lists the files the decoding policy refused. ``train_sources`` /
    ``val_sources`` name the file each sample was decoded from (folder data, either storage),
    for per-file reports such as ``evaluate --save-predictions``.
    """

    source: str
    storage: Storage
    class_names: list[str]
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_labels: torch.Tensor
    val_labels: torch.Tensor
    train_images: torch.Tensor | None = None
    val_images: torch.Tensor | None = None
    train_files: list[Path] | None = None
    val_files: list[Path] | None = None
    skipped: SkippedImages = field(default_factory=SkippedImages)
    default_augment: str = "standard"
    decode_options: DecodeOptions = field(default_factory=DecodeOptions)
    on_bad_image: str = "skip"
    train_sources: list[str] | None = None
    val_sources: list[str] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_train(self) -> int:
        return int(self.train_labels.shape[0])

    @property
    def num_val(self) -> int:
        return int(self.val_labels.shape[0])

    def sample_sources(self, split: str) -> list[str]:
        """Where each sample of ``split`` (``train`` or ``val``) came from, in loader order:
        its file for folder data, else ``SOURCE:split[i]`` (built-in datasets)."""
        files = self.train_sources or self.train_files
        count = self.num_train
        if split == "val":
            files, count = self.val_sources or self.val_files, self.num_val
        if files is not None:
            return [str(f) for f in files]
        return [f"{self.source}:{split}[{i}]" for i in range(count)]

    def summary(self) -> str:
        """One line for logs: sizes, classes, shape, storage and skipped files."""
        height, width = self.image_size
        line = (
            f"{self.source}: {self.num_train:,} train / {self.num_val:,} val images, "
            f"{self.num_classes} classes, {self.in_channels}x{height}x{width}, {self.storage}"
        )
        if self.skipped:
            line += f", {self.skipped.count:,} skipped"
        return line

    def train_loader(
        self,
        batch_size: int,
        augment: str | None = None,
        *,
        seed: int = 0,
        device: str | torch.device | None = None,
        drop_last: bool = False,
        num_workers: int | None = None,
        flip: str = "random",
    ) -> TensorBatchLoader | FileBatchLoader:
        """Shuffled, augmented training batches (``augment`` defaults to the source's preset:
        ``digits`` for the digits dataset, ``standard`` otherwise); ``flip`` is ``random`` or
        ``alternate`` (:mod:`resnetv2.data.augment`)."""
        augment = check_augmentation(augment if augment is not None else self.default_augment)
        return self._loader(
            batch_size, augment, True, drop_last, seed, device, num_workers, flip=flip
        )

    def val_loader(
        self,
        batch_size: int,
        *,
        device: str | torch.device | None = None,
        num_workers: int | None = None,
    ) -> TensorBatchLoader | FileBatchLoader:
        """Validation batches in order, unaugmented; every sample exactly once (no drop, no pad)."""
        return self._loader(batch_size, "none", False, False, 0, device, num_workers, val=True)

    def _loader(
        self,
        batch_size,
        augment,
        shuffle,
        drop_last,
        seed,
        device,
        num_workers,
        val=False,
        flip="random",
    ):
        labels = self.val_labels if val else self.train_labels
        if self.storage == "cached":
            images = self.val_images if val else self.train_images
            return TensorBatchLoader(
                images,
                labels,
                batch_size,
                shuffle=shuffle,
                drop_last=drop_last,
                augment=augment,
                mean=self.mean,
                std=self.std,
                seed=seed,
                device=device,
                flip=flip,
            )
        dataset = FileImageDataset(
            self.val_files if val else self.train_files,
            labels,
            image_size=self.image_size,
            mean=self.mean,
            std=self.std,
            augment=augment,
            seed=seed,
            options=self.decode_options,
            flip=flip,
        )
        return FileBatchLoader(
            dataset,
            batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=seed,
            device=device,
            num_workers=default_num_workers() if num_workers is None else num_workers,
            on_bad_image=self.on_bad_image,
        )
