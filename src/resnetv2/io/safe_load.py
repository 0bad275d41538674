"""The one place in resnetv2 that calls ``torch.load``, always with ``weights_only=True``, and
the training state (optimiser, schedule, RNG, counters) it reads back.

Unpickling can run arbitrary code; PyTorch's ``weights_only`` unpickler rebuilds only tensors
and plain containers. Anything else is refused with
:class:`~resnetv2.io.errors.UnsafeCheckpointError`, with no fallback to an unsafe load (and an
explicit ``weights_only=True`` overrides ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``). So that a state
that could not be read back is never written, :func:`encode_state` checks the pickle's globals
against that allowlist first.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from .atomic import FileDigest, atomic_write_bytes
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
    # Checked first: the restricted unpickler would call random bytes "unsafe", not corrupt.
    if not (head.startswith(_ZIP_MAGIC) or head[:1] == bytes([_PICKLE_PROTO])):
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


def encode_state(obj: Any) -> bytes:
    """``torch.save`` bytes of ``obj``; ``TypeError`` if the safe loader could not rebuild it."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    if unsafe := torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data)):
        raise TypeError(
            f"cannot store {', '.join(sorted(unsafe))} in the training state: only tensors, "
            "None, bool, int, float, str, bytes and lists, tuples, sets and dicts of them can "
            "be read back without unpickling code (store the object's state_dict(), or convert "
            "numpy arrays to tensors)"
        )
    return data


def save_state_file(path: str | os.PathLike[str], obj: Any) -> FileDigest:
    """Atomically write ``obj`` (see :func:`encode_state`); return the file's size and sha256."""
    return atomic_write_bytes(path, encode_state(obj))


load_state_file = safe_torch_load  # a state written by save_state_file, tensors on the CPU
