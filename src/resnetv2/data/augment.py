"""Batched data augmentation as tensor operations, reproducible through a ``torch.Generator``.

Each preset transforms a whole ``[B, C, H, W]`` batch (uint8 or float, values on the image's
own 0..255 or 0..1 scale) on whatever device it lives on. Random parameters are drawn on the
CPU from the given generator and then moved to the batch's device, so the same generator
gives the same augmentation on CPU and GPU. Output shape and dtype equal the input's.

Presets (``AUGMENTATIONS``):

``standard``
    He et al. 2016, "Identity Mappings in Deep Residual Networks" (following "Deep Residual
    Learning", Sec. 4.2): pad 4 pixels on each side, take a random crop of the original size,
    flip horizontally with probability 1/2.
``cutout``
    ``standard``, then one random square of :data:`CUTOUT_SIZE` pixels per image painted with
    the padding colour (DeVries & Taylor 2017, "Improved Regularization of Convolutional
    Neural Networks with Cutout": the square's centre is uniform over the image, so it may be
    clipped at a border). A regulariser for nets that fit the training set well before the
    end of a short schedule (the ``cifar-cpu`` recipe).
``seed``
    The seed tutorial's Keras ``ImageDataGenerator(rotation_range=30, width_shift_range=0.2,
    height_shift_range=0.2, zoom_range=0.15, shear_range=0.15, horizontal_flip=True)`` as one
    batched random affine: rotation ±30°, shifts ±20 % of width/height, independent x/y zoom
    in [0.85, 1.15], shear ±0.15° (tf.keras reads ``shear_range`` in degrees), bilinear
    sampling, edge pixels replicated outside the image (Keras ``fill_mode='nearest'``).
``digits``
    For small centred glyphs: shifts ±1 pixel, rotation ±10°, zoom in [0.9, 1.1], black fill,
    and no flips (a mirrored digit is a different or invalid symbol).
``none``
    Identity.

Flips (``flip``, the presets that flip: ``standard``, ``cutout``, ``seed``):

``random``
    Each image is mirrored with probability 1/2, drawn afresh every epoch.
``alternate``
    airbench's alternating flip (Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single
    GPU", arXiv:2404.00498): each image gets one random first choice from the seed
    (:func:`first_flips`), and is mirrored in odd epochs exactly when it was not in even ones,
    so every two consecutive epochs show each image once each way (fewer repeated views;
    airbench's epochs to 94 % fell from 10.8 to 9.9). The pattern is a function of
    ``(seed, sample index, epoch)`` only, so a resumed run sees the same flips. The random
    draws of the crop and cutout are unchanged (the flip draws are made and overridden).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from resnetv2.data.rng import generator_for
from resnetv2.errors import DataError


@dataclass(frozen=True)
class Augmentation:
    """One preset of :data:`AUGMENTATIONS`."""

    #: ``apply(batch, generator, fill, flips) -> batch``, as :func:`augment_batch` describes.
    apply: Callable[..., torch.Tensor]
    #: Whether it mirrors images, and so whether ``flip='alternate'`` applies to it.
    flips: bool = False
    #: Whether it interpolates: :func:`augment_pixels` then hands it float32 pixels.
    resamples: bool = False


def _none(batch, generator, fill, flips):
    return batch


def _standard(batch, generator, fill, flips):
    return pad_crop_flip(batch, generator, padding=STANDARD_PADDING, fill=fill, flips=flips)


def _cutout(batch, generator, fill, flips):
    return cutout(_standard(batch, generator, fill, flips), generator, CUTOUT_SIZE, fill=fill)


def _seed(batch, generator, fill, flips):
    return random_affine(batch, generator, SEED_AFFINE, flips=flips)


def _digits(batch, generator, fill, flips):
    return random_affine(batch, generator, DIGITS_AFFINE, flips=flips)


AUGMENTATIONS: dict[str, Augmentation] = {
    "standard": Augmentation(_standard, flips=True),
    "cutout": Augmentation(_cutout, flips=True),
    "seed": Augmentation(_seed, flips=True, resamples=True),
    "digits": Augmentation(_digits, resamples=True),
    "none": Augmentation(_none),
}
"""The augmentation presets: name → :class:`Augmentation`. The config's ``data.augment``
values and the CLI's ``--augment`` choices are its keys."""

