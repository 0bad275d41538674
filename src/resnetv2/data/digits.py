"""scikit-learn's ``digits``: 1,797 real 8×8 handwritten digits, shipped with scikit-learn.

The smallest real image dataset available offline; it lets every test and tutorial train a
ResNet end to end in seconds. Pixels hold 17 grey levels (0..16), mapped linearly to 0..255.
"""

from __future__ import annotations

import numpy as np
import torch

DIGITS_VAL_SPLIT = 0.2
"""Validation fraction of the fixed split (stratified; 1,438 train / 359 val images)."""

DIGITS_SPLIT_SEED = 0
"""Seed of the fixed split, independent of the run's seed so results stay comparable."""


def load_digits_arrays() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Return uint8 images ``[1797, 1, 8, 8]``, int64 labels and class names ``'0'..'9'``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    levels = np.asarray(digits.images, dtype=np.float64)
    images = np.rint(levels * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = np.asarray(digits.target, dtype=np.int64)
    class_names = [str(name) for name in digits.target_names]
    return torch.from_numpy(images), torch.from_numpy(labels), class_names
