"""Accounting for images the decoding policy refused: counts by cause and one summary warning.

A dataset that silently loses files is a silent bug; a warning per file buries the signal.
So skipped files are collected and reported once, with counts and the first few names.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

from resnetv2.data.decode import BadImageError
from resnetv2.errors import DataError

ON_BAD_IMAGE = ("skip", "error")
"""Valid values of ``on_bad_image``: skip and count refused files, or stop at the first."""

SUMMARY_NAMES = 5


class BadImageWarning(UserWarning):
    """Summary of images skipped by the decoding policy."""


@dataclass
class SkippedImages:
    """Files that were skipped, each with the reason the decoding policy gave."""

    errors: list[BadImageError] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.errors)

    @property
    def files(self) -> list[str]:
        return [error.path for error in self.errors]

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(error.kind for error in self.errors).items()))

    def extend(self, errors: list[BadImageError]) -> None:
        known = set(self.files)
        self.errors.extend(error for error in errors if error.path not in known)

    def summary(self, total: int | None = None, what: str = "images") -> str:
        """One line: how many were skipped, counts per cause, the first few files."""
        if not self.errors:
            return f"no {what} skipped"
        of_total = f" of {total:,}" if total is not None else ""
        kinds = ", ".join(f"{kind}: {n}" for kind, n in self.by_kind().items())
        shown = "; ".join(f"{e.path} ({e.reason})" for e in self.errors[:SUMMARY_NAMES])
        more = f"; and {self.count - SUMMARY_NAMES} more" if self.count > SUMMARY_NAMES else ""
        return (
            f"skipped {self.count:,}{of_total} {what} that could not be decoded "
            f"({kinds}): {shown}{more}"
        )

    def __bool__(self) -> bool:
        return bool(self.errors)


def check_on_bad_image(on_bad_image: str) -> str:
    if on_bad_image not in ON_BAD_IMAGE:
        raise DataError(
            f"on_bad_image must be one of {', '.join(map(repr, ON_BAD_IMAGE))}; "
            f"got {on_bad_image!r}"
        )
    return on_bad_image


def warn_skipped(skipped: SkippedImages, total: int | None = None, what: str = "images") -> None:
    """Emit the single summary warning (nothing when no file was skipped)."""
    if skipped:
        warnings.warn(skipped.summary(total, what), BadImageWarning, stacklevel=3)
