"""The engine's access to data: :func:`resnetv2.data.load_data` plus per-process sharding.

The data layer decodes, splits and makes loaders; both of its loaders
(:class:`~resnetv2.data.TensorBatchLoader` for cached tensors, ``FileBatchLoader`` for
streaming) keep their state as ``(epoch, position)`` with seeds derived per epoch and batch,
which is what makes a mid-epoch resume exact. Here the validation split is cut into
contiguous, non-padded per-process shards for data-parallel evaluation.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

from resnetv2.config import DataConfig
from resnetv2.errors import DataError, ResNetV2Error  # one DataError, found here or in data/


def load_training_data(config: DataConfig, *, seed: int = 0, progress: bool = True):
    """Load ``config.source`` (``digits``, ``cifar10``, ``cifar100`` or a class-folder tree)
    as a :class:`resnetv2.data.DataBundle`; data-layer errors become :class:`DataError`."""
    from resnetv2.data import load_data

    caught: list[warnings.WarningMessage] = []
    try:
        check_validation_source(config)
        with warnings.catch_warnings(record=True) as caught:  # noqa: F841 - read in finally
            warnings.simplefilter("always")
            bundle = load_data(config, seed, progress=progress)
    except ResNetV2Error as exc:
        if config_words(str(exc)) == str(exc):
            raise
        raise DataError(config_words(str(exc))) from None
    except (ValueError, TypeError, RuntimeError, FileNotFoundError, NotADirectoryError) as exc:
        raise DataError(f"data: {config_words(str(exc))}") from exc
    finally:
        for w in caught:  # the data layer's warnings, re-issued in the config's words
            warnings.warn_explicit(config_words(str(w.message)), w.category, w.filename, w.lineno)
    return bundle


#: The data layer's Python argument names, as the command line and the config name them.
_CONFIG_WORDS = [
    (r"\bpass image_size\b", "pass --input-size (data.image_size)"),
    (r"\bimage_size\b(?= must| \d)", "--input-size (data.image_size)"),
    (r"\bsource=", "--data (data.source) "),
    (r"\bval_dir=", "--val-data (data.val_data) "),
    (r"\bval_split\b(?= must)", "--val-split (data.val_split)"),
    (r"\(download=True\)", "(data.download: true)"),
]


def config_words(message: str) -> str:
    """A data-layer message (``load_data``'s argument names) in the flags' and the config's
    words: ``pass image_size`` → ``pass --input-size (data.image_size)``."""
    import re

    for pattern, words in _CONFIG_WORDS:
        message = re.sub(pattern, words, message)
    return message


def check_validation_source(config: DataConfig) -> None:
    """Refuse validation settings that do not fit the source, in the config's (and flags')
    words: a folder needs exactly one of ``val_data``/``val_split`` (the data plan gives it a
    split when neither is set), a built-in dataset cannot take a validation folder."""
    from resnetv2.data.load import BUILTIN_DATASETS

    given = "--val-data (data.val_data)"
    if config.val_data is not None and config.source in BUILTIN_DATASETS:
        raise DataError(
            f"{given} applies to folder sources only, not {config.source!r}; use "
            "--val-split (data.val_split) to hold out part of its training set"
        )
    if config.val_data is not None and config.val_split is not None:
        raise DataError(
            f"{given} and --val-split (data.val_split) are both set; give one: a validation "
            "folder or a fraction of the training folder"
        )
    neither = config.val_data is None and config.val_split is None
    if neither and config.source not in BUILTIN_DATASETS and os.path.isdir(config.source):
        from resnetv2.data.folders import scan_class_folders

        scan_class_folders(config.source)  # what is wrong with the folder itself comes first
        raise DataError(
            f"the folder {config.source} needs validation data: pass --val-split F "
            f"(data.val_split, e.g. 0.1) or {given.replace('(', 'DIR (', 1)}"
        )


def record_data_identity(config, *, resuming: bool, force: bool, log) -> Any:
    """``config`` with absolute data paths and the data's fingerprint
    (:mod:`resnetv2.data.fingerprint`). On a resume the folders found must match the
    fingerprint the run recorded (``force``: logged instead of refused)."""
    from resnetv2.data.fingerprint import absolute_source, check_fingerprint, data_fingerprint

    d = config.data
    paths = {
        "source": absolute_source(d.source),
        "val_data": absolute_source(d.val_data),
        "data_dir": os.path.abspath(os.path.expanduser(d.data_dir)) if d.data_dir else None,
    }
    if resuming:
        try:
            check_fingerprint(
                d.fingerprint,
                paths["source"],
                paths["val_data"],
                what="--resume",
                fix="pass --resume-force to continue on this data",
            )
        except ResNetV2Error as exc:
            if not force:
                raise DataError(str(exc)) from None
            log.warning("resuming despite a change (--resume-force): %s", exc)
    try:
        fingerprint = data_fingerprint(paths["source"], paths["val_data"])
    except (ResNetV2Error, OSError):
        fingerprint = None  # the data load that follows reports what is wrong
    data = dataclasses.replace(d, **paths, fingerprint=fingerprint)
    return dataclasses.replace(config, data=data)


def val_shard(bundle, start: int, stop: int):
    """A copy of ``bundle`` whose validation split is items ``[start, stop)``."""
    changes = {"val_labels": bundle.val_labels[start:stop]}
    if bundle.val_images is not None:
        changes["val_images"] = bundle.val_images[start:stop]
    if bundle.val_files is not None:
        changes["val_files"] = list(bundle.val_files[start:stop])
    return dataclasses.replace(bundle, **changes)


def check_model_matches_data(spec, data, *, finetuning: bool) -> None:
    """Refuse a model whose classes or input channels do not fit the data."""
    if spec.num_classes != data.num_classes:
        raise DataError(
            f"the model has {spec.num_classes} classes but the data has "
            f"{data.num_classes} ({', '.join(data.class_names[:10])}...); drop "
            "model.options.num_classes (it defaults to the data's)"
        )
    if spec.in_channels != data.in_channels:
        what = "the pretrained weights take" if finetuning else "the model takes"
        fix = "set data.channels (--channels)" if finetuning else "drop model.options.in_channels"
        raise DataError(
            f"{what} {spec.in_channels} input channels but the images have "
            f"{data.in_channels}; {fix}"
        )


def make_loaders(data, config: DataConfig, *, seed: int, device, ctx):
    """``(train_loader, val_loader)`` for this process: the training batches of the global
    batch, and this rank's unpadded shard of the validation set (each image counted once)."""
    from resnetv2.engine import distributed as ddp

    drop_last = config.drop_last
    remainder = data.num_train % config.batch_size
    if ctx.enabled and not drop_last and 0 < remainder < ctx.world_size:
        # A last batch smaller than the process count would leave a rank with no images.
        drop_last = True
    augment = None if config.augment == "auto" else config.augment
    train_loader = data.train_loader(
        config.batch_size,
        augment,
        seed=seed,
        device=device,
        drop_last=drop_last,
        num_workers=config.workers,
        flip=config.flip,
    )
    if len(train_loader) == 0:
        raise DataError(
            f"data.batch_size {config.batch_size} with drop_last leaves no batch of the "
            f"{data.num_train} training images"
        )
    start, stop = ddp.shard_range(data.num_val, ctx)
    val_loader = val_shard(data, start, stop).val_loader(
        config.eval_batch_size or max(config.batch_size, 256),
        device=device,
        num_workers=config.workers,
    )
    return train_loader, val_loader
