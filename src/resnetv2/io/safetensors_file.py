"""Validated, checksummed safetensors files with a JSON metadata block.

The safetensors header only stores ``str -> str`` metadata, so the project keeps one JSON
document under the header key :data:`METADATA_KEY`. Writing adds ``format_version``,
``library_version`` and ``tensors_sha256`` to it; reading validates the header *before*
handing the file to the safetensors library (bounded memory: the 8-byte header length is
checked against the file size and a hard cap, so a hostile length never causes a huge read)
and then verifies the checksum.

``tensors_sha256`` hashes, in sorted name order, each tensor's name, dtype, shape and raw
bytes. It is independent of the header layout, so it also catches a file whose bytes were
rewritten consistently but whose tensors changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_bytes
from .errors import CorruptWeightsError

__all__ = [
    "FORMAT_VERSION",
    "METADATA_KEY",
    "FileDigest",
    "encode_safetensors",
    "library_version",
    "read_safetensors",
    "read_safetensors_metadata",
    "tensors_sha256",
    "validate_safetensors_header",
    "write_safetensors",
]

METADATA_KEY = "resnetv2"
FORMAT_VERSION = 1
RESERVED_KEYS = ("format_version", "library_version", "tensors_sha256")
# The safetensors reference implementation refuses headers above 100 MB; so do we, before
# allocating anything.
MAX_HEADER_BYTES = 100_000_000

_ITEMSIZE = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E4M3FNUZ": 1,
    "F8_E5M2": 1,
    "F8_E5M2FNUZ": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    "C64": 8,
}


@dataclass(frozen=True)
class FileDigest:
    """Size in bytes and sha256 (hex) of a file as written."""

    size: int
    sha256: str


@functools.lru_cache(maxsize=1)
def library_version() -> str:
    """The installed resnetv2 version, recorded in every file this package writes."""
    package = sys.modules.get("resnetv2")
    version = getattr(package, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        return dist_version("resnetv2")
    except PackageNotFoundError:
        return "unknown"


def _prepare(tensors: dict[str, torch.Tensor], path: str | os.PathLike[str] | None) -> dict:
    """Detached, contiguous CPU tensors that safetensors will accept (no shared storage)."""
    prepared: dict[str, torch.Tensor] = {}
    seen_storage: set[tuple[int, int]] = set()
    where = f" for {os.fspath(path)!r}" if path is not None else ""
    for name, tensor in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {name!r}{where}")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(
                f"{name!r} has type {type(tensor).__name__}, not torch.Tensor{where}; "
                "only tensors can be stored in a weights file"
            )
        if tensor.layout != torch.strided or tensor.is_quantized:
            raise TypeError(f"{name!r} has an unsupported layout ({tensor.layout}){where}")
        t = tensor.detach().resolve_conj().resolve_neg()
        if t.device.type != "cpu":
            t = t.cpu()
        t = t.contiguous()
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        # safetensors refuses tensors that share memory (tied weights, views); store copies.
        if storage.nbytes() and key in seen_storage:
            t = t.clone()
        else:
            seen_storage.add(key)
        prepared[name] = t
    return prepared


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in sorted name order."""
    hasher = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()
        tensor = tensor.contiguous()
        hasher.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        raw = tensor.reshape(-1).view(torch.uint8)
        if raw.numel():
            hasher.update(memoryview(raw.numpy()))
    return hasher.hexdigest()


