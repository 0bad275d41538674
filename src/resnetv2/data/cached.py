"""Decode a list of image files once into one uint8 ``[N, 3, H, W]`` tensor, with a disk cache.

Small datasets (CIFAR-sized) train fastest when every image is decoded once and batches are
cut from memory. The decoded tensor can be saved as a safetensors file keyed by a hash of
the file list, every file's size and modification time, the target size, the decoding
options and the Pillow version, so any change to the data or the policy invalidates it.
Nothing on this path unpickles.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import PIL
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from resnetv2 import jsontext
from resnetv2.data.badimages import SkippedImages, check_on_bad_image
from resnetv2.data.decode import BadImageError, DecodeOptions, decode_image, probe_image_size
from resnetv2.errors import DataError

CACHE_FORMAT = "resnetv2-decoded-images/1"
CACHE_DIR_ENV = "RESNETV2_CACHE_DIR"
"""Environment variable naming the cache folder (overrides the XDG default)."""

CACHE_SIZE_ENV = "RESNETV2_CACHE_MAX_GB"
"""Environment variable setting the cache's size cap in GiB (default :data:`DEFAULT_MAX_BYTES`)."""

DEFAULT_MAX_BYTES = 20 * 1024**3
"""Size cap of the decoded-image cache (20 GiB); the least recently used files go first."""


def default_cache_dir() -> Path:
    """Where decoded images are cached: ``$RESNETV2_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/resnetv2/images``, else ``~/.cache/resnetv2/images``.

    Never inside the data folder: users' folders are read, never written (a read-only or
    shared dataset must work, and a listing of it must not change because it was trained on).
    """
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "resnetv2" / "images"


def cache_size_cap() -> int:
    """The cache's size cap in bytes (``$RESNETV2_CACHE_MAX_GB``, default 20 GiB)."""
    text = os.environ.get(CACHE_SIZE_ENV)
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e9:
        raise DataError(f"{CACHE_SIZE_ENV} must be a size in GiB (e.g. 20), got {text[:40]!r}")
    return int(value * 1024**3)


