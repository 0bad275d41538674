"""``load_data``: the one entry point from a ``DataConfig`` (or a source name or folder) to a
:class:`DataBundle`."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import torch

from resnetv2.data.badimages import SkippedImages, check_on_bad_image, warn_skipped
from resnetv2.data.bundle import DataBundle
from resnetv2.data.cached import choose_image_size, decode_files, default_cache_dir
from resnetv2.data.channels import check_channels, convert_channels
from resnetv2.data.cifar import load_cifar
from resnetv2.data.decode import DEFAULT_MAX_PIXELS, BadImageError, DecodeOptions, decode_image
from resnetv2.data.digits import DIGITS_SPLIT_SEED, DIGITS_VAL_SPLIT, load_digits_arrays
from resnetv2.data.fingerprint import BUILTIN_SOURCES
from resnetv2.data.folders import FolderIndex, check_same_classes, scan_class_folders
from resnetv2.data.resize import resize_uint8_batch
from resnetv2.data.split import check_fraction, stratified_split
from resnetv2.data.stats import ChannelHistogram, check_mean_std, compute_mean_std
from resnetv2.errors import DataError

if TYPE_CHECKING:
    from resnetv2.config import DataConfig

# One tuple for both: the torch-free fingerprint module owns it so that it needs no torch.
BUILTIN_DATASETS = BUILTIN_SOURCES
"""Source names that ``load_data`` knows without a folder."""

STORAGE_MODES = ("auto", "cached", "streaming")

DEFAULT_MEMORY_BUDGET = 2 * 1024**3
"""``storage='auto'`` decodes into memory when N × C × H × W bytes fit this (2 GiB)."""

STATS_SAMPLE = 1000
"""Training files decoded to estimate mean/std on the streaming path."""


#: The keywords ``load_data`` takes after a source, with their defaults: ``DataConfig``'s data
#: fields (``val_dir`` is its ``val_data``).
SOURCE_KEYWORDS = {
    "val_dir": None,
    "val_split": None,
    "image_size": None,
    "channels": None,
    "mean": None,
    "std": None,
    "data_dir": None,
    "download": False,
    "cache": True,
    "cache_dir": None,
}


def load_data(
    config: DataConfig | str | os.PathLike | None = None,
    seed: int = 0,
    *,
    progress: bool = True,
    storage: str = "auto",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    on_bad_image: str = "skip",
    decode_options: DecodeOptions | None = None,
    **fields: Any,
) -> DataBundle:
    """Load the data ``config`` describes into a :class:`DataBundle`.

    ``config`` is a :class:`~resnetv2.config.DataConfig`, of which ``source``, ``val_data``,
    ``val_split``, ``image_size``, ``channels``, ``mean``, ``std``, ``data_dir``,
    ``download``, ``cache`` and ``cache_dir`` are read; or the source itself (``'digits'``,
    ``'cifar10'``, ``'cifar100'`` or a class-folder directory) with those fields as keywords
    (:data:`SOURCE_KEYWORDS`; ``val_dir`` sets ``val_data``; the source may be given as
    ``source=``): ``load_data("/data/pets", val_split=0.1, seed=0)``.

    Validation data: for a directory, either ``val_data`` (a second class-folder tree with the
    same classes) or ``val_split`` (a ``seed``-ed stratified fraction of ``source``).
    ``digits`` uses a fixed stratified 80/20 split unless ``val_split`` is given; CIFAR uses
    the official test set unless ``val_split`` is given. ``image_size`` (int or ``(H, W)``)
    resizes every image; by default folder images keep the most common size.
    ``storage='auto'`` decodes into memory when the data fit ``memory_budget`` bytes,
    otherwise streams from disk; decoded folder data are cached on disk (``cache_dir``,
    default :func:`~resnetv2.data.cached.default_cache_dir`, the user's cache folder; the
    data folder itself is never written) unless ``cache`` is false. CIFAR is looked for in
    ``data_dir`` and downloaded only with ``download``. ``channels`` (1 or 3) converts the
    images to grayscale or RGB (:mod:`resnetv2.data.channels`) before the normalisation
    statistics are measured; by default the data keep their own channels.
    """
    cfg = _settings(config, fields)
    check_on_bad_image(on_bad_image)
    channels = check_channels(cfg.channels)
    if storage not in STORAGE_MODES:
        raise DataError(
            f"storage must be one of {', '.join(map(repr, STORAGE_MODES))}; got {storage!r}"
        )
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 0:
        raise DataError(
            f"memory_budget must be a number of bytes (int >= 0), got {memory_budget!r}"
        )
    val_split = check_fraction(cfg.val_split) if cfg.val_split is not None else None
    size = _parse_image_size(cfg.image_size)
    # With ``channels`` the statistics must describe the converted images: made afterwards.
    mean, std = (cfg.mean, cfg.std) if channels is None else (None, None)

    source = cfg.source
    if isinstance(source, str) and source in BUILTIN_DATASETS:
        if cfg.val_data is not None:
            raise DataError(f"val_dir applies to directory sources only, not {source!r}")
        if storage == "streaming":
            raise DataError(f"{source!r} is small and always held in memory; use storage='auto'")
        bundle = _load_builtin(source, val_split, seed, size, cfg.data_dir, cfg.download, mean, std)
    else:
        root = Path(source).expanduser()
        if not root.is_dir():
            raise DataError(
                f"unknown data source {str(source)!r}: expected one of "
                f"{', '.join(map(repr, BUILTIN_DATASETS))} or an existing folder of class "
                "folders"
            )
        if (cfg.val_data is None) == (val_split is None):
            raise DataError(
                "a folder source needs exactly one of val_dir=<folder with the same class "
                "folders> or val_split=<fraction, e.g. 0.1>"
                + ("; got both" if cfg.val_data is not None else "")
            )
        cache_dir = None
        if cfg.cache:
            cache_dir = Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_dir()
        bundle = _load_folder(
            root,
            Path(cfg.val_data).expanduser() if cfg.val_data is not None else None,
            val_split=val_split,
            seed=seed,
            size=size,
            cache_dir=cache_dir,
            on_bad_image=on_bad_image,
            storage=storage,
            memory_budget=memory_budget,
            mean=mean,
            std=std,
            options=decode_options or DecodeOptions(),
            progress=progress,
        )
    return bundle if channels is None else with_channels(bundle, channels, cfg.mean, cfg.std)


def _settings(config: Any, fields: dict[str, Any]) -> Any:
    """``config`` itself, or the keyword form's source and keywords as its fields."""
    if config is None:
        if "source" not in fields:
            raise TypeError("load_data() needs a DataConfig or a source")
        config = fields.pop("source")
    if not isinstance(config, (str, os.PathLike)):
        if fields:
            raise TypeError(
                f"load_data() takes no {next(iter(fields))!r} with a DataConfig; set the "
                "config's field instead"
            )
        return config
    unknown = sorted(set(fields) - set(SOURCE_KEYWORDS))
    if unknown:
        raise TypeError(f"load_data() got an unexpected keyword argument {unknown[0]!r}")
    values = {**SOURCE_KEYWORDS, **fields}
    return SimpleNamespace(source=config, val_data=values.pop("val_dir"), **values)


