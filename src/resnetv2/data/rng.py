"""Seed derivation: independent, reproducible random streams from a user seed plus labels.

Every random decision in the data layer (split membership, epoch order, the augmentation of
one batch or one sample) gets its own seed derived by hashing, so that it depends only on
*what* it is for — never on how many random numbers something else drew before it. That is
what makes a mid-epoch resume and a change of worker count reproduce the same data.
"""

from __future__ import annotations

import hashlib

import torch

_SEED_MASK = (1 << 63) - 1


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from ``parts`` (stable across Python, NumPy and PyTorch versions)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _SEED_MASK


def generator_for(*parts: int | str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` of ``parts``."""
    generator = torch.Generator()
    generator.manual_seed(derive_seed(*parts))
    return generator
