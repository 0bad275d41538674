"""Per-channel mean and standard deviation, and the normalisation that uses them.

Statistics are computed on the training split only (never on validation data) and reported
on the 0..1 scale, the convention of torchvision's ``Normalize``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from resnetv2.errors import DataError


class ChannelHistogram:
    """Running per-channel 256-bin histograms of uint8 images, for exact mean/std in
    bounded memory: batches (or single images) are added one at a time and only
    ``C × 256`` counts are kept, whatever the number or size of the images."""

    def __init__(self) -> None:
        self.counts: torch.Tensor | None = None

    def add(self, images: torch.Tensor) -> None:
        """Count the pixels of uint8 ``[N, C, H, W]`` (or one ``[C, H, W]``) images."""
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[0] == 0:
            raise DataError(
                f"need a non-empty uint8 [N, C, H, W] batch, got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        counts = torch.stack(
            [
                torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
                for c in range(images.shape[1])
            ]
        )
        if self.counts is None:
            self.counts = counts
        elif self.counts.shape != counts.shape:
            raise DataError(
                f"images with {counts.shape[0]} channels after {self.counts.shape[0]}-channel ones"
            )
        else:
            self.counts += counts

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and (population) std on the 0..1 scale."""
        if self.counts is None:
            raise DataError("no images were counted")
        levels = torch.arange(256, dtype=torch.float64)
        means, stds = [], []
        for counts in self.counts:
            total = counts.sum()
            mean = (counts * levels).sum() / total
            variance = (counts * (levels - mean).square()).sum() / total
            means.append(float(mean) / 255)
            stds.append(float(variance.sqrt()) / 255)
        return tuple(means), tuple(stds)


def compute_mean_std(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 ``[N, C, H, W]`` images, 0..1 scale.

    Exact: built from a 256-bin histogram per channel (:class:`ChannelHistogram`), so no
    float sum loses precision however many pixels there are (and it is several times faster
    than float arithmetic).
    """
    histogram = ChannelHistogram()
    histogram.add(images if images.ndim != 3 else images[None])
    return histogram.mean_std()


def check_mean_std(
    mean: Sequence[float], std: Sequence[float], channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Validate user-given statistics: one value per channel, std > 0."""
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if len(mean) != channels or len(std) != channels:
        raise DataError(
            f"mean and std need {channels} value(s) each (one per channel); "
            f"got {len(mean)} and {len(std)}"
        )
    if any(not v > 0 for v in std):
        raise DataError(f"std values must be positive, got {std}")
    return mean, std


class Normalizer:
    """``(x / 255 - mean) / std`` for 0..255 batches, as one fused multiply-add per element."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device):
        mean_t = torch.tensor(mean, dtype=torch.float32)
        std_t = torch.tensor(std, dtype=torch.float32)
        self.scale = (1.0 / (255.0 * std_t)).view(1, -1, 1, 1).to(device)
        self.shift = (-mean_t / std_t).view(1, -1, 1, 1).to(device)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        # Broadcasting addcmul is an order of magnitude slower on CPU than two in-place ops.
        return batch.to(torch.float32).mul_(self.scale).add_(self.shift)