FLIP_MODES = ("random", "alternate")
"""How the flipping presets choose which images to mirror (see the module docstring)."""


def check_flip(flip: str, augment: str) -> str:
    """``flip`` if it is a mode that ``augment`` can use, else a :class:`DataError`."""
    if flip not in FLIP_MODES:
        raise DataError(f"unknown flip mode {flip!r}; valid: {', '.join(FLIP_MODES)}")
    entry = AUGMENTATIONS.get(augment)
    if flip == "alternate" and not (entry is not None and entry.flips):
        flipping = [name for name, a in AUGMENTATIONS.items() if a.flips]
        raise DataError(
            f"flip 'alternate' needs an augmentation that flips ({', '.join(flipping)}); "
            f"augment {augment!r} never mirrors an image"
        )
    return flip


def first_flips(seed: int, num_samples: int) -> torch.Tensor:
    """``[num_samples]`` bools: whether each sample is mirrored in even epochs under
    ``flip='alternate'`` (one fair coin per sample from ``seed``)."""
    return torch.rand(num_samples, generator=generator_for(seed, "first-flip")) < 0.5


def alternating_flips(first: torch.Tensor, indices: torch.Tensor, epoch: int) -> torch.Tensor:
    """The flips of samples ``indices`` in ``epoch``: their first choice, inverted in odd
    epochs (airbench's alternating flip)."""
    chosen = first[indices.cpu()]
    return ~chosen if epoch % 2 else chosen


def check_augmentation(name: str) -> str:
    """Return ``name`` if it is a preset, else raise ``ValueError`` listing the valid ones."""
    if name not in AUGMENTATIONS:
        raise DataError(
            f"unknown augmentation {name!r}; valid: {', '.join(map(repr, AUGMENTATIONS))}"
        )
    return name


@dataclass(frozen=True)
class AffineRanges:
    """Ranges of one random affine preset (all symmetric around the identity)."""

    rotation_deg: float
    shear_deg: float
    zoom: float
    independent_zoom: bool
    shift_fraction: float = 0.0
    shift_pixels: float = 0.0
    flip: bool = False
    padding_mode: str = "zeros"


SEED_AFFINE = AffineRanges(
    rotation_deg=30.0,
    shear_deg=0.15,
    zoom=0.15,
    independent_zoom=True,
    shift_fraction=0.2,
    flip=True,
    padding_mode="border",
)
DIGITS_AFFINE = AffineRanges(
    rotation_deg=10.0, shear_deg=0.0, zoom=0.1, independent_zoom=False, shift_pixels=1.0
)

STANDARD_PADDING = 4
#: Side of the ``cutout`` square. DeVries & Taylor use 16 for CIFAR-10 over 200 epochs; short
#: schedules want less: for the 60-epoch ``cifar-cpu`` recipe 12 was too strong (89.56 %,
#: train accuracy 91 %) and 8 gave 90.12 % (docs/time-to-accuracy.md).
CUTOUT_SIZE = 8


