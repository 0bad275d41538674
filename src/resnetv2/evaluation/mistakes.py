"""What a model gets wrong: the top confusions and the most confidently wrong images.

:func:`top_confusions` reads the confusion matrix ("cat → dog: 12 of 100" — 12 of the 100
cats were called dogs). :class:`MistakeCollector` rides along an evaluation: it watches the
batches (:meth:`~MistakeCollector.watch`) and the probabilities
(``evaluate(..., on_batch=collector)``) and keeps only the ``limit`` most confident wrong
predictions with their input pixels, so memory stays bounded whatever the dataset size.
:func:`mistake_tiles` turns them into the tiles of ``mistakes.png``, each with the class
activation map of the predicted class (:mod:`resnetv2.evaluation.cam`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class Confusion:
    """``count`` of the ``support`` samples of class ``true`` were predicted ``predicted``."""

    true: str
    predicted: str
    count: int
    support: int

    def __str__(self) -> str:
        return f"{self.true} → {self.predicted}: {self.count} of {self.support}"


def top_confusions(
    confusion: np.ndarray, class_names: Sequence[str], limit: int = 10
) -> list[Confusion]:
    """The off-diagonal cells with the most samples, largest first (ties: by class order)."""
    matrix = np.asarray(confusion, dtype=np.int64)
    support = matrix.sum(axis=1)
    cells = [
        (-int(matrix[t, p]), t, p)
        for t in range(matrix.shape[0])
        for p in range(matrix.shape[1])
        if t != p and matrix[t, p] > 0
    ]
    return [
        Confusion(str(class_names[t]), str(class_names[p]), -neg, int(support[t]))
        for neg, t, p in sorted(cells)[:limit]
    ]


def pixels_of(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` pixels of a batch as a loader gives it: uint8 as it is,
    normalised floats mapped back with ``x · std + mean`` (the inverse of
    :class:`~resnetv2.data.stats.Normalizer`), rounded."""
    if images.dtype == torch.uint8:
        return images.cpu()
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    values = (images.detach().float().cpu() * s + m) * 255
    return values.round().clamp(0, 255).to(torch.uint8)


@dataclass(order=True)
class _Kept:
    probability: float
    index: int
    pixels: torch.Tensor | None = field(compare=False)
    true: int = field(compare=False)
    predicted: int = field(compare=False, default=-1)


@dataclass
class Mistake:
    """One kept mistake: sample ``index`` (in evaluation order), its uint8 pixels, the true
    and predicted class indices and the predicted class's probability."""

    index: int
    pixels: torch.Tensor
    true: int
    predicted: int
    probability: float


class MistakeCollector:
    """The ``limit`` most confidently wrong samples of an evaluation (optionally only those
    whose true class is ``only_class``), with their pixels.

    >>> collector = MistakeCollector(16, mean=prep.mean, std=prep.std)
    >>> evaluate(model, collector.watch(loader), on_batch=collector)
    >>> collector.mistakes()                      # most confident first
    """

    def __init__(
        self,
        limit: int,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        only_class: int | None = None,
    ) -> None:
        self.limit = limit
        self.mean, self.std = tuple(mean), tuple(std)
        self.only_class = only_class
        self.seen = 0
        self.wrong = 0
        self._heap: list[_Kept] = []
        self._images: torch.Tensor | None = None

    def watch(self, batches: Iterable) -> _Watched:
        """``batches`` as they are (length kept), remembering each batch's images for
        :meth:`__call__`."""
        return _Watched(batches, self)

    def __call__(self, probabilities: torch.Tensor, labels: torch.Tensor) -> None:
        confidence, predicted = probabilities.float().max(dim=1)
        wrong = predicted != labels
        if self.only_class is not None:
            wrong &= labels == self.only_class
        self.wrong += int(wrong.sum())
        for i in wrong.nonzero().flatten().tolist():
            item = _Kept(float(confidence[i]), -(self.seen + i), None, int(labels[i]))
            item.predicted = int(predicted[i])
            if len(self._heap) < self.limit:
                item.pixels = self._pixels(i)
                heapq.heappush(self._heap, item)
            elif self.limit and item > self._heap[0]:
                item.pixels = self._pixels(i)
                heapq.heapreplace(self._heap, item)
        self.seen += int(labels.shape[0])

    def _pixels(self, i: int) -> torch.Tensor:
        if self._images is None:
            raise RuntimeError("MistakeCollector.watch(batches) must wrap the evaluated data")
        return pixels_of(self._images[i : i + 1], self.mean, self.std)[0]

    def mistakes(self) -> list[Mistake]:
        """The kept mistakes, most confident first (ties: earlier sample first)."""
        kept = sorted(self._heap, reverse=True)
        return [Mistake(-k.index, k.pixels, k.true, k.predicted, k.probability) for k in kept]


class _Watched:
    def __init__(self, batches: Iterable, collector: MistakeCollector) -> None:
        self.batches, self.collector = batches, collector

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator:
        for images, labels in self.batches:
            self.collector._images = images
            yield images, labels


def both(*callbacks):
    """One ``on_batch`` callback that calls each of ``callbacks`` (``None``s skipped)."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None

    def call(probabilities: torch.Tensor, labels: torch.Tensor) -> None:
        for callback in active:
            callback(probabilities, labels)

    return call


def mistake_tiles(
    mistakes: Sequence[Mistake],
    model,
    normalize,
    class_names: Sequence[str],
    sources: Sequence[str],
    *,
    cam: bool = True,
    batch_size: int = 64,
):
    """:class:`~resnetv2.viz.mistakes.MistakeTile` per mistake; with ``cam`` each carries the
    class activation map of its predicted class drawn over the image. ``normalize`` turns
    uint8 pixels into the model's input (the evaluation's own normalisation)."""
    from resnetv2.evaluation.cam import class_activation_maps
    from resnetv2.viz.cam import cam_overlay
    from resnetv2.viz.mistakes import MistakeTile

    maps: list[torch.Tensor | None] = [None] * len(mistakes)
    if cam and mistakes:
        for start in range(0, len(mistakes), batch_size):
            chunk = mistakes[start : start + batch_size]
            batch = normalize(torch.stack([m.pixels for m in chunk]))
            result = class_activation_maps(model, batch, [m.predicted for m in chunk])
            maps[start : start + len(chunk)] = list(result.maps.cpu())
    tiles = []
    for mistake, cam_map in zip(mistakes, maps):
        source = sources[mistake.index] if mistake.index < len(sources) else f"#{mistake.index}"
        tiles.append(
            MistakeTile(
                pixels=mistake.pixels.numpy(),
                true=str(class_names[mistake.true]),
                predicted=str(class_names[mistake.predicted]),
                probability=mistake.probability,
                source=source,
                overlay=None if cam_map is None else cam_overlay(mistake.pixels, cam_map),
            )
        )
    return tiles
