"""Pre-flight: refuse a training run whose memory estimate exceeds the machine's memory.

Without it an impossible request (``--depth 99998``) is found out the slow way: tens of
seconds of allocation, gigabytes of swap, then a ``MemoryError`` traceback or the kernel's
OOM killer. The estimate (:func:`estimate_training_memory`) costs well under a second and is
within a few per cent for the nets it was checked against (``docs/bench-memory.md``), so
comparing it with what the device can give is a cheap, early, explained refusal. People who
know better (a machine with lots of swap, a driver that pages) override it.
"""

from __future__ import annotations

import os

from resnetv2.errors import ResNetV2Error
from resnetv2.memory.estimate import MemoryEstimate, estimate_training_memory, format_bytes


class MemoryPreflightError(ResNetV2Error, ValueError):
    """The estimated training memory exceeds what the device has."""


def available_memory(device) -> int | None:
    """Bytes the run may use on ``device``: free GPU memory for CUDA, the kernel's
    ``MemAvailable`` (else total RAM) for the CPU; ``None`` when unknown."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        try:
            free, _total = torch.cuda.mem_get_info(device)
        except Exception:  # noqa: BLE001 - no answer means no check, never a failed run
            return None
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_training_memory(
    spec,
    *,
    batch_size: int,
    input_size: tuple[int, int],
    checkpoint_segments: int | str | None,
    optimizer: str,
    device,
    dtype_bytes: int = 4,
    available: int | None = None,
) -> MemoryEstimate | None:
    """Raise :class:`MemoryPreflightError` when one training step of ``spec`` is estimated
    to need more than ``available`` bytes (default: :func:`available_memory` of ``device``).

    The message gives the estimate and the ways out: activation checkpointing (with what it
    would need), a smaller batch, or ``--no-memory-check``.
    """
    if available is None:
        available = available_memory(device)
    if available is None:
        return None
    kwargs = {
        "batch_size": batch_size,
        "input_size": input_size,
        "optimizer": optimizer,
        "dtype_bytes": dtype_bytes,
    }
    estimate = estimate_training_memory(spec, checkpoint_segments=checkpoint_segments, **kwargs)
    if estimate.total_bytes <= available:
        return estimate
    ways = []
    if checkpoint_segments is None:
        saved = estimate_training_memory(spec, checkpoint_segments="sqrt", **kwargs)
        ways.append(f"--checkpoint-activations (about {format_bytes(saved.total_bytes)})")
    if batch_size > 1:
        ways.append("a smaller --batch-size")
    ways.append("a smaller model")
    where = getattr(device, "type", str(device))
    raise MemoryPreflightError(
        f"training needs about {format_bytes(estimate.total_bytes)} (estimated for depth "
        f"{spec.depth}, batch {batch_size}, input {input_size[0]}x{input_size[1]}; "
        f"weights, gradients and optimizer state "
        f"{format_bytes(estimate.param_bytes * 2 + estimate.optimizer_bytes)}, activations {format_bytes(estimate.activation_bytes)}) but only "
        f"{format_bytes(available)} is available on {where}; use {', '.join(ways)}, or pass "
        "--no-memory-check to try anyway"
    )


def preflight_training(config, data, device, world_size: int, *, amp: bool) -> None:
    """:func:`check_training_memory` for a training config on loaded ``data``: the spec with
    the data's classes and channels, this process's share of the global batch, bf16
    activations under autocast."""
    check_training_memory(
        config.build_spec(num_classes=data.num_classes, in_channels=data.in_channels),
        batch_size=max(1, config.data.batch_size // world_size),
        input_size=tuple(data.image_size),
        checkpoint_segments=config.train.checkpoint_activations,
        optimizer=config.optim.name,
        device=device,
        dtype_bytes=2 if amp else 4,
    )
