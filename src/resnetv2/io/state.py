"""Training state (optimiser, schedule, RNG, counters) written by ``torch.save``, read safely.

The state is an ordinary tree of tensors and Python containers, which ``torch.save`` stores
exactly (int vs str keys, tuples, NaN, big ints, every tensor dtype, shared tensors). It is
read back only through :func:`~resnetv2.io.safe_load.safe_torch_load` (``weights_only=True``),
which rebuilds tensors and plain containers and nothing else. So that a state that could not
be read back is never written, the pickle's globals are checked before the file is written and
anything outside PyTorch's ``weights_only`` allowlist (custom objects, ``defaultdict``, enums,
numpy arrays, functions) raises ``TypeError`` naming it.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

import torch

from .atomic import atomic_write_bytes
from .safe_load import safe_torch_load
from .safetensors_file import FileDigest


def encode_state(obj: Any) -> bytes:
    """``torch.save`` bytes of ``obj``; ``TypeError`` if the safe loader could not rebuild it."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    if unsafe:
        raise TypeError(
            f"cannot store {', '.join(sorted(unsafe))} in the training state: only tensors, "
            "None, bool, int, float, str, bytes and lists, tuples, sets and dicts of them can "
            "be read back without unpickling code (store the object's state_dict(), or convert "
            "numpy arrays to tensors)"
        )
    return data


def save_state_file(path: str | os.PathLike[str], obj: Any) -> FileDigest:
    """Atomically write ``obj`` (see :func:`encode_state`); return the file's size and sha256."""
    data = encode_state(obj)
    atomic_write_bytes(path, data)
    return FileDigest(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def load_state_file(path: str | os.PathLike[str]) -> Any:
    """Read a state written by :func:`save_state_file`, tensors on the CPU, never running code."""
    return safe_torch_load(path)
