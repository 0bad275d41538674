"""The one place in resnetv2 that calls ``torch.load`` — always with ``weights_only=True``.

Pickle-based ``.pt/.pth/.bin/.ckpt`` files can run arbitrary code when unpickled. PyTorch's
``weights_only`` unpickler only rebuilds tensors and plain containers; anything else is
refused here with :class:`~resnetv2.io.errors.UnsafeCheckpointError`, and there is no fallback
to an unsafe load, whatever the caller or the environment asks for. (An explicit
``weights_only=True`` also cannot be overridden by ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``.)

The project's own format is safetensors (:mod:`resnetv2.io.weights`); this module exists only
to read state dicts published by other libraries.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from .errors import CorruptWeightsError, UnsafeCheckpointError

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80  # first byte of a protocol >= 2 pickle (PyTorch's legacy format)


def _refusal_reason(message: str) -> str:
    # PyTorch's message explains how to allowlist or unsafely load the file; keep only the
    # diagnosis (its first sentence, e.g. "Unsupported global: GLOBAL posix.system ...").
    _, marker, rest = message.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in rest.splitlines() if line.strip()]
    if marker and lines:
        return lines[0].split(". ", 1)[0].rstrip(".")
    return "it references objects outside the allowed set of tensors and plain containers"


def safe_torch_load(path: str | os.PathLike[str]) -> Any:
    """Load a PyTorch-pickled file onto the CPU without ever executing code from it.

    Raises :class:`UnsafeCheckpointError` when the pickle needs anything beyond tensors and
    plain containers, and :class:`CorruptWeightsError` when the file is not a readable
    PyTorch file at all (truncated zip, random bytes).
    """
    file_path = Path(path)
    with open(file_path, "rb") as handle:
        head = handle.read(4)
    if not (head.startswith(_ZIP_MAGIC) or (head[:1] and head[0] == _PICKLE_PROTO)):
        raise CorruptWeightsError(
            f"{str(file_path)!r} is not a PyTorch file (it starts with {head!r}, neither a zip "
            "archive nor a pickle); check that the path points at a weights file"
        )
    try:
        return torch.load(file_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"Refused to load {str(file_path)!r}: the file contains pickled code or objects "
            f"that only an unsafe load could rebuild ({_refusal_reason(str(exc))}), and "
            "unpickling it could run arbitrary code. resnetv2 never loads such files. Ask the "
            "publisher for a .safetensors file, or convert it yourself in a sandbox you trust"
        ) from None
    except Exception as exc:
        raise CorruptWeightsError(
            f"{str(file_path)!r} could not be read as a PyTorch file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); it is probably truncated or "
            "damaged — download or export it again"
        ) from exc
