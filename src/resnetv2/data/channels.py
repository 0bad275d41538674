"""Channel conversion for decoded uint8 image tensors (grayscale ↔ RGB).

Used when a model's input channels differ from the data's: weights trained on 1-channel
digits fine-tuned on a folder of (RGB-decoded) PNGs, or a 3-channel net trained on digits.
RGB → grayscale uses the ITU-R 601-2 luma transform with Pillow's exact integer arithmetic
(``Image.convert("L")``), so a tensor converted here equals the same image converted by PIL.
Grayscale → RGB repeats the channel.
"""

from __future__ import annotations

import torch

from resnetv2.errors import DataError
from resnetv2.preprocessing_spec import VALID_CHANNELS

# Pillow's L = (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16
_LUMA = (19595, 38470, 7471)
_CHUNK = 4096  # images per step: bounds the int32 temporary for large datasets


def check_channels(channels: int | None) -> int | None:
    if channels is None:
        return None
    if isinstance(channels, bool) or channels not in VALID_CHANNELS:
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return channels


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """``images`` (uint8 ``[N, C, H, W]``, C in 1 or 3) with ``channels`` channels."""
    check_channels(channels)
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have != 3:
        raise DataError(f"cannot convert {have}-channel images to {channels} channels")
    weights = torch.tensor(_LUMA, dtype=torch.int32).view(1, 3, 1, 1)
    out = torch.empty((images.shape[0], 1, *images.shape[2:]), dtype=torch.uint8)
    for start in range(0, images.shape[0], _CHUNK):
        chunk = images[start : start + _CHUNK].to(torch.int32)
        luma = ((chunk * weights).sum(1, keepdim=True) + 0x8000) >> 16
        out[start : start + _CHUNK] = luma.to(torch.uint8)
    return out
