"""Resizing to a fixed ``(H, W)``: shorter side to fit, then a centre crop.

Scaling so that the image covers the target and cropping the overflow keeps the aspect
ratio (objects are never squashed) at the cost of losing a border on the long side. The same
rule is used for PIL images (file decoding) and for uint8 tensors (built-in datasets).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from PIL import Image


def covering_size(height: int, width: int, target: tuple[int, int]) -> tuple[int, int]:
    """Smallest ``(h, w)`` with the input's aspect ratio that covers ``target``."""
    target_h, target_w = target
    scale = max(target_h / height, target_w / width)
    return max(target_h, math.ceil(height * scale - 1e-9)), max(
        target_w, math.ceil(width * scale - 1e-9)
    )


def _centre_box(height: int, width: int, target: tuple[int, int]) -> tuple[int, int]:
    return (height - target[0]) // 2, (width - target[1]) // 2


def resize_pil(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize a PIL image to ``size=(H, W)`` (antialiased bilinear, then centre crop)."""
    width, height = img.size
    if (height, width) == tuple(size):
        return img
    new_h, new_w = covering_size(height, width, size)
    if (new_h, new_w) != (height, width):
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = _centre_box(new_h, new_w, size)
    return img.crop((left, top, left + size[1], top + size[0]))


def resize_uint8_batch(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a uint8 ``[N, C, H, W]`` batch to ``size`` with the same rule as
    :func:`resize_pil` (antialiased bilinear, rounded back to uint8)."""
    height, width = images.shape[-2:]
    if (height, width) == tuple(size):
        return images
    new_h, new_w = covering_size(height, width, size)
    out = []
    # Chunks bound the float32 working copy when a whole dataset is resized.
    for chunk in images.split(1024):
        resized = F.interpolate(
            chunk.float(), size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
        )
        top, left = _centre_box(new_h, new_w, size)
        resized = resized[..., top : top + size[0], left : left + size[1]]
        out.append(resized.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out) if out else images.new_empty((0, images.shape[1], *size))
