"""Model weights: safetensors with one JSON metadata document, and strict loading.

The header's ``str -> str`` metadata holds one JSON document under :data:`METADATA_KEY`.
Header validation is the safetensors library's own (bounded header length; no overlapping,
out-of-range or misaligned tensors); its refusal becomes a
:class:`~resnetv2.io.errors.CorruptWeightsError` naming the file. One checksum per file: a
weights file records ``tensors_sha256``, a checkpoint's copy none (its manifest covers it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetv2 import jsontext

from .atomic import FileDigest, atomic_write_bytes
from .errors import (
    CorruptWeightsError,
    NonFiniteCheckpointError,
    UnsupportedWeightsFileError,
    WeightsMismatchError,
)
from .safe_load import TORCH_SUFFIXES, safe_torch_load

METADATA_KEY = "resnetv2"
FORMAT_VERSION = 1
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_PREFIX_RUN = re.compile(r"^(?:module\.|_orig_mod\.)+")
# Keys under which common training libraries nest the model's state dict in a .pt checkpoint.
_NESTED_STATE_KEYS = ("state_dict", "model_state_dict", "model", "module", "net")
_LIST_LIMIT = 20


@functools.lru_cache(maxsize=1)
def library_version() -> str:
    """The installed resnetv2 version, recorded in every file this package writes."""
    try:
        return getattr(sys.modules.get("resnetv2"), "__version__", None) or version("resnetv2")
    except PackageNotFoundError:
        return "unknown"


def short_list(items: list[str]) -> str:
    more = f", ... and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
    return ", ".join(items[:_LIST_LIMIT]) + more


def strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A copy whose keys lost any leading ``module.`` / ``_orig_mod.`` (repeatedly); two keys
    collapsing onto one name raise :class:`WeightsMismatchError` rather than drop a tensor."""
    cleaned: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in state_dict.items():
        name = _PREFIX_RUN.sub("", key)
        if name in cleaned:
            raise WeightsMismatchError(
                f"keys {origin[name]!r} and {key!r} both become {name!r} once the "
                f"{' / '.join(WRAPPER_PREFIXES)} wrapper prefixes are removed; the state dict "
                "mixes wrapped and unwrapped models — save it from one model"
            )
        cleaned[name] = value
        origin[name] = key
    return cleaned


def non_finite_tensors(state_dict: Mapping[str, Any]) -> list[str]:
    """Names of floating-point (or complex) tensors holding any NaN or Inf."""
    return [
        name
        for name, t in state_dict.items()
        if isinstance(t, torch.Tensor)
        and (t.is_floating_point() or t.is_complex())
        and not bool(torch.isfinite(t.detach()).all())
    ]


def refuse_non_finite(state_dict: Mapping[str, Any], target: str) -> None:
    """Raise :class:`NonFiniteCheckpointError` (before anything is written) on NaN/Inf."""
    if bad := non_finite_tensors(state_dict):
        raise NonFiniteCheckpointError(
            f"Refusing to write {target}: {len(bad)} tensor(s) hold NaN or Inf "
            f"({short_list(bad)}). Training has diverged; nothing was written and earlier files "
            "are intact. Lower the learning rate or resume from an earlier checkpoint"
        )


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in sorted name order."""
    hasher = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        hasher.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        if tensor.numel():
            hasher.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
    return hasher.hexdigest()


def _corrupt(path: Path, problem: str) -> CorruptWeightsError:
    return CorruptWeightsError(
        f"{str(path)!r} is not a valid safetensors file ({problem}). It is damaged, truncated "
        "or was not written completely; re-download or re-export it (a checkpoint folder falls "
        "back to an older checkpoint)"
    )


def _read(path: Path, *, tensors: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
    """``(tensors, metadata, ours)`` after the library validated the header (one open)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, "pt", device="cpu") as handle:
            raw = handle.metadata() or {}
            loaded = {k: handle.get_tensor(k) for k in handle.offset_keys()} if tensors else {}
    except SafetensorError as exc:
        raise _corrupt(path, str(exc).removeprefix("Error while deserializing header: ")) from None
    if METADATA_KEY not in raw:  # a file from another library: its own metadata is all there is
        return loaded, dict(raw), False
    try:
        document = jsontext.loads(raw[METADATA_KEY])
    except ValueError as exc:
        raise _corrupt(path, f"the {METADATA_KEY!r} metadata is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _corrupt(path, f"the {METADATA_KEY!r} metadata is not a JSON object")
    return loaded, document, True


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the JSON metadata of a safetensors file, reading only its validated header."""
    return _read(Path(path), tensors=False)[1]


read_weights_metadata = read_safetensors_metadata


def read_safetensors(
    path: str | os.PathLike[str], *, verify: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(tensors, metadata)`` from a safetensors file onto the CPU, checking a recorded
    ``tensors_sha256`` if ``verify``. Other libraries' ``str -> str`` metadata is returned as is.
    """
    file_path = Path(path)
    tensors, metadata, ours = _read(file_path, tensors=True)
    expected = metadata.get("tensors_sha256") if ours else None
    if verify and expected is not None and (actual := tensors_sha256(tensors)) != expected:
        raise CorruptWeightsError(
            f"{str(file_path)!r} fails its checksum (recorded tensors_sha256 {expected}, "
            f"computed {actual}): the tensor data was altered or damaged after it was "
            "written. Restore the file from a backup or re-export it"
        )
    return tensors, metadata


def save_weights(
    path: str | os.PathLike[str],
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any] | None = None,
    *,
    allow_non_finite: bool = False,
    checksum: bool = True,
) -> FileDigest:
    """Atomically write ``state_dict`` (wrapper prefixes stripped) with JSON ``metadata`` such as
    ``{"spec": spec_dict}``; return the file's size and sha256.

    ``format_version``, ``library_version`` and (with ``checksum``, for any file that may be
    read without a manifest around it) ``tensors_sha256`` override same-named caller keys.
    NaN/Inf raises :class:`NonFiniteCheckpointError` before anything is written, unless
    ``allow_non_finite``.
    """
    from safetensors.torch import save

    where = f" for {os.fspath(path)!r}"
    if not allow_non_finite:
        refuse_non_finite(state_dict, repr(os.fspath(path)))
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(
                f"{name!r} has type {type(tensor).__name__}, not torch.Tensor{where}; "
                "only tensors can be stored in a weights file"
            )
    # Fresh contiguous CPU copies: safetensors refuses views and tensors sharing memory.
    prepared = {
        name: t.detach().resolve_conj().resolve_neg().to("cpu", copy=True).contiguous()
        for name, t in strip_prefixes(state_dict).items()
    }
    document = {k: v for k, v in (metadata or {}).items() if k != "tensors_sha256"}
    document.update(format_version=FORMAT_VERSION, library_version=library_version())
    if checksum:
        document["tensors_sha256"] = tensors_sha256(prepared)
    try:
        text = json.dumps(document, sort_keys=True)
    except TypeError as exc:
        raise TypeError(f"metadata{where} must be JSON-serialisable: {exc}") from exc
    return atomic_write_bytes(path, save(prepared, metadata={"format": "pt", METADATA_KEY: text}))


