"""What autograd saves for backward, layer by layer, from a spec alone (no torch import).

The accounting mirrors what PyTorch's autograd actually saves for each op of
:mod:`resnetv2.nn` (checked tensor-for-tensor against ``torch.autograd.graph.
saved_tensors_hooks`` in ``tests/test_memory.py``):

- conv: its input (the weight is a parameter); batch norm: its input plus two per-channel
  statistics (group norm: two per sample and group); ReLU (in place): its output, which is the
  same storage as the next conv's input and so counted once;
- the residual addition and the subsampled shortcut save nothing; a drop-path mask is one
  value per sample; dropout (on CPU) saves a float mask the size of its input;
- max-pool: its input and int64 indices; the head's linear layers their inputs; cross-entropy
  its log-probabilities and the int64 targets.

With activation checkpointing (Chen et al. 2016, arXiv:1604.06174) only each checkpointed
segment's input is kept; during backward one segment at a time is recomputed.
:func:`segment_bounds` is the segmenting rule, shared with :mod:`resnetv2.nn.recompute`.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from resnetv2.errors import ResNetV2Error
from resnetv2.spec import ResNetV2Spec, UnitSpec, iter_units, stem_out_channels, unit_convs

INT64 = 8


class MemoryEstimateError(ResNetV2Error, ValueError):
    """An invalid memory-estimate request (batch size, input size, optimizer)."""


@dataclass(frozen=True)
class ActivationLedger:
    """Bytes autograd saves for backward, grouped as the checkpointing rule needs them.

    ``units[k]`` is what unit ``k`` saves, ``unit_inputs[k]`` the size of its input (what a
    checkpoint boundary before unit ``k`` keeps alive). ``stem`` and ``head`` (final norm,
    head, loss) are never checkpointed. ``largest_map`` is the biggest single feature map.
    """

    stem: int
    units: tuple[int, ...]
    unit_inputs: tuple[int, ...]
    head: int
    largest_map: int

    @property
    def total(self) -> int:
        return self.stem + sum(self.units) + self.head


def _hw(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _down(size: tuple[int, int], stride: int) -> tuple[int, int]:
    return ((size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1)


class SavedTensorWalker:
    """Per-layer saved-tensor rules; one method per building block of :mod:`resnetv2.nn`."""

    def __init__(self, spec: ResNetV2Spec, batch: int, dtype_bytes: int) -> None:
        self.spec, self.batch, self.fb = spec, batch, dtype_bytes
        self.largest = 0

    def fmap(self, channels: int, size: tuple[int, int]) -> int:
        nbytes = self.batch * channels * _hw(size) * self.fb
        self.largest = max(self.largest, nbytes)
        return nbytes

    def norm_stats(self, channels: int) -> int:
        # BN saves batch mean and inverse std per channel; GN per sample and group.
        if self.spec.norm == "group":
            return 2 * self.batch * self.spec.norm_groups * self.fb
        return 2 * channels * self.fb

    def norm_act(self, channels: int, size: tuple[int, int]) -> int:
        """A BN-ReLU: the norm's input and statistics plus the ReLU output (= next input)."""
        return 2 * self.fmap(channels, size) + self.norm_stats(channels)

    def stem(self, size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
        spec = self.spec
        if spec.stem_type == "none":
            return 0, size
        c = spec.stem_width
        saved = self.fmap(spec.in_channels, size)  # the image, saved by the stem conv
        if spec.stem_type.startswith("conv7x7"):
            conv_hw = _down(size, 2)
            if spec.stem_type == "conv7x7_zeropad_maxpool":
                pool_in = (conv_hw[0] + 2, conv_hw[1] + 2)
                pool_hw = ((pool_in[0] - 3) // 2 + 1, (pool_in[1] - 3) // 2 + 1)
            else:
                pool_in, pool_hw = conv_hw, _down(conv_hw, 2)
            saved += self.fmap(c, pool_in) + self.batch * c * _hw(pool_hw) * INT64
            return saved, pool_hw
        if spec.stem_type == "conv3x3_bn_relu":
            # The first unit skips its own pre-activation and reads this output directly.
            saved += self.norm_act(c, size)
            if spec.stem_dropout:
                saved += 2 * self.fmap(c, size)  # the dropout mask and its output
        return saved, size

    def unit(self, unit: UnitSpec, size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
        saved = self.norm_act(unit.in_channels, size) if unit.preact else 0
        hw = size
        *inner, last = unit_convs(self.spec, unit).branch
        for conv in inner:  # each output, its BN-ReLU, and the next conv's input
            hw = _down(hw, conv.stride)
            saved += self.norm_act(conv.out_channels, hw)
        hw = _down(hw, last.stride)
        if unit.drop_path > 0:
            saved += self.batch * self.fb  # the per-sample keep mask
        return saved, hw

    def head(self, size: tuple[int, int]) -> int:
        spec = self.spec
        c = spec.num_features
        saved = self.norm_act(c, size) if spec.final_norm else 0
        features = c
        vec = self.batch * self.fb
        if spec.head == "dense":
            h = spec.head_hidden
            # Linear input (pooled), ReLU output (= BN1d input), BN1d statistics.
            saved += c * vec + h * vec + 2 * h * self.fb
            saved += self._dropout(h, spec.head_dropout)
            features = h
        saved += self._dropout(features, spec.dropout)
        if spec.num_classes:
            # The classifier's input, then cross-entropy's log-probabilities, targets and weight.
            saved += features * vec + spec.num_classes * vec + self.batch * INT64 + self.fb
        return saved

    def _dropout(self, features: int, rate: float) -> int:
        if not rate:
            return 0
        # CPU dropout multiplies by a float mask and saves it (CUDA's fused kernel saves a
        # one-byte mask: the estimate is then a slight over-count). The dropped output takes
        # the place of the input as the next layer's saved input.
        return self.batch * features * self.fb

    def ledger(self, input_size: tuple[int, int]) -> ActivationLedger:
        stem, size = self.stem(input_size)
        units, inputs = [], []
        for unit in iter_units(self.spec, stem_out_channels(self.spec)):
            inputs.append(self.fmap(unit.in_channels, size))
            saved, size = self.unit(unit, size)
            units.append(saved)
        head = self.head(size)
        return ActivationLedger(stem, tuple(units), tuple(inputs), head, self.largest)


def activation_ledger(
    spec: ResNetV2Spec, *, batch_size: int, input_size: Any, dtype_bytes: int = 4
) -> ActivationLedger:
    """What autograd saves for one training forward pass of ``spec`` (plain, no checkpoint)."""
    size = check_request(batch_size, input_size, dtype_bytes)
    return SavedTensorWalker(spec, batch_size, dtype_bytes).ledger(size)


def segment_bounds(
    num_units: int, segments: int | None, weights: Sequence[float] | None = None
) -> list[tuple[int, int]]:
    """``[start, end)`` unit ranges of ``segments`` consecutive segments.

    ``None`` means one segment per unit. With ``weights`` (the bytes each unit saves, see
    :func:`unit_weights`) the cuts balance the saved bytes, Chen et al.'s rule: an early,
    high-resolution unit of a CIFAR net saves 2–4× more than a late one, so equal unit counts
    would make the first segments the memory peak and leave only a short, cheap tail
    unchecked. Without weights the segments hold equal numbers of units. Shared by the
    checkpointing code and the estimate so both cut the network the same way.
    """
    if num_units <= 0:
        return []
    count = num_units if segments is None else max(1, min(int(segments), num_units))
    if weights is None or count in (1, num_units):
        base, extra = divmod(num_units, count)
        cuts = [0]
        for i in range(count):
            cuts.append(cuts[-1] + base + (1 if i < extra else 0))
    else:
        if len(weights) != num_units:
            raise ValueError(f"{len(weights)} weights for {num_units} units")
        prefix = [0.0, *itertools.accumulate(float(w) for w in weights)]
        cuts = [0]
        for i in range(1, count):
            target = prefix[-1] * i / count
            j = bisect.bisect_left(prefix, target)
            if j > 0 and target - prefix[j - 1] <= prefix[min(j, num_units)] - target:
                j -= 1
            # Every segment keeps at least one unit.
            cuts.append(min(max(j, cuts[-1] + 1), num_units - (count - i)))
        cuts.append(num_units)
    return list(zip(cuts[:-1], cuts[1:]))


def unit_weights(spec: ResNetV2Spec) -> tuple[int, ...]:
    """Relative saved bytes of each unit (one image at the layout's usual input size)."""
    size = 224 if spec.stem_type.startswith("conv7x7") else 32
    return SavedTensorWalker(spec, 1, 4).ledger((size, size)).units


def sqrt_segments(num_units: int) -> int:
    """Chen et al.'s choice: about √n segments of about √n units each."""
    return max(1, round(math.sqrt(num_units)))


def checkpointed_activation_peak(
    ledger: ActivationLedger, segments: int | None, weights: Sequence[float] | None = None
) -> int:
    """Peak saved-activation bytes when every segment but the last is checkpointed.

    At the start of backward: the stem, the head, each checkpointed segment's input and the
    last segment's saved tensors. While segment ``j`` is recomputed: the stem, the inputs of
    segments ``0..j-1`` and everything segment ``j`` saves (its own input included).
    """
    bounds = segment_bounds(len(ledger.units), segments, weights)
    if not bounds:
        return ledger.total
    inputs = [ledger.unit_inputs[start] for start, _ in bounds]
    saved = [sum(ledger.units[start:end]) for start, end in bounds]
    last = len(bounds) - 1
    peak = ledger.stem + ledger.head + sum(inputs[:last]) + saved[last]
    before = 0
    for j in range(last):
        peak = max(peak, ledger.stem + before + saved[j])
        before += inputs[j]
    return peak


def check_request(batch_size: Any, input_size: Any, dtype_bytes: Any) -> tuple[int, int]:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise MemoryEstimateError(f"batch size must be a positive integer, got {batch_size!r}")
    size = (input_size, input_size) if isinstance(input_size, int) else input_size
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size)
    ):
        raise MemoryEstimateError(
            f"input size must be a positive int or (height, width): {input_size!r}"
        )
    if dtype_bytes not in (1, 2, 4, 8):
        raise MemoryEstimateError(f"dtype_bytes must be 1, 2, 4 or 8, got {dtype_bytes!r}")
    return int(size[0]), int(size[1])
