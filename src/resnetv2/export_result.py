"""What every export returns (:class:`ExportResult`) and raises (:class:`ExportError`).

Shared by :mod:`resnetv2.export` (ONNX, ``torch.export``) and the Keras twin's exporter
(:mod:`resnetv2.keras.export`), which :mod:`resnetv2.export` calls for ``format="keras"``; both
import it from here, so neither imports the other back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from resnetv2.errors import ResNetV2Error

#: The batch sizes every parity check runs.
PARITY_BATCHES = (1, 7)


class ExportError(ResNetV2Error, RuntimeError):
    """An export failed, or its output differs from the eager model's; nothing was written."""


@dataclass
class ExportResult:
    """Where an export went and how far its outputs are from the eager model's, per batch."""

    path: Path
    format: str
    input_shape: tuple[int, ...]
    max_abs_diff: dict[int, float] = field(default_factory=dict)
    tolerance: float = 1e-4
    checker: str = ""
    output_scale: float = 1.0

    @property
    def allowed(self) -> float:
        """``tolerance`` for outputs of magnitude ≤ 1; scaled with larger outputs, because
        float32 rounding error grows with the values (random nets reach logits of 1e6)."""
        return self.tolerance * max(1.0, self.output_scale)

    @property
    def passed(self) -> bool:
        return bool(self.max_abs_diff) and max(self.max_abs_diff.values()) <= self.allowed

    def summary(self) -> str:
        diffs = ", ".join(f"batch {b}: {d:.2e}" for b, d in sorted(self.max_abs_diff.items()))
        check = f"{self.checker}; " if self.checker else ""
        verdict = "passed" if self.passed else "FAILED"
        scale = f" × max|output| {self.output_scale:.3g}" if self.output_scale > 1 else ""
        return (
            f"{self.format} → {self.path} (input {list(self.input_shape)}); {check}parity "
            f"{verdict} (max |diff| {diffs}; tolerance {self.tolerance:g}{scale})"
        )


__all__ = ["PARITY_BATCHES", "ExportError", "ExportResult"]
