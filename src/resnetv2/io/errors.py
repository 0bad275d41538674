"""The error and warning types raised by :mod:`resnetv2.io`.

Every error names the file it is about and says what the user can do. Each type also derives
from the built-in exception a caller would naturally catch (``OSError`` for failed writes,
``ValueError`` for bad content, ``RuntimeError`` for a model/weights mismatch, as
``nn.Module.load_state_dict`` raises), so generic handlers keep working.
"""

from __future__ import annotations

from resnetv2.errors import ResNetV2Error


class CheckpointError(ResNetV2Error):
    """Base of every io error; a ResNetV2Error, so the CLI reports it as one line (exit 2)."""


class CheckpointWriteError(CheckpointError, OSError):
    """A file could not be written (typically a full disk; ``errno`` and ``filename`` set).
    The previous version of the file, and every earlier checkpoint, is left untouched."""


class CorruptWeightsError(CheckpointError, ValueError):
    """A weights or state file is malformed, truncated, or fails its checksum."""


class CorruptCheckpointError(CheckpointError, ValueError):
    """A checkpoint directory fails verification (missing manifest, size or checksum mismatch)."""


class UnsafeCheckpointError(CheckpointError, ValueError):
    """A pickle-based file would need to run code to load; it was refused, never executed."""


class WeightsMismatchError(CheckpointError, RuntimeError):
    """A state dict does not fit a model: missing keys, unexpected keys or shape mismatches.

    The lists are also available as ``missing``, ``unexpected`` and ``shape_mismatches``
    (tuples of ``(name, expected_shape, got_shape)``).
    """

    def __init__(
        self,
        message: str,
        *,
        missing: list[str] | None = None,
        unexpected: list[str] | None = None,
        shape_mismatches: list[tuple[str, tuple[int, ...], tuple[int, ...]]] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        self.shape_mismatches = list(shape_mismatches or [])


class NonFiniteCheckpointError(CheckpointError, ValueError):
    """A model state holding NaN or Inf was refused; nothing was written."""


class NoValidCheckpointError(CheckpointError, FileNotFoundError):
    """Checkpoints were asked for but none that passes verification exists."""


class CheckpointWarning(UserWarning):
    """A corrupt checkpoint was skipped, a save landed below later checkpoints, or an old
    checkpoint could not be pruned: worth attention, not worth stopping for."""
