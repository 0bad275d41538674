"""Training state as tensors plus a JSON skeleton, so resuming never needs pickle.

:func:`flatten_state` splits an object tree (optimizer / scheduler / GradScaler state dicts,
RNG states, counters) into named tensors, stored in a safetensors file, and a JSON-able
skeleton that records the structure and every scalar. :func:`unflatten_state` rebuilds an
equal tree: dict key types (``int`` vs ``str``), tuples vs lists, NaN/Inf floats, arbitrarily
large ints, tensor dtypes (``uint8`` RNG state, ``bool``, ``bfloat16``...) and numpy arrays
(which come back as numpy, same dtype and byte order) all survive exactly.

Supported: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``list``, ``tuple``,
``dict`` / ``OrderedDict`` (keys of any supported hashable type), ``torch.Tensor`` /
``nn.Parameter`` (dense), ``torch.Size``, ``torch.dtype``, ``torch.device``,
``numpy.ndarray`` (not ``object`` dtype) and numpy scalars. Anything else — including
subclasses such as ``defaultdict`` or ``IntEnum`` — raises ``TypeError`` naming where it sits,
rather than being stored approximately. Tensors are restored on the CPU; references to the
same tensor object are stored once and restored as one object.
"""

from __future__ import annotations

import base64
import math
import os
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from .errors import CorruptCheckpointError
from .safetensors_file import FileDigest, read_safetensors, write_safetensors

__all__ = [
    "SKELETON_FORMAT",
    "flatten_state",
    "load_state_file",
    "save_state_file",
    "unflatten_state",
]

SKELETON_FORMAT = "resnetv2.state/1"
_TAG = "$"
# Dtypes safetensors stores natively; others are stored as their raw bytes plus the dtype name.
_NATIVE_DTYPES = {
    torch.float64,
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
    torch.complex64,
    *(getattr(torch, n) for n in ("uint16", "uint32", "uint64") if hasattr(torch, n)),
    *(getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, n)),
}


def _path_text(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) if path else "<root>"


class _Flattener:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._names_by_id: dict[int, str] = {}
        self._keepalive: list[Any] = []
        self._active: set[int] = set()

    def _new_name(self, path: tuple[Any, ...]) -> str:
        base = _path_text(path)
        name, counter = base, 1
        while name in self.tensors:
            name = f"{base}~{counter}"
            counter += 1
        return name

    def _store(self, obj: Any, path: tuple[Any, ...], tensor: torch.Tensor) -> str:
        if id(obj) in self._names_by_id:
            return self._names_by_id[id(obj)]
        name = self._new_name(path)
        self.tensors[name] = tensor
        self._names_by_id[id(obj)] = name
        self._keepalive.append(obj)  # ids stay unique only while the object is alive
        return name

    def encode(self, obj: Any, path: tuple[Any, ...]) -> Any:
        kind = type(obj)
        if obj is None or kind in (bool, int, str):
            return obj
        if kind is float:
            return obj if math.isfinite(obj) else {_TAG: "float", "value": repr(obj)}
        if isinstance(obj, torch.Tensor):
            return self._encode_tensor(obj, path)
        if isinstance(obj, np.ndarray | np.generic):
            return self._encode_numpy(obj, path)
        if kind is bytes:
            return {_TAG: "bytes", "value": base64.b64encode(obj).decode("ascii")}
        if kind is torch.Size:
            return {_TAG: "size", "value": list(obj)}
        if kind is torch.dtype:
            return {_TAG: "dtype", "value": str(obj).removeprefix("torch.")}
        if kind is torch.device:
            return {_TAG: "device", "value": str(obj)}
        if kind in (list, tuple, dict, OrderedDict):
            if id(obj) in self._active:
                raise TypeError(f"the state contains a reference cycle at {_path_text(path)}")
            self._active.add(id(obj))
            try:
                if kind in (list, tuple):
                    items = [self.encode(v, (*path, i)) for i, v in enumerate(obj)]
                    return {_TAG: kind.__name__, "items": items}
                pairs = [
                    [self.encode(k, (*path, f"<key {k!r}>")), self.encode(v, (*path, k))]
                    for k, v in obj.items()
                ]
                return {_TAG: "odict" if kind is OrderedDict else "dict", "items": pairs}
            finally:
                self._active.discard(id(obj))
        raise TypeError(
            f"cannot store a {kind.__module__}.{kind.__qualname__} at {_path_text(path)} in "
            "the training state: only None, bool, int, float, str, bytes, list, tuple, dict, "
            "tensors and numpy arrays are allowed (use the object's state_dict() or convert it)"
        )

    def _encode_tensor(self, obj: torch.Tensor, path: tuple[Any, ...]) -> dict[str, Any]:
        if obj.layout != torch.strided or obj.is_quantized:
            raise TypeError(
                f"cannot store the {obj.layout} tensor at {_path_text(path)}; convert it to a "
                "dense tensor first"
            )
        node: dict[str, Any] = {_TAG: "tensor"}
        tensor = obj.detach().resolve_conj().resolve_neg()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()
        tensor = tensor.contiguous()
        if tensor.dtype not in _NATIVE_DTYPES:
            if tensor.dtype.itemsize < 1:
                raise TypeError(f"cannot store the {tensor.dtype} tensor at {_path_text(path)}")
            node["dtype"] = str(tensor.dtype).removeprefix("torch.")
            node["shape"] = list(tensor.shape)
            tensor = tensor.reshape(-1).view(torch.uint8)
        if isinstance(obj, torch.nn.Parameter):
            node["parameter"] = True
        if obj.requires_grad:
            node["requires_grad"] = True
        node["name"] = self._store(obj, path, tensor)
        return node

    def _encode_numpy(self, obj: np.ndarray | np.generic, path: tuple[Any, ...]) -> dict:
        array = np.asarray(obj)
        if array.dtype.hasobject:
            raise TypeError(
                f"cannot store the object-dtype numpy array at {_path_text(path)}: it would "
                "need pickle"
            )
        raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8).copy()
        return {
            _TAG: "ndarray" if isinstance(obj, np.ndarray) else "npscalar",
            "dtype": np.lib.format.dtype_to_descr(array.dtype),
            "shape": list(array.shape),
            "name": self._store(obj, path, torch.from_numpy(raw)),
        }


