"""The engine's access to data: :func:`resnetv2.data.load_data` plus per-process sharding.

The data layer decodes, splits and makes loaders; both of its loaders
(:class:`~resnetv2.data.TensorBatchLoader` for cached tensors, ``FileBatchLoader`` for
streaming) keep their state as ``(epoch, position)`` with seeds derived per epoch and batch,
which is what makes a mid-epoch resume exact. Here the validation split is cut into
contiguous, non-padded per-process shards for data-parallel evaluation.
"""

from __future__ import annotations

import dataclasses

from resnetv2.config import DataConfig
from resnetv2.errors import ResNetV2Error


class DataError(ResNetV2Error, ValueError):
    """The training data cannot be used (missing, empty, inconsistent)."""


def load_training_data(config: DataConfig, *, seed: int = 0, progress: bool = True):
    """Load ``config.source`` (``digits``, ``cifar10``, ``cifar100`` or a class-folder tree)
    as a :class:`resnetv2.data.DataBundle`; data-layer errors become :class:`DataError`."""
    from resnetv2.data import load_data

    try:
        return load_data(
            config.source,
            val_dir=config.val_data,
            val_split=config.val_split,
            seed=seed,
            image_size=tuple(config.image_size)
            if isinstance(config.image_size, list)
            else config.image_size,
            channels=config.channels,
            mean=config.mean,
            std=config.std,
            data_dir=config.data_dir,
            download=config.download,
            progress=progress,
        )
    except ResNetV2Error:
        raise
    except (ValueError, TypeError, RuntimeError, FileNotFoundError, NotADirectoryError) as exc:
        raise DataError(f"data: {exc}") from exc


def val_shard(bundle, start: int, stop: int):
    """A copy of ``bundle`` whose validation split is items ``[start, stop)``."""
    changes = {"val_labels": bundle.val_labels[start:stop]}
    if bundle.val_images is not None:
        changes["val_images"] = bundle.val_images[start:stop]
    if bundle.val_files is not None:
        changes["val_files"] = list(bundle.val_files[start:stop])
    return dataclasses.replace(bundle, **changes)
