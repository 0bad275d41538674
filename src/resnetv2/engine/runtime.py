"""Process-level settings of a run: deterministic mode and stop signals."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import Any

import torch


class TrainingInterrupted(Exception):
    """SIGTERM / SIGINT arrived; a checkpoint was written at the step boundary.

    ``exit_code`` is the shell convention (128 + signal number: 143 for SIGTERM, 130 for
    Ctrl-C)."""

    def __init__(self, signum: int, checkpoint: Path | None) -> None:
        self.signum = signum
        self.checkpoint = checkpoint
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"{name}: checkpoint written to {checkpoint}; resume with --resume")


class StopSignals:
    """Turns SIGTERM / SIGINT into a request honoured at the next step boundary.

    A second Ctrl-C interrupts immediately (KeyboardInterrupt), for a user who cannot wait.
    Handlers are only installed from the main thread and are restored on exit.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def deterministic_mode(enabled: bool):
    previous = torch.are_deterministic_algorithms_enabled()
    cudnn_benchmark = torch.backends.cudnn.benchmark
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.backends.cudnn.benchmark = cudnn_benchmark
