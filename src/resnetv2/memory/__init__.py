"""Peak training memory predicted from a spec alone (no torch import).

Training memory has four parts: **parameters**, **gradients** (one per parameter),
**optimizer state** (SGD with momentum keeps one buffer per parameter, Adam/AdamW two) and the
**activations saved for backward** — which, for a deep ResNet, dominate everything else by
orders of magnitude. :func:`estimate_training_memory` adds them up for one batch size, input
size and activation-checkpointing setting; ``resnetv2 summary --estimate-memory`` prints it.
See ``docs/depth-and-memory.md``.
"""

from resnetv2.memory.activations import (
    ActivationLedger,
    MemoryEstimateError,
    activation_ledger,
    checkpointed_activation_peak,
    segment_bounds,
    sqrt_segments,
    unit_weights,
)
from resnetv2.memory.estimate import (
    OPTIMIZER_STATE,
    WORKSPACE_MAPS,
    MemoryEstimate,
    estimate_training_memory,
    format_bytes,
    parse_checkpoint_segments,
)

__all__ = [
    "OPTIMIZER_STATE",
    "WORKSPACE_MAPS",
    "ActivationLedger",
    "MemoryEstimate",
    "MemoryEstimateError",
    "activation_ledger",
    "checkpointed_activation_peak",
    "estimate_training_memory",
    "format_bytes",
    "parse_checkpoint_segments",
    "segment_bounds",
    "sqrt_segments",
    "unit_weights",
]
