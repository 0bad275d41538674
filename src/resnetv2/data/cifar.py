"""CIFAR-10 / CIFAR-100 (Krizhevsky, 2009) from the official "python version" archives.

The batch files are Python pickles. Rather than ``torchvision.datasets.CIFAR10`` (which calls
``pickle.load`` unrestricted and insists on the published md5 of every batch), they are read
with an unpickler that can only rebuild what the official format holds — dicts, lists,
strings, ints and NumPy uint8 arrays — so a tampered file cannot run code (promise 2 of
docs/reliability.md). Integrity is checked structurally (shapes, dtypes, label ranges, class
count) instead of by md5, which also lets tests use a tiny archive in the real format.
Downloading (only when asked) goes through torchvision's downloader, which verifies the
archive's published md5.
"""

from __future__ import annotations

import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from resnetv2.errors import DataError

DEFAULT_DATA_DIR = Path.home() / ".cache" / "resnetv2" / "datasets"
"""Where CIFAR archives are looked for (and downloaded to) when no ``data_dir`` is given."""


#: Per variant: the torchvision dataset class whose attributes give the file layout, URL and
#: archive md5; the key of the labels in a batch; the number of classes.
_VARIANTS = {"cifar10": ("CIFAR10", "labels", 10), "cifar100": ("CIFAR100", "fine_labels", 100)}
CIFAR_VARIANTS = tuple(_VARIANTS)


def _layout(name: str) -> type:
    """torchvision's dataset class for ``name`` (imported only when CIFAR is used)."""
    import torchvision.datasets

    return getattr(torchvision.datasets, _VARIANTS[name][0])


class CifarFormatError(DataError):
    """A CIFAR batch file that is not in the official format."""


def _numpy_reconstruct():
    # The function numpy pickles arrays with, obtained without importing the deprecated
    # ``numpy.core`` alias that Python-2-era CIFAR files name.
    return np.ndarray((0,), np.uint8).__reduce__()[0]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    """Resolves only the globals that NumPy arrays in the official files need."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1_encode,
    }

    def find_class(self, module: str, name: str):
        factory = self._ALLOWED.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: not part of the CIFAR batch format"
            )
        return factory()


def read_cifar_pickle(path: str | os.PathLike) -> dict:
    """Read one official CIFAR pickle (batch or meta file) without executing arbitrary code."""
    try:
        with open(path, "rb") as handle:
            loaded = _CifarUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise CifarFormatError(f"{path}: not a valid CIFAR pickle ({exc})") from exc
    if not isinstance(loaded, dict):
        raise CifarFormatError(f"{path}: expected a dict, found {type(loaded).__name__}")
    return {key.decode("latin1") if isinstance(key, bytes) else key: v for key, v in loaded.items()}


def _read_batch(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    _, label_key, num_classes = _VARIANTS[name]
    batch = read_cifar_pickle(path)
    data, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise CifarFormatError(f"{path}: 'data' must be a uint8 array of shape [N, 3072]")
    if data.shape[1] != 3 * 32 * 32:
        raise CifarFormatError(f"{path}: 'data' rows have {data.shape[1]} values, not 3072")
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != data.shape[0]:
        raise CifarFormatError(f"{path}: {label_key!r} must list one label per image")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise CifarFormatError(
            f"{path}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def find_cifar_folder(layout: type, data_dir: Path) -> Path | None:
    """The extracted batch folder: ``data_dir/<base_folder>`` or ``data_dir`` itself."""
    for candidate in (data_dir / layout.base_folder, data_dir):
        if (candidate / layout.meta["filename"]).is_file():
            return candidate
    return None


def _missing_message(name: str, layout: type, data_dir: Path, extra: str = "") -> str:
    return (
        f"{name} not found in {data_dir}{extra}. Pass --data-dir DIR (data_dir=DIR) where "
        f"DIR contains {layout.base_folder}/ (the extracted {layout.filename} from "
        f"{layout.url}), or allow a download with --download (download=True)."
    )


def _extract_local_archive(archive: Path, data_dir: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        # The "data" filter refuses absolute paths, links out of the folder and device files.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(data_dir, filter="data")
        else:  # pragma: no cover - Python without PEP 706
            tar.extractall(data_dir)


def locate_cifar(name: str, data_dir: str | os.PathLike | None, download: bool) -> Path:
    """Find (or, with ``download=True``, fetch) the batch folder of ``name``."""
    layout = _layout(name)
    data_dir = Path(data_dir).expanduser() if data_dir is not None else DEFAULT_DATA_DIR
    folder = find_cifar_folder(layout, data_dir)
    if folder is not None:
        return folder
    archive = data_dir / layout.filename
    if archive.is_file():
        _extract_local_archive(archive, data_dir)
    elif download:
        from torchvision.datasets.utils import download_and_extract_archive

        try:
            download_and_extract_archive(
                layout.url, str(data_dir), filename=layout.filename, md5=layout.tgz_md5
            )
        except Exception as exc:  # network and checksum failures alike
            raise RuntimeError(
                _missing_message(name, layout, data_dir, f" and downloading it failed ({exc})")
            ) from exc
    folder = find_cifar_folder(layout, data_dir)
    if folder is None:
        raise FileNotFoundError(_missing_message(name, layout, data_dir))
    return folder


@dataclass(frozen=True)
class CifarArrays:
    """CIFAR in memory: uint8 ``[N, 3, 32, 32]`` images and int64 labels per split."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: list[str]


def load_cifar(
    name: str, data_dir: str | os.PathLike | None = None, *, download: bool = False
) -> CifarArrays:
    """Load ``cifar10`` or ``cifar100`` (official train and test splits)."""
    if name not in CIFAR_VARIANTS:
        raise DataError(f"unknown CIFAR variant {name!r}; valid: {', '.join(CIFAR_VARIANTS)}")
    layout = _layout(name)
    folder = locate_cifar(name, data_dir, download)

    def read_split(files: list) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [], []
        for file, _md5 in files:
            path = folder / file
            if not path.is_file():
                raise FileNotFoundError(f"{name}: batch file {path} is missing")
            batch_images, batch_labels = _read_batch(path, name)
            images.append(batch_images)
            labels.append(batch_labels)
        return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))

    train_images, train_labels = read_split(layout.train_list)
    test_images, test_labels = read_split(layout.test_list)
    meta_file, meta_key = layout.meta["filename"], layout.meta["key"]
    num_classes = _VARIANTS[name][2]
    meta = read_cifar_pickle(folder / meta_file)
    names = meta.get(meta_key)
    if not isinstance(names, list) or len(names) != num_classes:
        raise CifarFormatError(f"{folder / meta_file}: {meta_key!r} must list {num_classes} names")
    class_names = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]
    return CifarArrays(train_images, train_labels, test_images, test_labels, class_names)
