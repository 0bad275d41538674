"""Class activation maps drawn over the image the model saw (``predict --cam``, the mistakes
grid): the image scaled up by a whole factor (nearest neighbour, so its pixels stay the
model's pixels), the map upsampled bilinearly to the same size, coloured with the ``jet``
colour map (red = most evidence) and blended at ``alpha``."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

MIN_SIDE = 256
"""Overlays are scaled up to at least this many pixels on their short side."""


def display_scale(height: int, width: int, min_side: int = MIN_SIDE) -> int:
    """The whole factor that brings the short side of an image to at least ``min_side``."""
    return max(1, math.ceil(min_side / max(1, min(height, width))))


def rgb_pixels(pixels: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 ``[C, H, W]`` (C = 1 or 3) as ``[H, W, 3]`` RGB (grey repeated)."""
    array = np.asarray(pixels.cpu() if isinstance(pixels, torch.Tensor) else pixels)
    array = array.transpose(1, 2, 0)
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def cam_overlay(
    pixels: torch.Tensor | np.ndarray,
    cam: torch.Tensor,
    *,
    min_side: int = MIN_SIDE,
    alpha: float = 0.45,
) -> np.ndarray:
    """uint8 ``[H·s, W·s, 3]``: ``pixels`` (uint8 ``[C, H, W]``) with the map ``cam``
    (``[h, w]``, as :func:`resnetv2.evaluation.cam.class_activation_maps` returns it) on top."""
    from matplotlib import colormaps

    image = rgb_pixels(pixels)
    scale = display_scale(*image.shape[:2], min_side)
    image = image.repeat(scale, axis=0).repeat(scale, axis=1).astype(np.float32)
    heat = display_maps(torch.as_tensor(cam)[None], image.shape[:2])[0].numpy()
    colour = colormaps["jet"](heat)[..., :3] * 255
    blended = (1 - alpha) * image + alpha * colour
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def save_png(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an ``[H, W, 3]`` uint8 array as a PNG, atomically."""
    from PIL import Image

    from resnetv2.io.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def display_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[N, h, w]`` maps as ``[N, H, W]`` in [0, 1] at ``size``: the positive part, each
    map divided by its maximum, then bilinearly upsampled (half-pixel centres, so the map
    stays aligned with the image)."""
    positive = maps.detach().float().clamp_min(0)
    peak = positive.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    scaled = positive / peak
    up = F.interpolate(scaled[:, None], size=tuple(size), mode="bilinear", align_corners=False)
    return up[:, 0].clamp(0, 1)
