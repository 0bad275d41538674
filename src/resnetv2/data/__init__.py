"""Data layer: one decoding policy, class-folder and built-in datasets, cached and streaming
loaders, and batched augmentation. ``load_data`` is the entry point; see ``docs/data.md``."""

from resnetv2.data.augment import AUGMENTATIONS, augment_batch, check_augmentation
from resnetv2.data.badimages import ON_BAD_IMAGE, BadImageWarning, SkippedImages
from resnetv2.data.bundle import DataBundle
from resnetv2.data.cached import CacheWarning
from resnetv2.data.decode import (
    IMAGE_EXTENSIONS,
    BadImageError,
    DecodeOptions,
    decode_image,
)
from resnetv2.data.folders import FolderIndex, scan_class_folders
from resnetv2.data.load import (
    BUILTIN_DATASETS,
    DEFAULT_MEMORY_BUDGET,
    STORAGE_MODES,
    load_data,
)
from resnetv2.data.loaders import TensorBatchLoader
from resnetv2.data.preprocessing import Preprocessing, PreprocessingError
from resnetv2.data.split import stratified_split
from resnetv2.data.stats import compute_mean_std
from resnetv2.data.streaming import FileBatchLoader, FileImageDataset

__all__ = [
    "AUGMENTATIONS",
    "BUILTIN_DATASETS",
    "DEFAULT_MEMORY_BUDGET",
    "IMAGE_EXTENSIONS",
    "ON_BAD_IMAGE",
    "STORAGE_MODES",
    "BadImageError",
    "BadImageWarning",
    "CacheWarning",
    "DataBundle",
    "DecodeOptions",
    "FileBatchLoader",
    "FileImageDataset",
    "FolderIndex",
    "Preprocessing",
    "PreprocessingError",
    "SkippedImages",
    "TensorBatchLoader",
    "augment_batch",
    "check_augmentation",
    "compute_mean_std",
    "decode_image",
    "load_data",
    "scan_class_folders",
    "stratified_split",
]
