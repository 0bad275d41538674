"""Checkpointed execution of residual units: the mechanism behind
:mod:`resnetv2.nn.recompute`.

Everything here works on modules it is given (units, a ``stages`` container, one ResNetV2),
so :class:`~resnetv2.nn.model.ResNetV2` can switch its own checkpointing on without the
model-searching entry points of :mod:`resnetv2.nn.recompute`, which sit above the model. The
module docstring there explains segments and why the recomputation is exact.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from resnetv2.errors import ResNetV2Error
from resnetv2.memory import segment_bounds, sqrt_segments, unit_weights

#: ``segments`` values meaning "checkpoint every unit".
PER_UNIT = "per_unit"


class RecomputeError(ResNetV2Error, ValueError):
    """An invalid activation-checkpointing setting."""


class _FrozenRunningStats:
    """Context that undoes any running-statistics update the given BN layers make inside it.

    Switching ``track_running_stats`` off instead would change which tensors batch norm saves
    for backward, and non-reentrant checkpointing matches saved tensors by position; a
    momentum of 0 would still count ``num_batches_tracked`` and turn a NaN batch into NaN
    buffers. Restoring a copy is exact and costs three per-channel copies per layer.
    """

    def __init__(self, norms: list[_BatchNorm]) -> None:
        self.norms = norms
        self.saved: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __enter__(self) -> None:
        self.saved = [
            (buf, buf.clone())
            for norm in self.norms
            for buf in (norm.running_mean, norm.running_var, norm.num_batches_tracked)
            if buf is not None
        ]

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for buf, value in self.saved:
                buf.copy_(value)
        self.saved = []


def _contexts(modules: Sequence[nn.Module]) -> tuple[contextlib.nullcontext, _FrozenRunningStats]:
    # Evaluated at forward time: only layers that updated their statistics then are frozen in
    # the recomputation (a BN in eval mode must keep normalising with its running stats).
    norms = [
        m
        for module in modules
        for m in module.modules()
        if isinstance(m, _BatchNorm) and m.training and m.track_running_stats
    ]
    return contextlib.nullcontext(), _FrozenRunningStats(norms)


def _run(modules: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for module in modules:
        x = module(x)
    return x


def checkpoint_modules(modules: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Run ``modules`` in sequence under one non-reentrant checkpoint, BN statistics exact.

    This is the building block for code that checkpoints its own units (e.g. a model's
    per-stage ``set_grad_checkpointing``): unlike a bare ``checkpoint(block, x)``, the
    recomputation does not update batch-norm running statistics a second time.
    """
    modules = list(modules)
    return checkpoint(
        functools.partial(_run, modules),
        x,
        use_reentrant=False,
        preserve_rng_state=True,
        context_fn=functools.partial(_contexts, modules),
    )


def run_checkpointed(
    units: Sequence[nn.Module],
    x: torch.Tensor,
    segments: int | None = None,
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Run ``units`` in order, checkpointing every segment but the last.

    ``weights`` (bytes each unit saves) balance the segments by memory rather than by unit
    count; see :func:`resnetv2.memory.segment_bounds`.
    """
    units = list(units)
    if not torch.is_grad_enabled():
        return _run(units, x)
    bounds = segment_bounds(len(units), segments, weights)
    for i, (start, end) in enumerate(bounds):
        chunk = units[start:end]
        x = _run(chunk, x) if i == len(bounds) - 1 else checkpoint_modules(chunk, x)
    return x


class CheckpointedStages(nn.Sequential):
    """A ResNetV2's ``stages`` container that checkpoints its units in segments.

    Installed by :func:`checkpoint_stages` by swapping the class of the
    existing ``nn.Sequential``, so the module tree and the ``state_dict`` keys
    (``stages.{i}.blocks.{j}…``) stay exactly as they were.
    """

    checkpoint_segments: int | None = None
    checkpoint_weights: tuple[int, ...] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not torch.is_grad_enabled():
            return super().forward(x)
        units = list(iter_stage_units(self))
        return run_checkpointed(units, x, self.checkpoint_segments, self.checkpoint_weights)


def iter_stage_units(stages: nn.Module) -> Iterator[nn.Module]:
    """The residual units of a ResNetV2's ``stages``, flattened across stages in order."""
    for stage in stages:
        yield from stage.blocks


def resolve_segments(segments: object, num_units: int) -> int | None | bool:
    """Normalise a ``segments`` setting: ``False`` (off), ``None`` (per unit) or an int.

    Accepted: ``None``/``True``/``-1``/``"unit"`` → per unit; ``0``/``False``/``"off"`` →
    off; a positive int → that many segments (capped at the number of units);
    ``"sqrt"`` → ``round(√n)`` segments for ``n`` units.
    """
    if segments is None or segments is True or segments == PER_UNIT or segments == "unit":
        return None
    if segments is False or segments == "off":
        return False
    if segments in ("sqrt", "auto"):
        return sqrt_segments(num_units)
    if isinstance(segments, int) and not isinstance(segments, bool):
        if segments == -1:
            return None
        if segments == 0:
            return False
        if segments > 0:
            return min(segments, num_units) if num_units else segments
    raise RecomputeError(
        "checkpoint segments must be a positive integer, 'sqrt', None/-1 (every unit) or "
        f"0/False (off); got {segments!r}"
    )


def checkpoint_stages(net: nn.Module, segments: object = None) -> None:
    """Turn checkpointing of one ResNetV2's ``stages`` on (``segments`` as
    :func:`resolve_segments` reads it) or off (``False``), in place.

    Swaps the class of the existing ``stages`` container, so the module tree and the
    ``state_dict`` keys stay as they were.
    """
    num_units = sum(1 for _ in iter_stage_units(net.stages))
    value = resolve_segments(segments, num_units)
    if value is False:
        if isinstance(net.stages, CheckpointedStages):
            net.stages.__class__ = nn.Sequential
            del net.stages.checkpoint_segments, net.stages.checkpoint_weights
    else:
        net.stages.__class__ = CheckpointedStages
        net.stages.checkpoint_segments = value
        net.stages.checkpoint_weights = unit_weights(net.spec)
