"""Resizing to a fixed ``(H, W)``: scale until the image covers the target, then centre-crop.

Scaling so that the image covers the target and cropping the overflow keeps the aspect
ratio (objects are never squashed) at the cost of losing a border on the long side. This is
the project's only resize: files (:func:`resnetv2.data.decode.decode_image`), PIL images,
arrays and the uint8 tensors of built-in datasets all go through :func:`resize_pil`, so the
same picture gives the same pixels whichever way it arrives (Pillow's resampling, which is
antialiased when shrinking).

The rule, with the rounding stated (``docs/data.md``, "Preprocessing"):

1. ``crop_pct`` < 1 enlarges the target first: ``(floor(H / crop_pct), floor(W / crop_pct))``
   (timm's rule), so the final centre crop keeps that fraction of it.
2. ``scale = max(target_h / h, target_w / w)``; the new size is
   ``(ceil(h × scale), ceil(w × scale))`` (a 1e-9 tolerance absorbs float error), so the side
   that limits the scale becomes exactly the target and the other side rounds up.
3. The centre crop starts at ``((new_h - H) // 2, (new_w - W) // 2)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from resnetv2.preprocessing_spec import INTERPOLATIONS as INTERPOLATIONS  # re-exported
from resnetv2.preprocessing_spec import Interpolation

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


def covering_size(height: int, width: int, target: tuple[int, int]) -> tuple[int, int]:
    """Smallest ``(h, w)`` with the input's aspect ratio that covers ``target``."""
    target_h, target_w = target
    scale = max(target_h / height, target_w / width)
    return max(target_h, math.ceil(height * scale - 1e-9)), max(
        target_w, math.ceil(width * scale - 1e-9)
    )


def scaled_target(size: tuple[int, int], crop_pct: float = 1.0) -> tuple[int, int]:
    """The size to cover before the centre crop: ``floor(size / crop_pct)`` per side."""
    if crop_pct == 1.0:
        return int(size[0]), int(size[1])
    return tuple(math.floor(s / crop_pct + 1e-9) for s in size)  # type: ignore[return-value]


def _centre_box(height: int, width: int, target: tuple[int, int]) -> tuple[int, int]:
    return (height - target[0]) // 2, (width - target[1]) // 2


def resize_pil(
    img: Image.Image,
    size: tuple[int, int],
    interpolation: Interpolation = "bilinear",
    crop_pct: float = 1.0,
) -> Image.Image:
    """Resize a PIL image to ``size=(H, W)`` by the module's rule (cover, then centre crop)."""
    width, height = img.size
    if (height, width) == tuple(size) and crop_pct == 1.0:
        return img
    new_h, new_w = covering_size(height, width, scaled_target(size, crop_pct))
    top, left = _centre_box(new_h, new_w, size)
    if new_h * new_w > _max_cover_pixels():
        # A long thin image covering a target of the other shape: the covering image would
        # be too large to build, so the crop's box of the source is resampled straight to
        # the target (the same mapping of output to source pixels, without the intermediate).
        sx, sy = width / new_w, height / new_h
        box = (left * sx, top * sy, (left + size[1]) * sx, (top + size[0]) * sy)
        return img.resize((size[1], size[0]), _RESAMPLE[interpolation], box=box)
    if (new_h, new_w) != (height, width):
        img = img.resize((new_w, new_h), _RESAMPLE[interpolation])
    return img.crop((left, top, left + size[1], top + size[0]))


#: Pixel limit per image: Pillow's own default (``Image.MAX_IMAGE_PIXELS``, ~0.25 GiB RGB),
#: also the most pixels a resize's covering image may have. Defined here, below the
#: decoder, which re-exports it.
DEFAULT_MAX_PIXELS = 89_478_485


def _max_cover_pixels() -> int:
    return DEFAULT_MAX_PIXELS


def resize_uint8_batch(
    images: torch.Tensor,
    size: tuple[int, int],
    interpolation: Interpolation = "bilinear",
    crop_pct: float = 1.0,
) -> torch.Tensor:
    """Resize a uint8 ``[N, C, H, W]`` batch (C = 1 or 3) with :func:`resize_pil`, image by
    image, so in-memory datasets get exactly the pixels their PNG files would."""
    size = (int(size[0]), int(size[1]))
    if tuple(images.shape[-2:]) == size and crop_pct == 1.0:
        return images
    out = torch.empty((images.shape[0], images.shape[1], *size), dtype=torch.uint8)
    arrays = images.permute(0, 2, 3, 1).numpy()
    for i, array in enumerate(arrays):
        picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
        resized = np.asarray(resize_pil(picture, size, interpolation, crop_pct))
        out[i] = torch.from_numpy(resized.reshape(*size, -1).transpose(2, 0, 1).copy())
    return out