def evict_oldest(folder: Path, max_bytes: int, *, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used cache files of ``folder`` until the rest fit
    ``max_bytes`` (``keep``, the file just written, goes last); return what was deleted.

    Only files this tool wrote count: named ``images-<24 hex digits>.safetensors`` *and*
    carrying the cache's format and a key that matches the name in their header. ``--cache-dir``
    may name a folder of the user's (holding, say, ``images-classifier-v1.safetensors``);
    nothing else in it is ever deleted.
    """
    entries = []
    for path in Path(folder).glob("images-*.safetensors"):
        if not is_cache_file(path):
            continue
        try:
            info = path.stat()
        except OSError:
            continue
        entries.append((path == keep, info.st_mtime_ns, info.st_size, path))
    entries.sort(key=lambda e: (e[0], e[1]))
    total = sum(e[2] for e in entries)
    removed = []
    for _, _, size, path in entries:
        if total <= max_bytes:
            break
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
            total -= size
    return removed


def is_cache_file(path: Path) -> bool:
    """Whether ``path`` is a decoded-image cache file this tool wrote (name and header)."""
    match = _CACHE_NAME.fullmatch(path.name)
    if match is None:
        return False
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception:  # unreadable: not provably ours, so not ours to delete
        return False
    key = metadata.get("key")
    return (
        metadata.get("format") == CACHE_FORMAT
        and isinstance(key, str)
        and key.startswith(match.group(1))
    )


_CACHE_NAME = re.compile(r"images-([0-9a-f]{24})\.safetensors")

SIZE_PROBE_SAMPLE = 256


class CacheWarning(UserWarning):
    """The on-disk cache could not be read or written; data is decoded without it."""


@dataclass
class DecodedImages:
    """The result of decoding a file list: kept images, their indices, what was skipped."""

    images: torch.Tensor
    kept: torch.Tensor
    skipped: SkippedImages
    resized: int
    from_cache: bool


def choose_image_size(files: Sequence[str | os.PathLike]) -> tuple[int, int] | None:
    """The most common ``(H, W)`` among up to 256 evenly spaced files (headers only).

    Used when no ``image_size`` is given; ties go to the size met first. ``None`` when no
    header could be read.
    """
    if not files:
        return None
    step = max(1, len(files) // SIZE_PROBE_SAMPLE)
    sizes = Counter(
        size
        for size in (probe_image_size(files[i]) for i in range(0, len(files), step))
        if size is not None
    )
    return sizes.most_common(1)[0][0] if sizes else None


def cache_key(
    files: Sequence[str | os.PathLike],
    names: Sequence[str],
    size: tuple[int, int],
    options: DecodeOptions,
) -> str:
    """Hash of everything that determines the decoded tensor: each file's name (relative to
    the data root, so a moved dataset keeps its cache), size and modification time, the
    target size, the decoding options and the Pillow version."""
    digest = hashlib.sha256()
    digest.update(f"{CACHE_FORMAT}\n{PIL.__version__}\n{size}\n{options.token()}\n".encode())
    for file, name in zip(files, names, strict=True):
        try:
            stat = os.stat(file)
            signature = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            signature = "missing"
        digest.update(f"{name}\0{signature}\n".encode())
    return digest.hexdigest()


def default_cache_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"images-{key[:24]}.safetensors"


def decode_files(
    files: Sequence[str | os.PathLike],
    *,
    size: tuple[int, int],
    names: Sequence[str] | None = None,
    options: DecodeOptions | None = None,
    on_bad_image: str = "skip",
    cache_dir: Path | None = None,
    progress: bool = True,
    desc: str = "decoding images",
) -> DecodedImages:
    """Decode ``files`` to ``[K, 3, H, W]`` uint8 (K = files the policy accepted).

    ``names`` are the files' stable names for the cache key (default: the paths themselves).
    With ``cache_dir`` a matching cache file is loaded instead of decoding, and a new one is
    written after decoding. ``on_bad_image='error'`` raises the first :class:`BadImageError`
    (also when the cache records one); ``'skip'`` leaves bad files out and lists them in
    ``skipped`` (the caller warns once).
    """
    check_on_bad_image(on_bad_image)
    options = options or DecodeOptions()
    names = [os.fspath(f) for f in files] if names is None else names
    key = cache_key(files, names, size, options) if cache_dir is not None else None
    if cache_dir is not None:
        cached = _load_cache(default_cache_path(cache_dir, key), key, files)
        if cached is not None:
            if on_bad_image == "error" and cached.skipped:
                raise cached.skipped.errors[0]
            return cached

    images = torch.empty((len(files), 3, *size), dtype=torch.uint8)
    kept: list[int] = []
    errors: list[BadImageError] = []
    resized = 0
    for index, file in enumerate(
        tqdm(files, desc=desc, unit="img", disable=None if progress else True)
    ):
        info: dict = {}
        try:
            image = decode_image(file, options, size=size, info=info)
        except BadImageError as error:
            if on_bad_image == "error":
                raise
            errors.append(error)
            continue
        resized += tuple(info["size"]) != tuple(size)
        images[len(kept)] = image
        kept.append(index)
    # A copy (not a view) so the rows reserved for skipped files are freed.
    images = images[: len(kept)].clone() if len(kept) < len(files) else images
    result = DecodedImages(
        images, torch.tensor(kept, dtype=torch.int64), SkippedImages(errors), resized, False
    )
    if cache_dir is not None:
        _save_cache(default_cache_path(cache_dir, key), key, files, result)
    return result


def _load_cache(path: Path, key: str, files: Sequence) -> DecodedImages | None:
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != CACHE_FORMAT or metadata.get("key") != key:
                return None
            images = handle.get_tensor("images")
            kept = handle.get_tensor("kept")
        if images.dtype != torch.uint8 or images.ndim != 4 or kept.shape != (images.shape[0],):
            raise DataError("tensor shapes do not match the cache format")
        if metadata.get("sha256") != _tensors_sha256(images, kept):
            raise DataError("its checksum does not match (damaged, or written by an older version)")
        entries = jsontext.loads(metadata["skipped"])
        _check_indices(kept, [entry[0] for entry in entries], len(files))
        skipped = [BadImageError(files[index], reason, kind) for index, kind, reason in entries]
        resized = int(metadata["resized"])
    except Exception as exc:  # any unreadable cache is rebuilt, never trusted
        warnings.warn(
            f"ignoring unreadable data cache {path} ({exc}); decoding again",
            CacheWarning,
            stacklevel=3,
        )
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: eviction takes the least recently used first
    return DecodedImages(images, kept, SkippedImages(skipped), resized, True)


def _tensors_sha256(images: torch.Tensor, kept: torch.Tensor) -> str:
    """sha256 of the cached pixels and indices: a cache file edited or damaged in place (its
    header intact) must not train silently on other pixels."""
    digest = hashlib.sha256()
    for tensor in (images, kept):
        if tensor.numel():
            digest.update(memoryview(tensor.contiguous().reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


def _check_indices(kept: torch.Tensor, skipped: list, count: int) -> None:
    """Kept and skipped file indices must be distinct positions in the file list."""
    if kept.dtype != torch.int64:
        raise DataError(f"kept indices are {kept.dtype}, not int64")
    if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= count):
        raise DataError(f"kept indices outside 0..{count - 1}")
    if kept.numel() > 1 and not bool((kept[1:] > kept[:-1]).all()):
        raise DataError("kept indices are not increasing")
    if any(type(i) is not int or not 0 <= i < count for i in skipped):
        raise DataError(f"skipped indices outside 0..{count - 1}")
    if len(set(skipped) | set(kept.tolist())) != len(skipped) + kept.numel():
        raise DataError("a file is both kept and skipped")


def _save_cache(path: Path, key: str, files: Sequence, decoded: DecodedImages) -> None:
    index_of = {os.fspath(file): index for index, file in enumerate(files)}
    metadata = {
        "format": CACHE_FORMAT,
        "key": key,
        "sha256": _tensors_sha256(decoded.images, decoded.kept),
        "resized": str(decoded.resized),
        "skipped": json.dumps(
            [[index_of[e.path], e.kind, e.reason] for e in decoded.skipped.errors],
            ensure_ascii=False,
        ),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {"images": decoded.images.contiguous(), "kept": decoded.kept},
            str(temporary),
            metadata=metadata,
        )
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        # safetensors creates the file private (0600); a cache is as readable as its data.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        # Readers see either the old cache or the complete new one, never a partial file.
        os.replace(temporary, path)
        evict_oldest(path.parent, cache_size_cap(), keep=path)
    except Exception as exc:  # the cache is an optimisation: any failure only costs time
        warnings.warn(
            f"could not write the data cache {path} ({exc}); continuing without it",
            CacheWarning,
            stacklevel=3,
        )
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
