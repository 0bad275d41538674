"""Safe, atomic input/output for resnetv2: weights, training state and checkpoints.

:mod:`.atomic` (old bytes or new, never half), :mod:`.safe_load` (the only ``torch.load``,
always ``weights_only=True``), :mod:`.safetensors_file` (JSON metadata, one checksum),
:mod:`.weights` (save/load, strict loading), :mod:`.state` (training state),
:mod:`.checkpoints` and :mod:`.manifest` (commit, prune, verify, resume). Nothing here imports
other resnetv2 subpackages; a model spec travels as a JSON-able dict in the metadata.
"""

from .atomic import atomic_open, atomic_write_bytes, atomic_write_text, atomic_write_with
from .checkpoints import Checkpoint, CheckpointInfo, CheckpointManager, verify_checkpoint
from .errors import (
    CheckpointError,
    CheckpointWarning,
    CheckpointWriteError,
    CorruptCheckpointError,
    CorruptWeightsError,
    NonFiniteCheckpointError,
    NoValidCheckpointError,
    UnsafeCheckpointError,
    WeightsMismatchError,
)
from .safe_load import safe_torch_load
from .safetensors_file import FileDigest, read_safetensors, tensors_sha256, write_safetensors
from .state import encode_state, load_state_file, save_state_file
from .weights import (
    load_state_dict_strict,
    load_weights,
    non_finite_tensors,
    read_weights_metadata,
    save_weights,
    strip_prefixes,
    unwrap_model,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointManager",
    "CheckpointWarning",
    "CheckpointWriteError",
    "CorruptCheckpointError",
    "CorruptWeightsError",
    "FileDigest",
    "NoValidCheckpointError",
    "NonFiniteCheckpointError",
    "UnsafeCheckpointError",
    "WeightsMismatchError",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "encode_state",
    "load_state_dict_strict",
    "load_state_file",
    "load_weights",
    "non_finite_tensors",
    "read_safetensors",
    "read_weights_metadata",
    "safe_torch_load",
    "save_state_file",
    "save_weights",
    "strip_prefixes",
    "tensors_sha256",
    "unwrap_model",
    "verify_checkpoint",
    "write_safetensors",
]
