"""Patch-whitening initialisation of a network's first convolution.

The first conv of David Page's DAWNBench ResNet-9 ("How to Train Your ResNet 8: Bag of
Tricks", 2019) and of airbench (Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single
GPU", arXiv:2404.00498) starts as a whitening transform of the training images' patches:
each filter is an eigenvector ``v`` of the covariance of the ``C × kh × kw`` input patches,
scaled by ``1 / sqrt(eigenvalue + eps)``, so the conv's outputs are decorrelated and of unit
variance on the data (``eps`` keeps the noise-level directions from being blown up). In
airbench this cut the epochs to 94 % from 34 to 21; Page freezes the layer, airbench too.

With ``d = C × kh × kw`` patch dimensions and a conv of ``out`` channels, the first
``min(out, d)`` filters are the whitening filters, largest eigenvalue first; when ``out >= 2d``
the next ``d`` are their negatives (airbench's layout, so that a ReLU passes both signs of
every direction); any further filters keep their random initialisation. The layer stays an
ordinary conv: the weights round-trip through every weights file and export unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: airbench's ``eps`` (inputs normalised per channel, as the loaders make them).
WHITEN_EPS = 5e-4
#: Images and patches used to estimate the covariance, at most. airbench uses all patches of
#: 5,000 images (4.5 M 3×3 patches of CIFAR); a 27×27 covariance is estimated well from far
#: fewer, and the fit on 4.5 M patches took 38-63 s on the loaded 2-core development VM
#: (docs/time-to-accuracy.md), so 1 M patches (1,111 CIFAR images) is the cap.
MAX_IMAGES = 5_000
MAX_PATCHES = 1_000_000


@dataclass(frozen=True)
class WhiteningFit:
    """What :func:`whiten_conv_` did: the eigenvalues (largest first), how many filters are
    whitening filters and negated copies, and the images and patches it was fitted on."""

    eigenvalues: torch.Tensor
    whitened: int
    negated: int
    images: int
    patches: int


def patch_covariance(
    images: torch.Tensor, kernel: tuple[int, int], *, chunk: int = 256
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(mean [d], covariance [d, d], count)`` of every ``kernel``-sized patch (stride 1, no
    padding) of ``images [N, C, H, W]``, accumulated in float64 a chunk of images at a time."""
    d = images.shape[1] * kernel[0] * kernel[1]
    total = torch.zeros(d, dtype=torch.float64)
    outer = torch.zeros(d, d, dtype=torch.float64)
    count = 0
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].float()
        # unfold in float32 (twice as fast), sums and products in float64
        patches = F.unfold(part, kernel).transpose(1, 2).reshape(-1, d).double()  # [B*L, d]
        total += patches.sum(0)
        outer += patches.T @ patches
        count += patches.shape[0]
    if count < 2:
        raise ValueError(f"{count} patch(es) of size {kernel}: too few to whiten")
    mean = total / count
    covariance = (outer - count * torch.outer(mean, mean)) / (count - 1)
    return mean, covariance, count


def whitening_filters(
    images: torch.Tensor, kernel: tuple[int, int], *, eps: float = WHITEN_EPS
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(filters [d, C, kh, kw], eigenvalues [d], patches)``: the eigenvectors of the
    patch covariance scaled by ``1 / sqrt(eigenvalue + eps)``, largest eigenvalue first."""
    _, covariance, count = patch_covariance(images, kernel)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues.flip(0).clamp_min(0), eigenvectors.flip(1)
    filters = eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]
    shape = (filters.shape[0], images.shape[1], kernel[0], kernel[1])
    return filters.reshape(shape), eigenvalues, count


def whitening_image_count(height: int, width: int, kernel: tuple[int, int]) -> int:
    """How many images to fit on: at most 5,000 (airbench) and :data:`MAX_PATCHES` patches."""
    positions = max(1, (height - kernel[0] + 1) * (width - kernel[1] + 1))
    return max(2, min(MAX_IMAGES, MAX_PATCHES // positions))


@torch.no_grad()
def whiten_conv_(conv: nn.Conv2d, images: torch.Tensor, *, eps: float = WHITEN_EPS) -> WhiteningFit:
    """Set ``conv``'s filters to patch-whitening filters fitted on ``images`` (normalised
    ``[N, C, H, W]`` floats, as the network sees them); see the module docstring."""
    if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
        raise ValueError(f"patch whitening needs an ordinary nn.Conv2d, got {conv!r}")
    if images.ndim != 4 or images.shape[1] != conv.in_channels:
        raise ValueError(
            f"patch whitening needs [N, {conv.in_channels}, H, W] images, got {tuple(images.shape)}"
        )
    kernel = (int(conv.kernel_size[0]), int(conv.kernel_size[1]))
    images = images[: whitening_image_count(images.shape[2], images.shape[3], kernel)]
    filters, eigenvalues, count = whitening_filters(images.cpu(), kernel, eps=eps)
    d, out = filters.shape[0], conv.out_channels
    whitened = min(out, d)
    weight = conv.weight
    weight[:whitened] = filters[:whitened].to(weight)
    negated = d if out >= 2 * d else 0
    if negated:
        weight[d : 2 * d] = -filters.to(weight)
    return WhiteningFit(eigenvalues.float(), whitened, negated, int(images.shape[0]), count)


__all__ = [
    "MAX_IMAGES",
    "MAX_PATCHES",
    "WHITEN_EPS",
    "WhiteningFit",
    "patch_covariance",
    "whiten_conv_",
    "whitening_filters",
    "whitening_image_count",
]