def augment_batch(
    batch: torch.Tensor,
    name: str,
    generator: torch.Generator,
    *,
    fill: float | Sequence[float] = 0.0,
    flips: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply preset ``name`` to ``batch``; ``fill`` is the padding colour of ``standard``.
    ``flips`` (``[B]`` bools) decides which images a flipping preset mirrors instead of its
    random draw (:func:`alternating_flips`)."""
    check_augmentation(name)
    _check_batch(batch)
    return AUGMENTATIONS[name].apply(batch, generator, fill, flips)


def augment_pixels(
    images: torch.Tensor,
    name: str,
    generator: torch.Generator,
    *,
    fill: float | Sequence[float] = 0.0,
    flips: torch.Tensor | None = None,
) -> torch.Tensor:
    """Augment uint8 0..255 ``[B, C, H, W]`` pixels before normalisation: the one recipe step
    that the cached loader (per batch) and the streaming loader (per sample) both call.

    ``standard`` and ``cutout`` fill with ``fill`` and stay uint8; the presets that resample
    (the affine ones) get float32 and return float32 (not rounded), so their black or edge
    fills stay in image space.
    """
    check_augmentation(name)
    if AUGMENTATIONS[name].resamples:
        images = images.to(torch.float32)
    return augment_batch(images, name, generator, fill=fill, flips=flips)


def _check_batch(batch: torch.Tensor) -> None:
    if batch.ndim != 4:
        raise DataError(f"augmentation needs a [B, C, H, W] batch, got shape {tuple(batch.shape)}")


def cutout(
    batch: torch.Tensor,
    generator: torch.Generator,
    size: int = CUTOUT_SIZE,
    *,
    fill: float | Sequence[float] = 0.0,
) -> torch.Tensor:
    """Paint one ``size``×``size`` square per image with ``fill`` (DeVries & Taylor 2017).

    The centre is drawn uniformly over the image and the square clipped at the borders, as in
    the paper. One mask for the whole batch, built by broadcasting: no per-image loop.
    """
    _check_batch(batch)
    count, channels, height, width = batch.shape
    centres = torch.rand(count, 2, generator=generator)
    device = batch.device
    cy = (centres[:, 0] * height).long().to(device)
    cx = (centres[:, 1] * width).long().to(device)
    half = size // 2
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    inside_y = (rows >= (cy - half)[:, None]) & (rows < (cy - half + size)[:, None])
    inside_x = (cols >= (cx - half)[:, None]) & (cols < (cx - half + size)[:, None])
    mask = (inside_y[:, :, None] & inside_x[:, None, :])[:, None]  # [B, 1, H, W]
    return torch.where(mask, _fill_tensor(fill, channels, batch), batch)


def pad_crop_flip(
    batch: torch.Tensor,
    generator: torch.Generator,
    *,
    padding: int = STANDARD_PADDING,
    fill: float | Sequence[float] = 0.0,
    flips: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pad by ``padding`` pixels with ``fill``, random crop back to size, random h-flip
    (or the given ``flips``).

    The He et al. (2016) CIFAR augmentation. Implemented as a single ``gather`` from the
    padded batch, with the crop offset and the flip folded into the index, so it costs about
    one copy of the batch whatever its dtype or device.
    """
    _check_batch(batch)
    size, channels, height, width = batch.shape
    offsets = torch.randint(0, 2 * padding + 1, (size, 2), generator=generator)
    drawn = torch.rand(size, generator=generator) < 0.5
    flips = drawn if flips is None else flips
    device = batch.device
    offsets, flips = offsets.to(device), flips.to(device)

    padded_w = width + 2 * padding
    padded = batch.new_empty((size, channels, height + 2 * padding, padded_w))
    padded.copy_(_fill_tensor(fill, channels, batch).expand_as(padded))
    padded[:, :, padding : padding + height, padding : padding + width] = batch

    cols = torch.arange(width, device=device)
    cols = torch.where(flips[:, None], width - 1 - cols, cols) + offsets[:, 1:2]
    rows = torch.arange(height, device=device) + offsets[:, 0:1]
    index = (rows[:, :, None] * padded_w + cols[:, None, :]).view(size, 1, height * width)
    out = padded.view(size, channels, -1).gather(2, index.expand(size, channels, -1))
    return out.view(size, channels, height, width)


def _fill_tensor(fill: float | Sequence[float], channels: int, like: torch.Tensor) -> torch.Tensor:
    values = (
        [float(fill)] * channels if isinstance(fill, (int, float)) else [float(v) for v in fill]
    )
    if len(values) != channels:
        raise DataError(f"fill needs 1 or {channels} values, got {len(values)}")
    if not like.is_floating_point():
        values = [min(max(round(v), 0), 255) for v in values]
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, channels, 1, 1)