def with_channels(bundle: DataBundle, channels: int, mean=None, std=None) -> DataBundle:
    """``bundle`` with its images converted to ``channels`` channels and fresh statistics."""
    if bundle.in_channels == channels:
        if mean is None and std is None:
            return bundle
        given_mean, given_std = _statistics(None, mean, std, channels)
        return dataclasses.replace(bundle, mean=given_mean, std=given_std)
    if bundle.train_images is None:
        raise DataError(
            f"converting {bundle.in_channels}-channel images to {channels} channels needs the "
            "in-memory (cached) storage; this dataset streams from disk. Convert the files "
            "themselves, or raise memory_budget"
        )
    train_x = convert_channels(bundle.train_images, channels)
    val_x = convert_channels(bundle.val_images, channels)
    stats_mean, stats_std = _statistics(train_x, mean, std, channels)
    return dataclasses.replace(
        bundle,
        in_channels=channels,
        train_images=train_x,
        val_images=val_x,
        mean=stats_mean,
        std=stats_std,
    )


def _parse_image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, list):
        image_size = tuple(image_size)
    values = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(values) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise DataError(f"image_size must be a positive int or (height, width); got {image_size!r}")
    check_image_size(values)
    return values


def check_image_size(size: tuple[int, int], max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse a target size that images cannot be resized to within the decoder's per-image
    pixel limit (:data:`~resnetv2.data.decode.DEFAULT_MAX_PIXELS`), before any buffer is
    allocated.

    The resize covers the target before it crops, so a square image first becomes
    ``side × side`` for the target's longer side: that square, not ``H × W``, must fit the
    limit (a thin ``1x99999`` would otherwise build a 99999² image for every file). The one
    rule for every way a size arrives: ``--input-size``, ``data.image_size`` and the
    ``input_size`` in a weights file's metadata.
    """
    h, w = size
    side = max(h, w)
    if side * side > max_pixels:
        raise DataError(
            f"image_size {h}x{w} is too large: the longer side may be at most "
            f"{math.isqrt(max_pixels):,} (covering it, a square image has {side * side:,} "
            f"pixels per image, above the limit of {max_pixels:,})"
        )


def _statistics(images: torch.Tensor, mean, std, channels: int):
    if (mean is None) != (std is None):
        raise DataError(
            "give both mean and std, or neither (then they come from the training split)"
        )
    if mean is not None:
        return check_mean_std(mean, std, channels)
    return compute_mean_std(images)


def _load_builtin(name, val_split, seed, size, data_dir, download, mean, std) -> DataBundle:
    if name == "digits":
        images, labels, class_names = load_digits_arrays()
        fraction = val_split if val_split is not None else DIGITS_VAL_SPLIT
        split_seed = seed if val_split is not None else DIGITS_SPLIT_SEED
        train_idx, val_idx = stratified_split(labels.tolist(), fraction, seed=split_seed)
        train_x, train_y = images[train_idx], labels[train_idx]
        val_x, val_y = images[val_idx], labels[val_idx]
        default_augment = "digits"
    else:
        arrays = load_cifar(name, data_dir, download=download)
        class_names = arrays.class_names
        if val_split is None:
            train_x, train_y = arrays.train_images, arrays.train_labels
            val_x, val_y = arrays.test_images, arrays.test_labels
        else:
            train_idx, val_idx = stratified_split(
                arrays.train_labels.tolist(), val_split, seed=seed
            )
            train_x, train_y = arrays.train_images[train_idx], arrays.train_labels[train_idx]
            val_x, val_y = arrays.train_images[val_idx], arrays.train_labels[val_idx]
        default_augment = "standard"
    if size is not None:
        train_x, val_x = resize_uint8_batch(train_x, size), resize_uint8_batch(val_x, size)
    channels = train_x.shape[1]
    stats_mean, stats_std = _statistics(train_x, mean, std, channels)
    return DataBundle(
        source=name,
        storage="cached",
        class_names=list(class_names),
        in_channels=channels,
        image_size=tuple(train_x.shape[-2:]),
        mean=stats_mean,
        std=stats_std,
        train_labels=train_y,
        val_labels=val_y,
        train_images=train_x,
        val_images=val_x,
        default_augment=default_augment,
    )


def _load_folder(
    root: Path,
    val_root: Path | None,
    *,
    val_split,
    seed,
    size,
    cache_dir,
    on_bad_image,
    storage,
    memory_budget,
    mean,
    std,
    options,
    progress,
) -> DataBundle:
    train_index = scan_class_folders(root)
    val_index = scan_class_folders(val_root) if val_root is not None else None
    if val_index is not None:
        check_same_classes(train_index, val_index)
    chosen_size = size or choose_image_size(train_index.files)
    if chosen_size is None:
        raise DataError(f"none of the {len(train_index):,} image files in {root} could be read")
    total = len(train_index) + (len(val_index) if val_index is not None else 0)
    if storage == "auto":
        storage = (
            "cached"
            if total * 3 * chosen_size[0] * chosen_size[1] <= memory_budget
            else "streaming"
        )
    common = dict(
        source=str(root),
        class_names=list(train_index.class_names),
        in_channels=3,
        image_size=chosen_size,
        decode_options=options,
        on_bad_image=on_bad_image,
    )
    if storage == "streaming":
        return _streaming_bundle(train_index, val_index, val_split, seed, mean, std, common)

    skipped = SkippedImages()
    resized = 0

    def decode(index: FolderIndex, what: str):
        nonlocal resized
        decoded = decode_files(
            index.files,
            names=index.names,
            size=chosen_size,
            options=options,
            on_bad_image=on_bad_image,
            cache_dir=cache_dir,
            progress=progress,
            desc=f"decoding {what} images",
        )
        skipped.extend(decoded.skipped.errors)
        resized += decoded.resized
        labels = torch.tensor(index.labels, dtype=torch.int64)[decoded.kept]
        _check_classes_survive(index, labels, decoded.skipped)
        kept = decoded.kept.tolist()
        files = index.files  # a property that builds the whole list: read it once
        return (
            decoded.images,
            labels,
            [index.names[i] for i in kept],
            [files[i] for i in kept],
        )

    images, labels, keys, files = decode(train_index, "training" if val_index else "all")
    if val_index is not None:
        train_x, train_y, train_src = images, labels, files
        val_x, val_y, _, val_src = decode(val_index, "validation")
    else:
        train_idx, val_idx = stratified_split(labels.tolist(), val_split, seed=seed, keys=keys)
        train_x, train_y = images[train_idx], labels[train_idx]
        val_x, val_y = images[val_idx], labels[val_idx]
        train_src, val_src = [files[i] for i in train_idx], [files[i] for i in val_idx]
    warn_skipped(skipped, total)
    if resized and size is None:
        warnings.warn(
            f"{resized:,} of {total:,} images differ from the most common size "
            f"{chosen_size[0]}x{chosen_size[1]} and were resized to it (shorter side, then "
            "centre crop); pass image_size to choose the size",
            UserWarning,
            stacklevel=3,
        )
    stats_mean, stats_std = _statistics(train_x, mean, std, 3)
    return DataBundle(
        storage="cached",
        mean=stats_mean,
        std=stats_std,
        train_labels=train_y,
        val_labels=val_y,
        train_images=train_x,
        val_images=val_x,
        skipped=skipped,
        train_sources=[str(f) for f in train_src],
        val_sources=[str(f) for f in val_src],
        **common,
    )


def _check_classes_survive(
    index: FolderIndex, labels: torch.Tensor, skipped: SkippedImages
) -> None:
    present = set(labels.unique().tolist())
    lost = [name for label, name in enumerate(index.class_names) if label not in present]
    if lost:
        raise DataError(
            f"class folder(s) {', '.join(map(repr, lost))} in {index.root} contain no decodable "
            f"images ({skipped.summary()})"
        )


def _streaming_bundle(train_index, val_index, val_split, seed, mean, std, common) -> DataBundle:
    if val_index is None:
        train_idx, val_idx = stratified_split(
            train_index.labels, val_split, seed=seed, keys=train_index.names
        )
        train_index, val_index = train_index.subset(train_idx), train_index.subset(val_idx)
    if mean is None and std is None:
        mean, std = _sample_statistics(
            train_index.files, common["image_size"], common["decode_options"]
        )
    else:
        mean, std = _statistics(None, mean, std, 3)
    return DataBundle(
        storage="streaming",
        mean=mean,
        std=std,
        train_labels=torch.tensor(train_index.labels, dtype=torch.int64),
        val_labels=torch.tensor(val_index.labels, dtype=torch.int64),
        train_files=[Path(f) for f in train_index.files],
        val_files=[Path(f) for f in val_index.files],
        **common,
    )


def _sample_statistics(files, size, options):
    """Mean/std from up to ``STATS_SAMPLE`` evenly spaced training files (bad ones skipped),
    one image in memory at a time (a histogram per channel is all that is kept)."""
    step = max(1, len(files) // STATS_SAMPLE)
    histogram = ChannelHistogram()
    for file in files[::step][:STATS_SAMPLE]:
        try:
            histogram.add(decode_image(file, options, size=size))
        except BadImageError:
            continue
    if histogram.counts is None:
        raise DataError("no decodable training images to compute mean/std from")
    return histogram.mean_std()
