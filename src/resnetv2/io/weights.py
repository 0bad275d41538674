"""Model weights: the project's one format (safetensors + JSON metadata) and strict loading.

* :func:`save_weights` writes ``model.safetensors``-style files atomically, with the caller's
  metadata (e.g. the model spec as a dict) plus ``format_version``, ``library_version`` and
  ``tensors_sha256``. Keys never carry the ``module.`` (DDP) or ``_orig_mod.``
  (``torch.compile``) prefixes, and weights holding NaN/Inf are refused.
* :func:`load_weights` reads ``.safetensors`` (verified) and, for state dicts published by
  other libraries, ``.pt/.pth/.bin/.ckpt`` through :mod:`resnetv2.io.safe_load`.
* :func:`load_state_dict_strict` loads into a model and, on any mismatch, raises one error
  that lists every missing key, unexpected key and shape mismatch.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CorruptWeightsError, NonFiniteCheckpointError, WeightsMismatchError
from .safe_load import TORCH_SUFFIXES, safe_torch_load
from .safetensors_file import (
    FileDigest,
    read_safetensors,
    read_safetensors_metadata,
    write_safetensors,
)

WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_PREFIX_RUN = re.compile(r"^(?:module\.|_orig_mod\.)+")
# Keys under which common training libraries nest the model's state dict in a .pt checkpoint.
_NESTED_STATE_KEYS = ("state_dict", "model_state_dict", "model", "module", "net")
_LIST_LIMIT = 20


def strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy whose keys lost any leading ``module.`` / ``_orig_mod.`` (repeatedly).

    Raises :class:`WeightsMismatchError` if two keys collapse onto the same name, which would
    otherwise silently drop one tensor.
    """
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
    bad = []
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            continue
        inexact = tensor.is_floating_point() or tensor.is_complex()
        if inexact and not bool(torch.isfinite(tensor.detach()).all()):
            bad.append(name)
    return bad


def short_list(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    if len(items) > _LIST_LIMIT:
        shown += f", ... and {len(items) - _LIST_LIMIT} more"
    return shown


def save_weights(
    path: str | os.PathLike[str],
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any] | None = None,
    *,
    allow_non_finite: bool = False,
    checksum: bool = True,
) -> FileDigest:
    """Atomically write ``state_dict`` as safetensors with JSON ``metadata``.

    ``metadata`` must be JSON-serialisable (e.g. ``{"spec": spec_dict, "classes": [...]}``);
    the reserved fields ``format_version``, ``library_version`` and ``tensors_sha256`` are
    filled in (and override same-named caller keys). Wrapper prefixes are stripped from the
    keys. A tensor holding NaN/Inf raises :class:`NonFiniteCheckpointError` before anything is
    written, unless ``allow_non_finite``. ``checksum=False`` leaves out ``tensors_sha256``
    (for checkpoints, whose manifest checksums the file). Returns its size and sha256.
    """
    if not allow_non_finite:
        bad = non_finite_tensors(state_dict)
        if bad:
            raise NonFiniteCheckpointError(
                f"Refusing to write {os.fspath(path)!r}: {len(bad)} tensor(s) hold NaN or Inf "
                f"({short_list(bad)}). Training has diverged; lower the learning rate or resume "
                "from an earlier checkpoint. Nothing was written"
            )
    cleaned = strip_prefixes(state_dict)
    return write_safetensors(path, cleaned, dict(metadata or {}), checksum=checksum)


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if _is_tensor_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in _NESTED_STATE_KEYS:
            if _is_tensor_dict(obj.get(key)):
                return dict(obj[key])
        keys = ", ".join(repr(k) for k in list(obj)[:_LIST_LIMIT])
        raise CorruptWeightsError(
            f"{str(path)!r} holds a dict that is not a state dict of tensors (top-level keys: "
            f"{keys}); extract the model's state dict and save it with save_weights"
        )
    raise CorruptWeightsError(
        f"{str(path)!r} holds a {type(obj).__name__}, not a state dict; extract the model's "
        "state dict and save it with save_weights"
    )


def load_weights(
    path: str | os.PathLike[str], *, verify: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(state_dict, metadata)`` from a weights file, on the CPU, prefixes stripped.

    ``.safetensors`` files are validated and checksummed (:class:`CorruptWeightsError` on any
    problem). ``.pt/.pth/.bin/.ckpt`` files are read with ``weights_only=True`` only; a
    state dict nested under a usual key (``state_dict``, ``model``, ...) is found; metadata is
    then empty. A file that would need code to unpickle raises
    :class:`UnsafeCheckpointError`.
    """
    file_path = Path(path)
    suffix = file_path.suffix.lower()
    if suffix == ".safetensors":
        tensors, metadata = read_safetensors(file_path, verify=verify)
    elif suffix in TORCH_SUFFIXES:
        tensors, metadata = _extract_state_dict(safe_torch_load(file_path), file_path), {}
    else:
        raise ValueError(
            f"Cannot load weights from {str(file_path)!r}: unknown extension {suffix!r}; "
            f"expected .safetensors (preferred) or one of {', '.join(TORCH_SUFFIXES)}"
        )
    return strip_prefixes(tensors), metadata


def read_weights_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a ``.safetensors`` weights file, reading only its header."""
    return read_safetensors_metadata(path)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside any DDP / DataParallel / ``torch.compile`` wrappers (nested too).

    State dicts are saved and loaded on the unwrapped model, so keys never carry the
    wrappers' prefixes; this is the one place that knows the wrapper types.
    """
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
    """Load ``state_dict`` into ``model``, accepting nothing less than an exact fit.

    Wrapper prefixes are removed from the keys and DDP / ``torch.compile`` wrappers around
    ``model`` are looked through. Any missing key, unexpected key or shape mismatch raises a
    single :class:`WeightsMismatchError` listing all of them (``source``, e.g. the file
    name, is quoted in the message); the model is then left unchanged.
    """
    target = unwrap_model(model)
    given = strip_prefixes(state_dict)
    expected = target.state_dict()
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    mismatched = [
        (k, tuple(expected[k].shape), tuple(given[k].shape))
        for k in expected
        if k in given
        and isinstance(given[k], torch.Tensor)
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
            shapes = [f"{k}: model expects {tuple(e)}, got {tuple(g)}" for k, e, g in mismatched]
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