def random_affine(
    batch: torch.Tensor,
    generator: torch.Generator,
    ranges: AffineRanges,
    *,
    flips: torch.Tensor | None = None,
) -> torch.Tensor:
    """One random affine per image (rotation, shear, zoom, shift, optional flip), bilinear;
    ``flips`` replaces the random flip of a preset that flips."""
    _check_batch(batch)
    size, _, height, width = batch.shape
    # A fixed number of draws per image keeps the stream layout independent of the ranges.
    u = torch.rand((size, 6), generator=generator, dtype=torch.float64) * 2 - 1
    flip_draw = torch.rand(size, generator=generator, dtype=torch.float64)
    zoom_x = 1 + u[:, 2] * ranges.zoom
    theta = affine_theta(
        height,
        width,
        angle_deg=u[:, 0] * ranges.rotation_deg,
        shear_deg=u[:, 1] * ranges.shear_deg,
        zoom_x=zoom_x,
        zoom_y=1 + u[:, 3] * ranges.zoom if ranges.independent_zoom else zoom_x,
        shift_x=u[:, 4] * (ranges.shift_fraction * width + ranges.shift_pixels),
        shift_y=u[:, 5] * (ranges.shift_fraction * height + ranges.shift_pixels),
        flip=_affine_flips(ranges, flip_draw, flips),
    )
    return apply_affine(batch, theta, padding_mode=ranges.padding_mode)


def _affine_flips(
    ranges: AffineRanges, draw: torch.Tensor, flips: torch.Tensor | None
) -> torch.Tensor:
    if not ranges.flip:
        return torch.zeros(draw.shape[0], dtype=torch.bool)
    return (draw < 0.5) if flips is None else flips.cpu()


def affine_theta(
    height: int,
    width: int,
    *,
    angle_deg: torch.Tensor,
    shear_deg: torch.Tensor,
    zoom_x: torch.Tensor,
    zoom_y: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
    flip: torch.Tensor,
) -> torch.Tensor:
    """``[B, 2, 3]`` matrices for ``F.affine_grid`` from per-image parameters in pixels/degrees.

    Composition follows Keras' ``apply_affine_transform``: input coordinates are
    ``R · Shear · Zoom · Flip · output + R · shift`` about the image centre, with the flip
    applied last to the image (first to the output coordinates), as Keras flips after the
    affine transform.
    """
    angle = torch.deg2rad(angle_deg.double())
    shear = torch.deg2rad(shear_deg.double())
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    zeros, ones = torch.zeros_like(shear), torch.ones_like(shear)
    # Keras' shear in (row, col) is [[1, -sin s], [0, cos s]]; this is the same in (x, y).
    shear_m = torch.stack(
        [torch.stack([torch.cos(shear), zeros], -1), torch.stack([-torch.sin(shear), ones], -1)],
        -2,
    )
    mirror = torch.where(flip.bool(), -1.0, 1.0).double()
    zoom_flip = torch.diag_embed(torch.stack([zoom_x.double() * mirror, zoom_y.double()], -1))
    linear = rotation @ shear_m @ zoom_flip
    shift = torch.stack([shift_x.double(), shift_y.double()], -1)[:, :, None]
    translation = (rotation @ shift)[:, :, 0]

    # affine_grid works in [-1, 1] coordinates per axis; conjugating by the half-size keeps
    # rotations rigid on non-square images.
    half = torch.tensor([width / 2, height / 2], dtype=torch.float64)
    theta = torch.empty((angle.shape[0], 2, 3), dtype=torch.float64)
    theta[:, :, :2] = linear * half[None, None, :] / half[None, :, None]
    theta[:, :, 2] = translation / half[None, :]
    return theta


def apply_affine(
    batch: torch.Tensor, theta: torch.Tensor, *, padding_mode: str = "zeros"
) -> torch.Tensor:
    """Resample ``batch`` through ``theta`` (bilinear); uint8 in, rounded uint8 out."""
    work = batch if batch.is_floating_point() else batch.to(torch.float32)
    grid = F.affine_grid(
        theta.to(work.dtype).to(batch.device), list(work.shape), align_corners=False
    )
    out = F.grid_sample(work, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    if batch.is_floating_point():
        return out
    return out.round_().clamp_(0, 255).to(batch.dtype)
