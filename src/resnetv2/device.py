"""The one device resolver: ``auto`` (the default everywhere), ``cpu``, ``cuda``, ``cuda:N``.

Training, evaluation, prediction and the command line all pick their device here, so the same
word means the same device in every command and a device that is not there is refused with
the same one-line message instead of a torch traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from resnetv2.errors import ResNetV2Error

#: What ``--device`` accepts, for help texts and error messages.
DEVICE_HELP = "auto (cuda when available, else cpu), cpu, cuda or cuda:N"
COMPUTE_DEVICES = ("cpu", "cuda", "mps")
"""Device types that hold real tensors (``meta`` has shapes only) and that resnetv2 runs on."""


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``name``; ``None`` and ``"auto"`` mean CUDA when available.

    Raises :class:`~resnetv2.errors.ResNetV2Error` for a name torch does not know and for a
    CUDA device this machine does not have.
    """
    if isinstance(name, torch.device):
        device = name
    elif name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except (RuntimeError, ValueError, TypeError):
            raise ResNetV2Error(f"--device {name!r} is not a device; use {DEVICE_HELP}") from None
        if device.type not in COMPUTE_DEVICES:  # meta, xla, ...: no data, or not supported
            raise ResNetV2Error(f"--device {name!r} cannot run a model here; use {DEVICE_HELP}")
    if device.type == "cuda":
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0:
            raise ResNetV2Error(
                f"--device {device}: no CUDA device is available here; use --device cpu or auto"
            )
        if device.index is not None and device.index >= available:
            raise ResNetV2Error(
                f"--device {device}: this machine has {available} CUDA device(s), "
                f"cuda:0 to cuda:{available - 1}"
            )
    return device


@contextlib.contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Run the enclosed PyTorch CPU kernels on the calling thread only.

    For work made of small memory-bound kernels next to a heavy computation that has threads
    of its own: a data batch beside the training step, pre- and post-processing beside an
    onnxruntime session. One thread already runs such kernels at tens of thousands of images
    per second, while each multi-threaded kernel wakes PyTorch's worker threads, which then
    spin for a while and take the cores the heavy computation needs; on a busy machine every
    multi-threaded kernel also waits for a descheduled worker (measured: 5,000 instead of
    55,000 img/s for a data batch). The previous setting is restored at once (the switch
    costs well under a microsecond).
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def engine_threads(forward: object) -> contextlib.AbstractContextManager[None]:
    """:func:`one_intra_op_thread` around the work next to ``forward`` when ``forward`` is
    an inference engine that computes with threads of its own (``own_threads = True``, as
    the onnxruntime runner); no change for eager PyTorch, whose own threads do the work."""
    if getattr(forward, "own_threads", False):
        return one_intra_op_thread()
    return contextlib.nullcontext()