def flatten_state(obj: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``obj`` into ``(tensors, skeleton)``: named CPU tensors and a JSON-able structure.

    Tensor names follow the path inside ``obj`` (``"optimizer.state.0.exp_avg"``). Tensors may
    share memory with ``obj``; serialise them before mutating ``obj``.
    """
    flattener = _Flattener()
    root = flattener.encode(obj, ())
    return flattener.tensors, {"format": SKELETON_FORMAT, "root": root}


def _malformed(problem: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"the training-state skeleton is malformed: {problem}. The state file is damaged or was "
        "written by an incompatible version; resume from another checkpoint"
    )


class _Unflattener:
    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors
        self._restored: dict[str, Any] = {}

    def _tensor(self, node: dict[str, Any]) -> torch.Tensor:
        name = node.get("name")
        if name not in self.tensors:
            raise _malformed(f"it refers to a tensor {name!r} that the state file lacks")
        return self.tensors[name]

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if not isinstance(node, dict) or _TAG not in node:
            raise _malformed(f"unexpected node {str(node)[:80]!r}")
        tag = node[_TAG]
        try:
            if tag in ("list", "tuple"):
                items = [self.decode(v) for v in node["items"]]
                return items if tag == "list" else tuple(items)
            if tag in ("dict", "odict"):
                pairs = [(self.decode(k), self.decode(v)) for k, v in node["items"]]
                return OrderedDict(pairs) if tag == "odict" else dict(pairs)
            if tag == "float":
                return float(node["value"])
            if tag in ("tensor", "ndarray", "npscalar"):
                name = node.get("name")
                if name not in self._restored:
                    self._restored[name] = self._decode_array(tag, node)
                return self._restored[name]
            if tag == "bytes":
                return base64.b64decode(node["value"], validate=True)
            if tag == "size":
                return torch.Size(node["value"])
            if tag == "dtype":
                dtype = getattr(torch, node["value"])
                if not isinstance(dtype, torch.dtype):
                    raise ValueError(f"{node['value']!r} is not a torch dtype")
                return dtype
            if tag == "device":
                return torch.device(node["value"])
        except CorruptCheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            raise _malformed(f"bad {tag!r} node ({type(exc).__name__}: {exc})") from exc
        raise _malformed(f"unknown node type {tag!r}")

    def _decode_array(self, tag: str, node: dict[str, Any]) -> Any:
        stored = self._tensor(node)
        if tag == "tensor":
            tensor = stored
            if "dtype" in node:
                dtype = getattr(torch, node["dtype"])
                tensor = stored.view(dtype).reshape(node["shape"])
            if node.get("parameter"):
                return torch.nn.Parameter(tensor, requires_grad=bool(node.get("requires_grad")))
            if node.get("requires_grad"):
                tensor.requires_grad_(True)
            return tensor
        dtype = np.lib.format.descr_to_dtype(_tuplify_descr(node["dtype"]))
        array = stored.numpy().view(dtype).reshape(node["shape"]).copy()
        return array if tag == "ndarray" else array[()]


def _tuplify_descr(descr: Any) -> Any:
    # dtype_to_descr gives a list of (name, descr[, shape]) tuples for structured dtypes; JSON
    # turned every tuple into a list, which descr_to_dtype does not accept.
    if not isinstance(descr, list):
        return descr
    fields = []
    for name, sub, *shape in descr:
        name = tuple(name) if isinstance(name, list) else name  # (title, name) pairs
        fields.append((name, _tuplify_descr(sub), *(tuple(s) for s in shape)))
    return fields


def unflatten_state(tensors: dict[str, torch.Tensor], skeleton: dict[str, Any]) -> Any:
    """Rebuild the object that :func:`flatten_state` split into ``tensors`` and ``skeleton``."""
    if not isinstance(skeleton, dict) or skeleton.get("format") != SKELETON_FORMAT:
        found = skeleton.get("format") if isinstance(skeleton, dict) else type(skeleton).__name__
        raise _malformed(f"expected format {SKELETON_FORMAT!r}, found {found!r}")
    return _Unflattener(tensors).decode(skeleton.get("root"))


def save_state_file(
    path: str | os.PathLike[str], obj: Any, metadata: dict[str, Any] | None = None
) -> FileDigest:
    """Atomically write ``obj`` as one safetensors file (skeleton in the JSON metadata);
    return the written file's size and sha256."""
    tensors, skeleton = flatten_state(obj)
    document = {**(metadata or {}), "kind": "training_state", "skeleton": skeleton}
    return write_safetensors(path, tensors, document)


def load_state_file(path: str | os.PathLike[str], *, verify: bool = True) -> Any:
    """Read an object written by :func:`save_state_file` (checksum verified)."""
    tensors, document = read_safetensors(path, verify=verify)
    if "skeleton" not in document:
        raise CorruptCheckpointError(
            f"{os.fspath(path)!r} has no training-state skeleton in its metadata; it is not a "
            "training-state file (or is damaged)"
        )
    try:
        return unflatten_state(tensors, document["skeleton"])
    except CorruptCheckpointError as exc:
        raise CorruptCheckpointError(f"{os.fspath(path)!r}: {exc}") from exc
