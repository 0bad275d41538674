"""Safetensors files with one JSON metadata document and an optional in-file checksum.

The safetensors header only stores ``str -> str`` metadata, so the project keeps one JSON
document under the header key :data:`METADATA_KEY`, with ``format_version`` and
``library_version`` added. Header validation is the safetensors library's own (it bounds the
header length before reading it and refuses overlapping, out-of-range or misaligned tensors);
its refusal is re-raised as :class:`~resnetv2.io.errors.CorruptWeightsError` naming the file.

A file that travels on its own (a model's weights) carries ``tensors_sha256``: sha256 over each
tensor's name, dtype, shape and bytes, in sorted name order. Checkpoint files are written
without it because their manifest already checksums every byte: one checksum per file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_bytes
from .errors import CorruptWeightsError

METADATA_KEY = "resnetv2"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FileDigest:
    """Size in bytes and sha256 (hex) of a file as written."""

    size: int
    sha256: str


@functools.lru_cache(maxsize=1)
def library_version() -> str:
    """The installed resnetv2 version, recorded in every file this package writes."""
    try:
        return getattr(sys.modules.get("resnetv2"), "__version__", None) or version("resnetv2")
    except PackageNotFoundError:
        return "unknown"


def _prepare(tensors: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """Fresh contiguous CPU copies: safetensors refuses views and tensors sharing memory."""
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(
                f"{name!r} has type {type(tensor).__name__}, not torch.Tensor{where}; "
                "only tensors can be stored in a weights file"
            )
    return {
        name: t.detach().resolve_conj().resolve_neg().to("cpu", copy=True).contiguous()
        for name, t in tensors.items()
    }


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in sorted name order."""
    hasher = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        hasher.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        if tensor.numel():
            hasher.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
    return hasher.hexdigest()


def write_safetensors(
    path: str | os.PathLike[str],
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None = None,
    *,
    checksum: bool = True,
) -> FileDigest:
    """Atomically write ``tensors`` plus JSON ``metadata``; return the file's size and sha256.

    ``checksum`` records ``tensors_sha256`` in the metadata (leave it on for any file that may
    be read without a manifest around it).
    """
    from safetensors.torch import save

    where = f" for {os.fspath(path)!r}"
    prepared = _prepare(tensors, where)
    document = {k: v for k, v in (metadata or {}).items() if k != "tensors_sha256"}
    document.update(format_version=FORMAT_VERSION, library_version=library_version())
    if checksum:
        document["tensors_sha256"] = tensors_sha256(prepared)
    try:
        text = json.dumps(document, sort_keys=True)
    except TypeError as exc:
        raise TypeError(f"metadata{where} must be JSON-serialisable: {exc}") from exc
    data = save(prepared, metadata={"format": "pt", METADATA_KEY: text})
    atomic_write_bytes(path, data)
    return FileDigest(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _corrupt(path: Path, problem: str) -> CorruptWeightsError:
    return CorruptWeightsError(
        f"{str(path)!r} is not a valid safetensors file ({problem}). It is damaged, truncated "
        "or was not written completely; re-download or re-export it (a checkpoint folder falls "
        "back to an older checkpoint)"
    )


def _open_metadata(path: Path) -> dict[str, str]:
    """The header's ``str -> str`` metadata, after the library has validated the header."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, "pt") as handle:
            return handle.metadata() or {}
    except SafetensorError as exc:
        raise _corrupt(path, str(exc).removeprefix("Error while deserializing header: ")) from None


def _document(path: Path, raw: dict[str, str]) -> dict[str, Any]:
    if METADATA_KEY not in raw:  # a file from another library: its own metadata is all there is
        return dict(raw)
    try:
        document = json.loads(raw[METADATA_KEY])
    except ValueError as exc:
        raise _corrupt(path, f"the {METADATA_KEY!r} metadata is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _corrupt(path, f"the {METADATA_KEY!r} metadata is not a JSON object")
    return document


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the JSON metadata of a safetensors file, reading only its validated header."""
    return _document(Path(path), _open_metadata(Path(path)))


def read_safetensors(
    path: str | os.PathLike[str], *, verify: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(tensors, metadata)`` from a safetensors file onto the CPU.

    With ``verify`` (the default) a recorded ``tensors_sha256`` is recomputed and a mismatch
    raises :class:`CorruptWeightsError`. Files from other libraries carry no checksum; their
    header metadata (``str -> str``) is returned as is.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file_path = Path(path)
    raw = _open_metadata(file_path)
    metadata = _document(file_path, raw)
    try:
        tensors = load_file(file_path, device="cpu")
    except SafetensorError as exc:
        raise _corrupt(file_path, str(exc)) from None
    expected = metadata.get("tensors_sha256") if METADATA_KEY in raw else None
    if verify and expected is not None and (actual := tensors_sha256(tensors)) != expected:
        raise CorruptWeightsError(
            f"{str(file_path)!r} fails its checksum (recorded tensors_sha256 {expected}, "
            f"computed {actual}): the tensor data was altered or damaged after it was "
            "written. Restore the file from a backup or re-export it"
        )
    return tensors, metadata
