"""Activation recomputation over residual units (Chen et al. 2016, arXiv:1604.06174).

Training memory of a deep ResNet is dominated by the activations autograd saves for
backward: every unit keeps its input, its pre-activations and its inner feature maps.
Checkpointing keeps only the input of each *segment* of consecutive units and recomputes the
segment's forward pass during backward, trading about one extra forward pass for memory:

- ``segments=None`` — every unit is its own segment: the stored activations shrink to one
  feature map per unit (at most 3× less for bottleneck units, 4× for basic ones).
- ``segments=k`` — the units of all stages, flattened in order, are cut into ``k`` runs
  that save nearly equal numbers of bytes (an early, high-resolution unit counts 2–4× a
  late one; :func:`resnetv2.memory.segment_bounds`). With
  ``k ≈ √n`` (``segments="sqrt"``) memory grows as O(√n) instead of O(n) — the point of
  Chen et al.'s paper — for the same one extra forward pass.

Two details make the recomputation exact rather than approximate:

- **Batch-norm running statistics.** Non-reentrant ``torch.utils.checkpoint`` re-runs the
  forward pass in training mode, which would update each BN layer's ``running_mean``,
  ``running_var`` and ``num_batches_tracked`` a second time. During the recomputation (its
  ``context_fn`` recompute context) the buffers of the BN layers that were tracking
  statistics in the original forward are copied on entry and restored on exit, so the
  recomputation normalises with the same batch statistics and leaves no trace. After a step
  the buffers equal the plain model's.
- **Drop path / dropout.** ``preserve_rng_state=True`` restores the RNG state before the
  recomputation, so stochastic depth draws the same per-sample mask twice.

The last segment is never checkpointed: backward needs its activations first, so recomputing
it would cost time and save nothing at the peak. Checkpointing only acts when gradients are
being recorded; inference runs the units as they are.
"""

from __future__ import annotations

from torch import nn

from resnetv2.nn.checkpointed import (
    PER_UNIT,
    CheckpointedStages,
    RecomputeError,
    checkpoint_modules,
    checkpoint_stages,
    iter_stage_units,
    resolve_segments,
    run_checkpointed,
)
from resnetv2.nn.model import ResNetV2

__all__ = [
    "PER_UNIT",
    "CheckpointedStages",
    "RecomputeError",
    "activation_checkpointing",
    "checkpoint_modules",
    "checkpoint_stages",
    "enable_activation_checkpointing",
    "iter_stage_units",
    "resolve_segments",
    "run_checkpointed",
]


def _resnets(model: nn.Module) -> list[nn.Module]:
    found = [m for m in model.modules() if isinstance(m, ResNetV2)]
    if not found:
        raise RecomputeError(
            f"{type(model).__name__} contains no ResNetV2; activation checkpointing applies to "
            "models built by resnetv2.create_model or ResidualStages"
        )
    return found


def enable_activation_checkpointing(model: nn.Module, segments: object = None) -> nn.Module:
    """Turn activation checkpointing on (or off) for every ResNetV2 inside ``model``.

    ``segments``: ``None`` (default) checkpoints each residual unit; a positive int ``k``
    cuts the flattened units into ``k`` segments (``"sqrt"`` picks ``round(√n)``); ``0`` or
    ``False`` turns checkpointing off. Works through wrappers (``DistributedDataParallel``,
    ``ResidualStages``) because it searches the module tree. Returns ``model``.

    Gradients, the loss and BN running statistics after a step equal the plain model's; see
    the module docstring and ``docs/depth-and-memory.md`` for the memory/time trade-off.
    """
    for net in _resnets(model):
        checkpoint_stages(net, segments)
    return model


def activation_checkpointing(model: nn.Module) -> int | None | bool:
    """The current setting of the first ResNetV2 in ``model``: False, None (per unit) or k."""
    stages = _resnets(model)[0].stages
    if isinstance(stages, CheckpointedStages):
        return stages.checkpoint_segments
    return False