# The same writer without the NaN/Inf guard, for tensors that are not a model's weights.
write_safetensors = functools.partial(save_weights, allow_non_finite=True)


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    nested = [obj[k] for k in _NESTED_STATE_KEYS if isinstance(obj, Mapping) and k in obj]
    for candidate in (obj, *nested):
        if _is_tensor_dict(candidate):
            return dict(candidate)
    what = f"a {type(obj).__name__}, not a state dict"
    if isinstance(obj, Mapping):
        keys = short_list([repr(k) for k in obj])
        what = f"a dict that is not a state dict of tensors (top-level keys: {keys})"
    raise CorruptWeightsError(
        f"{str(path)!r} holds {what}; extract the model's state dict and save it with save_weights"
    )


def load_weights(
    path: str | os.PathLike[str], *, verify: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(state_dict, metadata)`` from a weights file, on the CPU, prefixes stripped.

    ``.safetensors`` files are validated and checksummed. ``.pt/.pth/.bin/.ckpt`` files from
    other libraries go through :func:`~resnetv2.io.safe_load.safe_torch_load`; a state dict
    nested under a usual key (``state_dict``, ``model``, ...) is found; metadata is then empty.
    """
    file_path = Path(path)
    suffix = file_path.suffix.lower()
    if suffix == ".safetensors":
        tensors, metadata = read_safetensors(file_path, verify=verify)
    elif suffix in TORCH_SUFFIXES:
        tensors, metadata = _extract_state_dict(safe_torch_load(file_path), file_path), {}
    else:
        raise UnsupportedWeightsFileError(
            f"cannot load weights from {str(file_path)!r}: unknown extension {suffix!r}; "
            f"expected .safetensors (preferred) or one of {', '.join(TORCH_SUFFIXES)}"
        )
    return strip_prefixes(tensors), metadata


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside any DDP / DataParallel / ``torch.compile`` wrappers (nested too): the
    one place that knows the wrapper types, so saved keys never carry their prefixes."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    while True:
        if isinstance(model, wrappers):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def load_state_dict_strict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str | None = None
) -> None:
    """Load ``state_dict`` into ``model`` (wrappers and prefixes looked through), accepting
    only an exact fit: otherwise one :class:`WeightsMismatchError` lists every missing key,
    unexpected key and shape mismatch (quoting ``source``) and the model is left unchanged."""
    target = unwrap_model(model)
    given = strip_prefixes(state_dict)
    expected = target.state_dict()
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    mismatched = [
        (k, tuple(expected[k].shape), tuple(given[k].shape))
        for k in expected
        if isinstance(given.get(k), torch.Tensor)
        and isinstance(expected[k], torch.Tensor)
        and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        origin = f" from {source!r}" if source else ""
        lines = [f"Weights{origin} do not match the model ({type(target).__name__}):"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {short_list(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {short_list(unexpected)}")
        if mismatched:
            shapes = [f"{k}: model expects {e}, got {g}" for k, e, g in mismatched]
            lines.append(f"  shape mismatches ({len(mismatched)}): {short_list(shapes)}")
        lines.append(
            "Check that the weights were made for the same architecture (depth, widths, number "
            "of classes). To reuse a backbone with a new head, drop the head's keys from the "
            "state dict explicitly and build the model with the new head."
        )
        raise WeightsMismatchError(
            "\n".join(lines), missing=missing, unexpected=unexpected, shape_mismatches=mismatched
        )
    target.load_state_dict(given, strict=True)