def encode_safetensors(
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> bytes:
    """Serialise ``tensors`` plus JSON ``metadata`` (with the reserved fields) to bytes."""
    from safetensors.torch import save as safetensors_save

    prepared = _prepare(tensors, path)
    document = dict(metadata or {})
    document.update(
        format_version=FORMAT_VERSION,
        library_version=library_version(),
        tensors_sha256=tensors_sha256(prepared),
    )
    try:
        text = json.dumps(document, sort_keys=True)
    except TypeError as exc:
        where = f" for {os.fspath(path)!r}" if path is not None else ""
        raise TypeError(f"metadata{where} must be JSON-serialisable: {exc}") from exc
    return safetensors_save(prepared, metadata={"format": "pt", METADATA_KEY: text})


def write_safetensors(
    path: str | os.PathLike[str],
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None = None,
) -> FileDigest:
    """Atomically write a safetensors file; return the size and sha256 of its bytes."""
    data = encode_safetensors(tensors, metadata, path=path)
    atomic_write_bytes(path, data)
    return FileDigest(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _corrupt(path: Path, problem: str) -> CorruptWeightsError:
    return CorruptWeightsError(
        f"{str(path)!r} is not a valid safetensors file: {problem}. The file is damaged or "
        "was not written completely; re-download or re-export it (a checkpoint folder falls "
        "back to an older checkpoint)"
    )


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in the header")
        result[key] = value
    return result


def _is_nonneg_int(value: Any) -> bool:
    return type(value) is int and value >= 0


def validate_safetensors_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a safetensors header without trusting it; return the parsed header.

    Checks: the declared header length fits both the file and :data:`MAX_HEADER_BYTES`; the
    header is a UTF-8 JSON object without duplicate keys; every tensor has a known dtype, a
    shape of non-negative ints and ``data_offsets`` whose length matches dtype and shape; the
    tensors tile the data section exactly (no overlap, no gap, nothing past the end).
    Raises :class:`CorruptWeightsError` on the first problem.
    """
    file_path = Path(path)
    file_size = file_path.stat().st_size
    if file_size < 8:
        raise _corrupt(file_path, f"it is only {file_size} bytes long")
    with open(file_path, "rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        if header_len > file_size - 8:
            raise _corrupt(
                file_path,
                f"the header claims {header_len} bytes but the file has only {file_size - 8} "
                "after the length field (truncated file or garbage)",
            )
        if header_len > MAX_HEADER_BYTES:
            raise _corrupt(file_path, f"the header length {header_len} exceeds the 100 MB limit")
        raw_header = handle.read(header_len)
    try:
        header = json.loads(raw_header.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(file_path, f"the header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _corrupt(file_path, "the header is not a JSON object")

    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _corrupt(file_path, "__metadata__ is not a str -> str mapping")

    data_len = file_size - 8 - header_len
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise _corrupt(file_path, f"the entry for {name!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _ITEMSIZE:
            raise _corrupt(file_path, f"{name!r} has unknown or unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_nonneg_int(d) for d in shape):
            raise _corrupt(file_path, f"{name!r} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_nonneg_int(o) for o in offsets)
            or offsets[0] > offsets[1]
        ):
            raise _corrupt(file_path, f"{name!r} has invalid data_offsets {offsets!r}")
        start, end = offsets
        if end > data_len:
            raise _corrupt(
                file_path,
                f"{name!r} ends at byte {end} but the data section has only {data_len} bytes "
                "(truncated file or out-of-range offsets)",
            )
        expected = math.prod(shape) * _ITEMSIZE[dtype]
        if end - start != expected:
            raise _corrupt(
                file_path,
                f"{name!r} spans {end - start} bytes but dtype {dtype} and shape {shape} "
                f"need {expected}",
            )
        spans.append((start, end, name))

    position = 0
    previous = None
    for start, end, name in sorted(spans):
        if start < position:
            raise _corrupt(file_path, f"the data of {name!r} overlaps that of {previous!r}")
        if start > position:
            raise _corrupt(file_path, f"there is an unused gap before the data of {name!r}")
        position, previous = end, name
    if position != data_len:
        raise _corrupt(
            file_path, f"{data_len - position} trailing bytes after the last tensor's data"
        )
    return header


def _metadata_document(path: Path, raw: dict[str, str]) -> dict[str, Any]:
    text = raw.get(METADATA_KEY)
    if text is None:
        # A safetensors file from another library: its own str -> str metadata is all we have.
        return dict(raw)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _corrupt(path, f"the {METADATA_KEY!r} metadata is not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise _corrupt(path, f"the {METADATA_KEY!r} metadata is not a JSON object")
    return document


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the JSON metadata of a safetensors file, reading only its validated header."""
    file_path = Path(path)
    header = validate_safetensors_header(file_path)
    return _metadata_document(file_path, header.get("__metadata__", {}))


def read_safetensors(
    path: str | os.PathLike[str], *, verify: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(tensors, metadata)`` from a validated safetensors file on the CPU.

    With ``verify`` (the default) a recorded ``tensors_sha256`` is recomputed and a mismatch
    raises :class:`CorruptWeightsError`. Files from other libraries have no checksum; their
    header metadata (``str -> str``) is returned as is.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file_path = Path(path)
    header = validate_safetensors_header(file_path)
    metadata = _metadata_document(file_path, header.get("__metadata__", {}))
    try:
        tensors = load_file(file_path, device="cpu")
    except SafetensorError as exc:
        raise _corrupt(file_path, f"safetensors could not read it ({exc})") from exc
    ours = METADATA_KEY in header.get("__metadata__", {})
    expected = metadata.get("tensors_sha256") if ours else None
    if verify and expected is not None:
        actual = tensors_sha256(tensors)
        if actual != expected:
            raise CorruptWeightsError(
                f"{str(file_path)!r} fails its checksum (recorded tensors_sha256 {expected}, "
                f"computed {actual}): the tensor data was altered or damaged after it was "
                "written. Restore the file from a backup or re-export it"
            )
    return tensors, metadata
