"""``--engine``, ``--precision`` and ``--threads``: the inference options that ``predict`` and
``evaluate`` share (:mod:`resnetv2.inference`), in one place so their help stays identical."""

from __future__ import annotations

import argparse
import logging
import sys

from resnetv2.inference.engines import ENGINES, PRECISIONS
from resnetv2.limits import MAX_THREADS, count_arg


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, with a one-line error otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="what computes the logits (default auto, or $RESNETV2_ENGINE): auto = "
        "onnxruntime on the CPU where installed (the weights exported to ONNX once and "
        "cached by their checksum in $RESNETV2_CACHE_DIR, else $XDG_CACHE_HOME/resnetv2 or "
        "~/.cache/resnetv2), torch otherwise; torch = eager PyTorch",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32 (default) or bf16 (torch engine only, opt-in: top-1 may differ from fp32 "
        "on some inputs; see docs/inference.md)",
    )
    parser.add_argument(
        "--threads",
        type=count_arg(1, MAX_THREADS),
        default=None,
        metavar="N",
        help="intra-op threads for torch and onnxruntime (default: PyTorch's, i.e. one per "
        "core or $OMP_NUM_THREADS)",
    )


def show_engine_messages() -> None:
    """Print the inference engine's notes (e.g. "exporting … once") on stderr."""
    logger = logging.getLogger("resnetv2.inference")
    if not any(getattr(h, "_resnetv2_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("resnetv2: %(message)s"))
        handler._resnetv2_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
