"""Batches cut from an in-memory uint8 tensor: shuffled, augmented and normalised per batch.

The images are moved to the target device once; each batch is an ``index_select``, one
augmentation call and one fused normalisation, so on small images the loader runs far
faster than any model trains. The epoch order and each batch's augmentation come from seeds
derived from ``(seed, epoch)`` and ``(seed, epoch, batch index)``; the loader's whole state
is therefore ``(epoch, position)``, and a run resumed from :meth:`state_dict` sees exactly
the batches it would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

from resnetv2.data.augment import (
    alternating_flips,
    augment_pixels,
    check_augmentation,
    check_flip,
    first_flips,
)
from resnetv2.data.rng import generator_for
from resnetv2.data.stats import Normalizer, check_mean_std, compute_mean_std
from resnetv2.device import one_intra_op_thread
from resnetv2.errors import DataError

STATE_KIND = "resnetv2.TensorBatchLoader"
_CONFIG_KEYS = ("num_samples", "batch_size", "shuffle", "drop_last", "augment", "seed")


def check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def check_resume_state(
    state: dict, expected: dict, *, kind: str, strict: bool = True
) -> tuple[int, int]:
    """Return ``(epoch, position)`` from ``state`` after checking it matches ``expected``.

    A resume that cannot be exact (other data size, batch size, seed...) is refused with the
    list of differences unless ``strict=False``.
    """
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise DataError(f"not a {kind} state: {state!r}")
    changed = [
        f"{key}: saved {state.get(key)!r}, now {value!r}"
        for key, value in expected.items()
        if state.get(key) != value
    ]
    if changed and strict:
        raise DataError(
            "cannot resume the data loader exactly; changed: "
            + "; ".join(changed)
            + " (pass strict=False to resume anyway)"
        )
    epoch, position = state.get("epoch"), state.get("position")
    if not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (epoch, position)
    ):
        raise DataError(
            f"epoch and position must be non-negative ints, got {epoch!r}, {position!r}"
        )
    return epoch, position


class ResumableLoader:
    """Resume bookkeeping shared by the loaders: ``epoch`` and ``position`` (batches handed
    out in that epoch) plus the settings (``CONFIG_KEYS``) that must match for an exact
    resume. Subclasses set ``STATE_KIND`` so a state cannot be fed to the wrong loader."""

    STATE_KIND = "resnetv2.loader"
    CONFIG_KEYS = _CONFIG_KEYS
    epoch: int
    position: int
    num_samples: int
    batch_size: int
    shuffle: bool
    drop_last: bool
    seed: int

    def __len__(self) -> int:
        """Batches per epoch (the last one partial unless ``drop_last``)."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def _order(self, epoch: int) -> torch.Tensor:
        """The sample order of ``epoch``: seeded per epoch when shuffling, else in order."""
        if not self.shuffle:
            return torch.arange(self.num_samples)
        return torch.randperm(self.num_samples, generator=generator_for(self.seed, "order", epoch))

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first batch (for trainers that count epochs themselves)."""
        self.epoch, self.position = int(epoch), 0

    def _config(self) -> dict:
        config = {key: getattr(self, key) for key in self.CONFIG_KEYS}
        # Only when not the default, so states saved before the option existed still match.
        if getattr(self, "flip", "random") != "random":
            config["flip"] = self.flip
        return config

    def state_dict(self) -> dict:
        """JSON-serialisable resume state."""
        return {
            "kind": self.STATE_KIND,
            "epoch": self.epoch,
            "position": self.position,
            **self._config(),
        }

    def load_state_dict(self, state: dict, *, strict: bool = True) -> None:
        """Resume at the saved epoch and position; refuses a state from a different setup."""
        expected = self._config()
        if isinstance(state, dict) and "flip" in state:
            expected.setdefault("flip", "random")  # saved alternating, now random: refused
        self.epoch, self.position = check_resume_state(
            state, expected, kind=self.STATE_KIND, strict=strict
        )


class TensorBatchLoader(ResumableLoader):
    """Iterate ``(x, y)`` batches over uint8 ``images [N, C, H, W]`` and int ``labels [N]``.

    ``x`` is float32, normalised with ``mean``/``std`` (0..1 scale; computed from ``images``
    when not given); ``y`` is int64; both on ``device``. ``augment`` names a preset of
    :mod:`resnetv2.data.augment`; ``standard`` pads with the mean colour, which normalises to
    exactly the zero padding of the He et al. reference code (it pads after normalising).
    ``flip='alternate'`` mirrors each image on alternate epochs
    (:func:`~resnetv2.data.augment.alternating_flips`).

    Each ``iter()`` continues the current epoch from its position and, once the epoch is
    complete, advances to the next. Evaluation loaders (``shuffle=False``,
    ``drop_last=False``, ``augment='none'``) yield every sample exactly once, in order.
    """

    STATE_KIND = STATE_KIND

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        augment: str = "none",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        flip: str = "random",
    ):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise DataError(
                f"images must be a uint8 [N, C, H, W] tensor, got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"labels must be a [N] tensor with N = {images.shape[0]}, got {tuple(labels.shape)}"
            )
        self.batch_size = check_batch_size(batch_size)
        self.augment = check_augmentation(augment)
        self.flip = check_flip(flip, self.augment)
        self._first_flips = first_flips(seed, images.shape[0]) if flip == "alternate" else None
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if mean is None or std is None:
            mean, std = compute_mean_std(images)
        self.mean, self.std = check_mean_std(mean, std, images.shape[1])
        self._images = images.to(self.device)
        self._labels = labels.to(self.device, torch.int64)
        self._normalize = Normalizer(self.mean, self.std, self.device)
        self._fill = [m * 255 for m in self.mean]
        self.epoch = 0
        self.position = 0

    @property
    def num_samples(self) -> int:
        return self._images.shape[0]

    def _order(self, epoch: int) -> torch.Tensor:
        return super()._order(epoch).to(self.device)

    def batch(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``index`` of ``epoch``, computed without touching the loader's position."""
        order = self._order(epoch)
        return self._make_batch(order, epoch, index)

    def _make_batch(
        self, order: torch.Tensor, epoch: int, index: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.device.type != "cpu":
            return self._make_batch_now(order, epoch, index)
        with one_intra_op_thread():
            return self._make_batch_now(order, epoch, index)

    def _make_batch_now(
        self, order: torch.Tensor, epoch: int, index: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = order[index * self.batch_size : (index + 1) * self.batch_size]
        images = self._images.index_select(0, chosen)
        labels = self._labels.index_select(0, chosen)
        if self.augment != "none":
            generator = generator_for(self.seed, "augment", epoch, index)
            flips = None
            if self._first_flips is not None:
                flips = alternating_flips(self._first_flips, chosen, epoch)
            images = augment_pixels(images, self.augment, generator, fill=self._fill, flips=flips)
        return self._normalize(images), labels

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch
        order = self._order(epoch)
        while self.position < len(self):
            index = self.position
            batch = self._make_batch(order, epoch, index)
            # Counted as consumed when handed out: a checkpoint written after the training
            # step on this batch resumes with the next one.
            self.position = index + 1
            yield batch
        self.epoch, self.position = epoch + 1, 0
