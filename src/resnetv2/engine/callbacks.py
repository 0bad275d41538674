"""Epoch-end callbacks of the seed tutorial: CSV log, early stopping, TensorBoard, NaN guard.

Reduce-on-plateau lives with the schedules (:mod:`resnetv2.engine.schedules`) because it sets
the learning rate; checkpoints are the trainer's own job (:mod:`resnetv2.io`).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Any

from resnetv2.config import EarlyStoppingConfig
from resnetv2.errors import ResNetV2Error

METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_top5",
    "lr",
    "seconds",
    "elapsed",
)


class NonFiniteLossError(ResNetV2Error, FloatingPointError):
    """The training loss became NaN or Inf; training stopped before any checkpoint of it."""


def check_finite_loss(value: float, epoch: int, step: int, lr: float) -> None:
    """Raise :class:`NonFiniteLossError` with advice when ``value`` is NaN or Inf."""
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"training loss is {value} at epoch {epoch}, step {step} (lr {lr:.3g}); stopped "
            "without saving these weights. Lower the learning rate (--lr), add warm-up or "
            "gradient clipping, then resume from the last good checkpoint with --resume"
        )


class CSVLogger:
    """Appends one row per epoch to ``metrics.csv`` (rewritten from history on resume)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def write_all(self, history: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in history:
                writer.writerow({k: _fmt(row.get(k)) for k in METRIC_COLUMNS})
        os.replace(tmp, self.path)


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)  # exact: metrics.csv agrees with results.json to the last digit
    return "" if value is None else value


class EarlyStopping:
    """Keras' ``EarlyStopping``: stop after ``patience`` epochs without an improvement of
    more than ``min_delta`` in ``monitor``."""

    def __init__(self, config: EarlyStoppingConfig) -> None:
        self.config = config
        self.best: float | None = None
        self.wait = 0

    def step(self, metrics: dict[str, float]) -> bool:
        """Record an epoch; return True when training should stop."""
        value = metrics.get(self.config.monitor)
        if value is None or not math.isfinite(value):
            return False
        better = (
            self.best is None
            or (self.config.monitor == "val_loss" and value < self.best - self.config.min_delta)
            or (self.config.monitor != "val_loss" and value > self.best + self.config.min_delta)
        )
        if better:
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        return self.wait >= self.config.patience  # Keras counts the same way

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = state["best"], int(state["wait"])


class TensorBoardLogger:
    """Scalars to ``RUN/tensorboard`` when the ``tensorboard`` package imports."""

    def __init__(self, run_dir: Path, log: logging.Logger) -> None:
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception as exc:  # noqa: BLE001 - optional dependency: say why and go on
            log.warning("--tensorboard: tensorboard is not usable (%s); not logging to it", exc)
            return
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log_epoch(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key in METRIC_COLUMNS[1:]:
            value = row.get(key)
            if isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
