"""Peak training memory of one step: parameters, gradients, optimizer state, activations.

On top of the saved activations (:mod:`resnetv2.memory.activations`), backward holds a few
transient feature maps — the incoming gradient, the gradient being produced and the op's
scratch space — modelled as ``WORKSPACE_MAPS`` copies of the largest activation map, a
constant calibrated on CPU measurements (``benchmarks/memory.py``, ``docs/bench-memory.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from resnetv2.analysis import count_params
from resnetv2.memory.activations import (
    MemoryEstimateError,
    SavedTensorWalker,
    check_request,
    checkpointed_activation_peak,
    segment_bounds,
    sqrt_segments,
    unit_weights,
)
from resnetv2.optimizers import OPTIMIZERS
from resnetv2.spec import ResNetV2Spec


class _OptimizerState(Mapping[str, int]):
    """Optimizer state per parameter, in parameter-sized buffers: each optimiser of the
    registry (:data:`resnetv2.optimizers.OPTIMIZERS`, read when asked, so one registered
    later counts too), then ``sgd_nomomentum`` and ``none``, which keep none."""

    _STATELESS = ("sgd_nomomentum", "none")

    def __getitem__(self, name: str) -> int:
        if name in OPTIMIZERS:
            return OPTIMIZERS[name].state_per_param
        if name in self._STATELESS:
            return 0
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter([*OPTIMIZERS, *(n for n in self._STATELESS if n not in OPTIMIZERS)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


#: Optimizer state per parameter, in parameter-sized buffers (a live view of the registry).
OPTIMIZER_STATE: Mapping[str, int] = _OptimizerState()

#: Transient feature maps alive during backward, in units of the largest activation map.
WORKSPACE_MAPS = 3


@dataclass(frozen=True)
class MemoryEstimate:
    """Predicted peak training memory for one step; all sizes in bytes."""

    batch_size: int
    input_size: tuple[int, int]
    checkpoint_segments: int | None
    optimizer: str
    dtype_bytes: int
    params: int
    param_bytes: int
    grad_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    activation_bytes_plain: int
    workspace_bytes: int
    segments_used: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_bytes(self) -> int:
        return (
            self.param_bytes
            + self.grad_bytes
            + self.optimizer_bytes
            + self.activation_bytes
            + self.workspace_bytes
        )

    @property
    def checkpointing(self) -> str:
        if self.checkpoint_segments is None:
            return "off"
        if self.checkpoint_segments == -1:
            return "every unit"
        return f"{self.segments_used} segments"  # "sqrt" is resolved to its count

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "input_size": list(self.input_size),
            "checkpointing": self.checkpointing,
            "checkpoint_segments": self.checkpoint_segments,
            "optimizer": self.optimizer,
            "dtype_bytes": self.dtype_bytes,
            "params": self.params,
            "param_bytes": self.param_bytes,
            "grad_bytes": self.grad_bytes,
            "optimizer_bytes": self.optimizer_bytes,
            "activation_bytes": self.activation_bytes,
            "activation_bytes_without_checkpointing": self.activation_bytes_plain,
            "workspace_bytes": self.workspace_bytes,
            "total_bytes": self.total_bytes,
        }

    def format(self) -> str:
        h, w = self.input_size
        rows = [
            ("parameters", self.param_bytes),
            ("gradients", self.grad_bytes),
            (f"optimizer state ({self.optimizer})", self.optimizer_bytes),
            ("activations saved for backward", self.activation_bytes),
            ("backward workspace", self.workspace_bytes),
        ]
        lines = [
            f"estimated peak training memory: batch {self.batch_size}, input {h}×{w}, "
            f"{self.dtype_bytes}-byte floats, activation checkpointing {self.checkpointing}",
        ]
        lines += [f"  {name:<34} {format_bytes(n):>10}" for name, n in rows]
        lines.append(f"  {'total':<34} {format_bytes(self.total_bytes):>10}")
        if self.checkpoint_segments is not None:
            plain = self.total_bytes - self.activation_bytes + self.activation_bytes_plain
            lines.append(
                f"  without checkpointing: {format_bytes(plain)} "
                f"({plain / self.total_bytes:.1f}× more), for about one extra forward pass"
            )
        return "\n".join(lines)


def format_bytes(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def parse_checkpoint_segments(text: str) -> int | str:
    """``argparse`` type for ``--checkpoint-activations``: ``sqrt``, ``unit`` or a count.

    Returns ``"sqrt"``, ``-1`` (every unit) or a positive int, the values
    :func:`estimate_training_memory` and (with ``-1`` read as ``None``)
    :func:`resnetv2.nn.recompute.enable_activation_checkpointing` accept.
    """
    value = str(text).strip().lower()
    if value in ("sqrt", "auto"):
        return "sqrt"
    if value in ("unit", "units", "every", "-1"):
        return -1
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise MemoryEstimateError(
        f"checkpoint segments must be 'sqrt', 'unit' or a positive integer, got {text!r}"
    )


def estimate_training_memory(
    spec: ResNetV2Spec,
    *,
    batch_size: int,
    input_size: Any,
    checkpoint_segments: int | str | None = None,
    optimizer: str = "sgd",
    dtype_bytes: int = 4,
) -> MemoryEstimate:
    """Predict peak memory of one training step of ``spec``.

    ``checkpoint_segments``: ``None`` — no checkpointing; ``-1`` — every unit checkpointed;
    ``"sqrt"`` — ``round(√n)`` segments for ``n`` units; ``k > 0`` — ``k`` segments, cut as
    :func:`resnetv2.nn.recompute.enable_activation_checkpointing` cuts them.
    ``optimizer``: a name of :data:`OPTIMIZER_STATE`: ``sgd`` (momentum, one buffer per
    parameter), ``adamw``/``adam`` (two), any other registered optimiser, or
    ``sgd_nomomentum``/``none`` (none).
    """
    size = check_request(batch_size, input_size, dtype_bytes)
    if optimizer not in OPTIMIZER_STATE:
        raise MemoryEstimateError(
            f"optimizer must be one of {', '.join(OPTIMIZER_STATE)}, got {optimizer!r}"
        )
    if (
        checkpoint_segments is not None
        and checkpoint_segments != "sqrt"
        and (
            isinstance(checkpoint_segments, bool)
            or not isinstance(checkpoint_segments, int)
            or (checkpoint_segments < 1 and checkpoint_segments != -1)
        )
    ):
        raise MemoryEstimateError(
            "checkpoint segments must be a positive integer, 'sqrt' or -1 (every unit), "
            f"got {checkpoint_segments!r}"
        )
    ledger = SavedTensorWalker(spec, batch_size, dtype_bytes).ledger(size)
    if checkpoint_segments == "sqrt":
        checkpoint_segments = sqrt_segments(len(ledger.units))
    params = count_params(spec)
    param_bytes = params * dtype_bytes
    activations = ledger.total
    used = 0
    if checkpoint_segments is not None:
        segments = None if checkpoint_segments == -1 else checkpoint_segments
        weights = unit_weights(spec)
        used = len(segment_bounds(len(ledger.units), segments, weights))
        activations = checkpointed_activation_peak(ledger, segments, weights)
    return MemoryEstimate(
        batch_size=batch_size,
        input_size=size,
        checkpoint_segments=checkpoint_segments,
        optimizer=optimizer,
        dtype_bytes=dtype_bytes,
        params=params,
        param_bytes=param_bytes,
        grad_bytes=param_bytes,
        optimizer_bytes=OPTIMIZER_STATE[optimizer] * param_bytes,
        activation_bytes=activations,
        activation_bytes_plain=ledger.total,
        workspace_bytes=WORKSPACE_MAPS * ledger.largest_map,
        segments_used=used,
    )
