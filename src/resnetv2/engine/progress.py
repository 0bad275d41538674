"""The per-epoch progress bar (tqdm: loss, acc, lr, img/s) and the one-line epoch summary."""

from __future__ import annotations

import time
from typing import Any

REFRESH_SECONDS = 0.5


class EpochProgress:
    """A tqdm bar over one epoch's steps, refreshed at most every ``REFRESH_SECONDS`` so it
    costs nothing measurable; disabled under ``--quiet`` and on non-main processes."""

    def __init__(self, epoch: int, epochs: int, steps: int, start: int, *, enabled: bool) -> None:
        self.bar = None
        self._last = 0.0
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=steps,
                initial=start,
                desc=f"epoch {epoch + 1}/{epochs}",
                unit="step",
                leave=False,
                dynamic_ncols=True,
            )

    def update(self, loss_sum, correct, count: int, lr: float, started: float) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        now = time.perf_counter()
        if now - self._last < REFRESH_SECONDS:
            return
        self._last = now
        n = max(count, 1)
        self.bar.set_postfix(
            loss=f"{float(loss_sum) / n:.4f}",
            acc=f"{100 * float(correct) / n:.2f}%",
            lr=f"{lr:.3g}",
            img_s=f"{count / max(now - started, 1e-9):.0f}",
            refresh=False,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def format_summary(row: dict[str, Any], epochs: int, is_best: bool) -> str:
    """``epoch 3/10  loss 0.412 acc 86.1%  val_loss 0.38 val_acc 88.0% top5 99.6%  ...``"""
    width = len(str(epochs))
    return (
        f"epoch {row['epoch']:>{width}}/{epochs}  "
        f"loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}%  "
        f"val_loss {row['val_loss']:.4f} val_acc {100 * row['val_acc']:.2f}% "
        f"top5 {100 * row['val_top5']:.2f}%  lr {row['lr']:.3g}  "
        f"{row['seconds']:.1f}s ({row['images_per_second']:.0f} img/s)"
        + ("  *best" if is_best else "")
    )
