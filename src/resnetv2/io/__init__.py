"""Safe, atomic input/output for resnetv2: weights, training state and checkpoints.

Modules: :mod:`.atomic`, :mod:`.safe_load` (the only ``torch.load``; training state),
:mod:`.weights` (safetensors, strict loading), :mod:`.checkpoints`. Nothing here imports other
resnetv2 subpackages; a model spec travels as a JSON-able dict in the metadata.
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
    UnsupportedWeightsFileError,
    WeightsMismatchError,
)
from .safe_load import encode_state, load_state_file, safe_torch_load, save_state_file
from .weights import (
    load_state_dict_strict,
    load_weights,
    read_safetensors,
    read_weights_metadata,
    save_weights,
    strip_prefixes,
    tensors_sha256,
    unwrap_model,
    write_safetensors,
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
    "NoValidCheckpointError",
    "NonFiniteCheckpointError",
    "UnsafeCheckpointError",
    "UnsupportedWeightsFileError",
    "WeightsMismatchError",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "encode_state",
    "load_state_dict_strict",
    "load_state_file",
    "load_weights",
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
