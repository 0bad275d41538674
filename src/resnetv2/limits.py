"""Bounds on the counts a user controls: loader workers, threads, batch size.

One table and one check, shared by the config validation behind ``train``, the flags of
``predict`` and ``evaluate`` and the :class:`~resnetv2.predict.Predictor` API, so every
command refuses the same values in the same words (exit 2 at the command line). Image sizes
have their own rule, :func:`resnetv2.data.load.check_image_size`. Each bound is far beyond any useful value and small
enough that nothing downstream is asked for the impossible: a thousand worker processes, a
thread count that overflows a C ``int``, a batch that ``itertools.islice`` cannot index.
``--top-k`` has no table entry: it is clamped to the model's class count instead.
"""

from __future__ import annotations

import argparse
from typing import Any

from resnetv2.errors import ResNetV2Error

MAX_WORKERS = 64
"""Most data-loading worker processes (``--workers``, ``data.workers``)."""

MAX_THREADS = 1024
"""Most intra-op threads (``--threads``, ``train.threads``)."""

MAX_BATCH_SIZE = 65_536
"""Most images per batch (``--batch-size``, ``data.batch_size``, ``data.eval_batch_size``)."""


def _shown(value: Any) -> str:
    """``value`` for a message, cut short: a 10,000-digit integer is not printed whole."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        return "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."


def count_problem(value: Any, low: int, high: int) -> str | None:
    """What is wrong with ``value`` as a count in ``low..high``, or ``None`` when it fits."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"must be an integer in {low}..{high:,}, got {_shown(value)}"
    return None


def check_count(
    name: str, value: Any, low: int, high: int, error: type[Exception] = ResNetV2Error
) -> int:
    """``value`` when it is an integer in ``low..high``, else ``error`` naming ``name`` (the
    flag or config key the user wrote) and the valid range."""
    problem = count_problem(value, low, high)
    if problem is not None:
        raise error(f"{name} {problem}" if name else problem)
    return value


def count_arg(low: int, high: int):
    """An argparse ``type`` for a count in ``low..high``: argparse prefixes the flag, so the
    error reads ``argument --workers: must be an integer in 0..64, got 1000``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = text
        return check_count("", value, low, high, argparse.ArgumentTypeError)

    return parse
