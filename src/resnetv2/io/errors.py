"""The error and warning types raised by :mod:`resnetv2.io`.

Every error names its file and says what to do. Each also derives from the built-in exception
a caller would catch (``OSError``, ``ValueError``, or ``RuntimeError`` as ``load_state_dict``).
"""

from __future__ import annotations

from collections.abc import Sequence

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


class UnsupportedWeightsFileError(CheckpointError, ValueError):
    """A weights path whose extension no loader reads (an image, a ``.keras`` or ``.npy``
    file given where weights belong)."""


class UnsafeCheckpointError(CheckpointError, ValueError):
    """A pickle-based file would need to run code to load; it was refused, never executed."""


class WeightsMismatchError(CheckpointError, RuntimeError):
    """A state dict does not fit a model. The lists are also available as ``missing``,
    ``unexpected`` and ``shape_mismatches`` (``(name, expected_shape, got_shape)`` tuples)."""

    def __init__(
        self,
        message: str,
        *,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
        shape_mismatches: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]] = (),
    ) -> None:
        super().__init__(message)
        self.missing, self.unexpected = list(missing), list(unexpected)
        self.shape_mismatches = list(shape_mismatches)


class NonFiniteCheckpointError(CheckpointError, ValueError):
    """A model state holding NaN or Inf was refused; nothing was written."""


class NoValidCheckpointError(CheckpointError, FileNotFoundError):
    """Checkpoints were asked for but none that passes verification exists."""


class CheckpointWarning(UserWarning):
    """A corrupt checkpoint was skipped, a save landed below later checkpoints, or an old
    checkpoint could not be pruned: worth attention, not worth stopping for."""
