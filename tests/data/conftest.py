"""Synthetic images and a fake CIFAR archive in the official format, made on the fly.

Tests reach the helpers through the ``fakes`` fixture (the suite runs with
``--import-mode=importlib``, where a conftest cannot be imported by name)."""

from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

CIFAR10_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def save_image(path: Path, array: np.ndarray, **params) -> Path:
    """Save ``array`` ([H, W] or [H, W, C] uint8) with the format implied by the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path, **params)
    return path


def random_rgb(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw_rows: bytes) -> bytes:
    """A minimal PNG by hand, for formats Pillow will not write (16-bit RGB, huge headers)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw_rows))
        + chunk(b"IEND", b"")
    )


def make_class_folder(
    root: Path, counts: dict[str, int], size: tuple[int, int] = (8, 8), ext: str = ".png"
) -> Path:
    """``root/<class>/<i>.png`` with distinct random pixels per file."""
    seed = 0
    for name, count in counts.items():
        for i in range(count):
            seed += 1
            save_image(root / name / f"{i:03d}{ext}", random_rgb(*size, seed))
    return root


def write_fake_cifar(
    data_dir: Path, name: str = "cifar10", per_batch: int = 6, test_size: int = 5
) -> dict:
    """Write a tiny archive in the official python-pickle layout; return what was written."""
    rng = np.random.default_rng(0)
    written: dict = {"train_data": [], "train_labels": [], "test_data": None, "test_labels": None}

    def batch(count: int, num_classes: int, offset: int, label_key: str):
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = [(offset + i) % num_classes for i in range(count)]
        entry = {
            "batch_label": "fake batch",
            label_key: labels,
            "data": data,
            "filenames": [f"img_{offset + i}.png" for i in range(count)],
        }
        if label_key == "fine_labels":
            entry["coarse_labels"] = [label % 20 for label in labels]
        return entry

    def dump(path: Path, obj) -> None:
        with open(path, "wb") as handle:
            pickle.dump(obj, handle, protocol=2)

    if name == "cifar10":
        folder = data_dir / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for i in range(1, 6):
            entry = batch(per_batch, 10, (i - 1) * per_batch, "labels")
            dump(folder / f"data_batch_{i}", entry)
            written["train_data"].append(entry["data"])
            written["train_labels"].extend(entry["labels"])
        test = batch(test_size, 10, 3, "labels")
        dump(folder / "test_batch", test)
        dump(folder / "batches.meta", {"label_names": CIFAR10_NAMES, "num_vis": 3072})
        written["class_names"] = CIFAR10_NAMES
        written["test_labels"] = test["labels"]
    else:
        folder = data_dir / "cifar-100-python"
        folder.mkdir(parents=True)
        train = batch(per_batch * 5, 100, 0, "fine_labels")
        dump(folder / "train", train)
        test = batch(test_size, 100, 7, "fine_labels")
        dump(folder / "test", test)
        names = [f"class_{i:02d}" for i in range(100)]
        dump(folder / "meta", {"fine_label_names": names, "coarse_label_names": names[:20]})
        written["train_data"].append(train["data"])
        written["train_labels"].extend(train["fine_labels"])
        written["class_names"] = names
        written["test_labels"] = test["fine_labels"]
    written["train_data"] = np.concatenate(written["train_data"])
    written["folder"] = folder
    return written


@pytest.fixture
def fakes() -> SimpleNamespace:
    return SimpleNamespace(
        save_image=save_image,
        random_rgb=random_rgb,
        png_bytes=png_bytes,
        make_class_folder=make_class_folder,
        write_fake_cifar=write_fake_cifar,
        cifar10_names=CIFAR10_NAMES,
    )
