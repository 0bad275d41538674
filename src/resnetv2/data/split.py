"""Seeded, stratified train/validation splits.

Each class contributes ``round(fraction × n)`` items to validation (halves round up), at least
one when the class has two or more items and never all of them, so that every class is seen
in both training and validation whenever it can be. Membership is decided by hashing
``(seed, item key)``, so it is identical across platforms and library versions, and adding a
file to a class moves no other file across the split.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from resnetv2.data.rng import derive_seed
from resnetv2.errors import DataError


def check_fraction(val_split: float) -> float:
    """Validate a validation fraction: a number strictly between 0 and 1."""
    if isinstance(val_split, bool) or not isinstance(val_split, (int, float)):
        raise TypeError(f"val_split must be a number in (0, 1), e.g. 0.1; got {val_split!r}")
    if not (0.0 < float(val_split) < 1.0) or math.isnan(val_split):
        raise DataError(
            f"val_split must be a fraction strictly between 0 and 1 (e.g. 0.1 for 10 %); "
            f"got {val_split!r}"
        )
    return float(val_split)


def val_count(n: int, val_split: float) -> int:
    """Items a class of ``n`` contributes to validation (see the module docstring)."""
    if n < 2:
        return 0
    count = math.floor(val_split * n + 0.5)
    return min(max(count, 1), n - 1)


def stratified_split(
    labels: Sequence[int],
    val_split: float,
    *,
    seed: int,
    keys: Sequence[str] | None = None,
) -> tuple[list[int], list[int]]:
    """Split item indices into ``(train, val)``, both sorted ascending.

    ``keys`` identify items for the hash (e.g. relative file paths); by default the index.
    """
    val_split = check_fraction(val_split)
    if keys is not None and len(keys) != len(labels):
        raise DataError(f"got {len(keys)} keys for {len(labels)} labels")
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[int(label)].append(index)
    val: list[int] = []
    for members in by_class.values():
        ranked = sorted(
            members,
            key=lambda i: (derive_seed("split", seed, keys[i] if keys is not None else i), i),
        )
        val.extend(ranked[: val_count(len(members), val_split)])
    val_set = set(val)
    train = [i for i in range(len(labels)) if i not in val_set]
    return train, sorted(val)
