"""The export cache: one checked ONNX file per set of weights, in the user's cache folder.

Exporting a ResNet to ONNX takes seconds (≈10 s for a CIFAR ResNet-56 on a busy 2-core VM),
far more than predicting a few files, so it is done once per set of weights and reused.

- **Where:** ``$RESNETV2_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/resnetv2``, else
  ``~/.cache/resnetv2`` (the XDG convention), in an ``onnx/`` sub-folder — never beside the
  user's weights, which may be read-only, shared or under version control.
- **Key:** the weights' checksum (:func:`resnetv2.io.weights.tensors_sha256` of the
  model's state dict — the same hash a weights file records) together with the spec, the
  input shape, the opset and :data:`CACHE_FORMAT`. Changed weights give a new key, so a
  stale export is never found; entries beyond :data:`MAX_ENTRIES` are removed, least
  recently used first.
- **Trust:** each ``KEY.onnx`` has a ``KEY.json`` recording the file's own sha256. An entry
  whose record is missing, unreadable, for another key, or whose file no longer matches its
  sha256 (truncated, overwritten, half-copied) is deleted and exported again, never used.
- **Writing:** the export is :func:`resnetv2.export.export_onnx` (ONNX checker plus an
  onnxruntime parity check against eager outputs), written atomically; the record is
  written after the file, so a crash in between leaves an entry that fails the check. A lock
  file per key keeps two processes from exporting the same weights at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnetv2 import jsontext
from resnetv2.errors import ResNetV2Error

if TYPE_CHECKING:
    from torch import nn

CACHE_ENV = "RESNETV2_CACHE_DIR"
CACHE_FORMAT = 1
MAX_ENTRIES = 32
KEY_PATTERN = re.compile(r"[0-9a-f]{40}")
"""What :func:`cache_key` gives: the only names :func:`prune` may delete."""
MAX_RECORD_BYTES = 64 * 1024
LOCK_TIMEOUT_S = 900
log = logging.getLogger("resnetv2.inference")


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder cached exports live in (``cache_dir`` overrides the environment)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base).expanduser() / "resnetv2"


def weights_checksum(model: nn.Module) -> str:
    """sha256 of the model's tensors (state dict): equal weights, equal checksum."""
    from resnetv2.io.weights import tensors_sha256

    return tensors_sha256(model.state_dict())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One cached export: ``<folder>/<key>.onnx`` and its record ``<key>.json``."""

    folder: Path
    key: str

    @property
    def onnx(self) -> Path:
        return self.folder / f"{self.key}.onnx"

    @property
    def record(self) -> Path:
        return self.folder / f"{self.key}.json"

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.key}.lock"

    def read_record(self) -> dict[str, Any] | None:
        """The entry's record when it is one this tool wrote for this key, else ``None``."""
        if not KEY_PATTERN.fullmatch(self.key):
            return None
        try:
            if self.record.stat().st_size > MAX_RECORD_BYTES:
                return None
            record = jsontext.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ours = isinstance(record, dict) and record.get("key") == self.key
        return record if ours and record.get("format") == CACHE_FORMAT else None

    def is_valid(self) -> bool:
        """True only when the record is ours, for this key, and the file matches its sha256."""
        record = self.read_record()
        try:
            return record is not None and file_sha256(self.onnx) == record.get("onnx_sha256")
        except OSError:
            return False

    def remove(self) -> None:
        for path in (self.record, self.onnx):  # the record first: no valid-looking half
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def cache_key(model: nn.Module, checksum: str, input_shape: tuple[int, ...], opset: int) -> str:
    """What the exported graph depends on: weights, architecture, input shape, opset."""
    spec = json.dumps(model.spec.to_dict(), sort_keys=True)
    parts = [f"format={CACHE_FORMAT}", checksum, spec, repr(tuple(input_shape))]
    parts.append(f"opset={opset}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]


def cached_onnx(
    model: nn.Module,
    *,
    input_shape: tuple[int, int, int] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """The path of a checked ONNX export of ``model``, exporting it first if needed.

    ``model`` must be on the CPU and in eval mode. Raises :class:`ResNetV2Error` when the
    cache folder cannot be created or written, and
    :class:`resnetv2.export.ExportError` when the export fails its parity check.
    """
    from filelock import FileLock, Timeout

    from resnetv2.export import DEFAULT_OPSET, default_input_shape

    shape = tuple(input_shape or default_input_shape(model))
    folder = cache_root(cache_dir) / "onnx"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResNetV2Error(
            f"cannot create the export cache {folder} ({exc.strerror or exc}); set "
            f"{CACHE_ENV} to a writable folder or use --engine torch"
        ) from None
    checksum = weights_checksum(model)
    entry = CacheEntry(folder, cache_key(model, checksum, shape, DEFAULT_OPSET))
    lock = FileLock(str(entry.lock))
    try:
        _acquire(lock, entry)
    except Timeout:
        raise ResNetV2Error(
            f"another process has held {entry.lock} for {LOCK_TIMEOUT_S} s; remove it if "
            "no resnetv2 process is exporting"
        ) from None
    try:
        if entry.is_valid():
            os.utime(entry.onnx)  # most recently used: kept longest by prune()
            return entry.onnx
        if entry.record.exists() or entry.onnx.exists():
            log.info("cached export %s fails its checksum; exporting again", entry.onnx)
        entry.remove()
        _export(model, entry, shape, DEFAULT_OPSET, checksum)
    finally:
        lock.release()
    prune(folder, keep=MAX_ENTRIES)
    return entry.onnx


def _acquire(lock, entry: CacheEntry) -> None:
    """Take the entry's lock; when another process holds it, say so before waiting (up to
    :data:`LOCK_TIMEOUT_S`), so a stalled holder never looks like a silent hang."""
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info(
            "waiting up to %d s for another process exporting these weights to ONNX (it holds "
            "%s); --engine torch needs no export",
            LOCK_TIMEOUT_S,
            entry.lock,
        )
        lock.acquire(timeout=LOCK_TIMEOUT_S)


def _export(
    model: nn.Module, entry: CacheEntry, shape: tuple[int, ...], opset: int, checksum: str
) -> None:
    import torch

    from resnetv2.export import export_onnx
    from resnetv2.io import atomic_write_text

    log.info("exporting these weights to ONNX once for onnxruntime → %s", entry.onnx)
    # The exporter chats on stdout and warns about internals; stdout may be the CSV output.
    # The predictor makes its runner inside inference_mode; tracing wants ordinary tensors.
    with (
        contextlib.redirect_stdout(sys.stderr),
        warnings.catch_warnings(),
        torch.inference_mode(False),
    ):
        warnings.simplefilter("ignore")
        export_onnx(model, entry.onnx, input_shape=shape, dynamic_batch=True, opset=opset)
    record: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "key": entry.key,
        "weights_sha256": checksum,
        "onnx_sha256": file_sha256(entry.onnx),
        "input_shape": list(shape),
        "opset": opset,
        "torch": torch.__version__,
    }
    atomic_write_text(entry.record, json.dumps(record, indent=2) + "\n")


def prune(folder: Path, keep: int = MAX_ENTRIES) -> list[Path]:
    """Remove all but the ``keep`` most recently used exports; returns what was removed.

    Only entries this tool wrote are counted and removed: a ``KEY.onnx`` whose ``KEY.json``
    is our record for that key. ``$RESNETV2_CACHE_DIR`` may name a folder that also holds
    the user's own ``.onnx`` files; those are never touched (a half-written entry of ours,
    without its record, is replaced when its weights are next exported).
    """
    ours = [p for p in folder.glob("*.onnx") if CacheEntry(folder, p.stem).read_record()]
    exports = sorted(ours, key=_mtime, reverse=True)
    removed = []
    for path in exports[keep:]:
        CacheEntry(folder, path.stem).remove()  # its empty lock file stays: another process
        removed.append(path)  # may hold it, and a new lock file would not exclude that one
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
