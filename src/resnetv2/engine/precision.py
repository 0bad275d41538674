"""Which arithmetic a run uses: bf16 autocast where the hardware makes it fast, fp32 elsewhere.

bf16 autocast (mixed precision: bf16 matmuls/convolutions, fp32 weights, optimizer and loss)
trains at the same accuracy as fp32 for these networks and is much faster where the hardware
has bf16 arithmetic: every CUDA GPU since Ampere, and CPUs with AMX tiles or the AVX-512 BF16
instructions (measured speed and accuracy: docs/time-to-accuracy.md). On other CPUs bf16
runs through slow conversion paths, so ``amp: auto`` keeps fp32 there.

What the CPU can do is read from PyTorch's own CPU report (``torch.cpu``), not from model
names, so a new CPU with the same instructions is recognised without a list to maintain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    """The precision a run uses and why (recorded in ``train.log`` and ``results.json``)."""

    autocast: bool
    reason: str
    #: Set when the choice is likely slow (``--amp on`` without bf16 hardware).
    warning: str | None = None

    @property
    def name(self) -> str:
        return "bf16" if self.autocast else "fp32"

    def describe(self) -> str:
        mixed = "bf16 autocast (mixed precision)" if self.autocast else "fp32"
        return f"{mixed}: {self.reason}"


def cpu_bf16_support() -> tuple[bool, str]:
    """``(fast, what)``: whether this CPU has bf16 arithmetic, as PyTorch reports it."""
    probes = (
        ("AMX tiles", "_is_amx_tile_supported"),
        ("AVX-512 BF16", "_is_avx512_bf16_supported"),
    )
    for label, attr in probes:
        probe = getattr(torch.cpu, attr, None)
        try:
            if probe is not None and probe():
                return True, f"the CPU has {label}"
        except RuntimeError:  # a build without the probe's backend: treat as absent
            continue
    return False, "the CPU has neither AMX nor AVX-512 BF16"


def choose_precision(setting: str, device: torch.device) -> Precision:
    """Resolve ``amp`` (``auto`` / ``on`` / ``off``) for ``device``.

    ``on`` where bf16 is slow is honoured with :attr:`Precision.warning` set, which the trainer
    logs — never an error: bf16 autocast works on every CPU, only more slowly than fp32 where
    the hardware lacks it.
    """
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"amp must be auto, on or off, got {setting!r}")
    if setting == "off":
        return Precision(False, "--amp off")
    if device.type == "cuda":
        why = "CUDA device" if setting == "auto" else "--amp on (CUDA device)"
        return Precision(True, why)
    if device.type != "cpu":
        if setting == "on":
            return Precision(True, f"--amp on ({device.type} device)")
        return Precision(False, f"no bf16 default for {device.type} devices")
    fast, what = cpu_bf16_support()
    if setting == "auto":
        return Precision(fast, what)
    if not fast:
        warning = (
            f"--amp on: {what}, so bf16 autocast is likely slower than fp32 here; "
            "--amp auto picks the fast choice"
        )
        return Precision(True, f"--amp on although {what}", warning)
    return Precision(True, f"--amp on ({what})")
