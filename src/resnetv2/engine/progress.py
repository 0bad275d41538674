"""The per-epoch progress bar (tqdm: loss, acc, lr, img/s), the one-line epoch summary and the
run's time estimates (expected wall time after the first steps, an ETA with every epoch)."""

from __future__ import annotations

import time
from typing import Any

REFRESH_SECONDS = 0.5


class EpochProgress:
    """A tqdm bar over one epoch's steps, refreshed at most every ``REFRESH_SECONDS`` so it
    costs nothing measurable; disabled under ``--quiet`` and on non-main processes."""

    def __init__(
        self, epoch: int, epochs: int | None, steps: int, start: int, *, enabled: bool
    ) -> None:
        """``epochs`` is ``None`` while a ``--time`` run has no plan yet (shown as ``?``)."""
        self.bar = None
        self._last = 0.0
        self._epoch = epoch
        self._epochs = epochs
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=steps,
                initial=start,
                desc=self._desc(),
                unit="step",
                leave=False,
                dynamic_ncols=True,
            )

    def _desc(self) -> str:
        return f"epoch {self._epoch + 1}/{'?' if self._epochs is None else self._epochs}"

    def set_epochs(self, epochs: int | None) -> None:
        """Show a new epoch count (a budget's plan or re-plan)."""
        if epochs != self._epochs:
            self._epochs = epochs
            if self.bar is not None:
                self.bar.set_description(self._desc(), refresh=False)

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


def format_duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``1 h 05 min``: rounded to what a person plans with."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class RunTimer:
    """Wall-clock bookkeeping behind the run's time estimates.

    After ``ESTIMATE_STEP`` steps of this session it estimates the rest of the run from the
    step rate measured since step ``WARMUP_STEPS`` (the first steps pay one-off costs: memory
    allocation, oneDNN kernel selection), plus validation at the same per-image cost divided by
    three (a forward pass is about a third of a training step). After each epoch the ETA is
    the remaining epochs times the mean wall time of this session's epochs — training,
    validation and checkpoint included. ``elapsed`` counts from ``session_started`` (data
    loading and model building included: the user waits for them too) and continues across
    resumes.
    """

    WARMUP_STEPS = 3
    ESTIMATE_STEP = 20

    def __init__(
        self,
        *,
        epochs: int,
        steps_per_epoch: int,
        start_epoch: int,
        start_position: int,
        batch_size: int,
        num_val: int,
        elapsed_before: float = 0.0,
        session_started: float | None = None,
    ) -> None:
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.remaining_steps = max(0, (epochs - start_epoch) * steps_per_epoch - start_position)
        self.batch_size = max(1, batch_size)
        self.num_val = num_val
        self.elapsed_before = elapsed_before
        self.started = time.perf_counter()
        self.session_started = self.started if session_started is None else session_started
        self.session_epochs = 0
        self._steps = 0
        self._warm_at: float | None = None
        # Short runs estimate as soon as the warm-up is over.
        self._estimate_step = min(
            self.ESTIMATE_STEP, max(self.WARMUP_STEPS + 2, self.remaining_steps // 2)
        )

    def step(self) -> str | None:
        """Count one training step; return the expected-time message once, else ``None``."""
        self._steps += 1
        if self._steps == self.WARMUP_STEPS:
            self._warm_at = time.perf_counter()
        if self._steps != self._estimate_step or self._warm_at is None:
            return None
        per_step = (time.perf_counter() - self._warm_at) / (self._steps - self.WARMUP_STEPS)
        left_steps = self.remaining_steps - self._steps
        epochs_left = left_steps / max(1, self.steps_per_epoch)
        val_seconds = per_step / self.batch_size * self.num_val / 3
        total = time.perf_counter() - self.session_started + left_steps * per_step
        total += val_seconds * max(1.0, epochs_left)
        return (
            f"expected time for this run: about {format_duration(total)} "
            f"({per_step * 1000:.0f} ms/step over steps {self.WARMUP_STEPS + 1}-{self._steps}; "
            "the ETA updates with each epoch)"
        )

    @property
    def elapsed(self) -> float:
        """Wall seconds of the run so far, earlier sessions included."""
        return self.elapsed_before + time.perf_counter() - self.session_started

    def end_epoch(self, epochs_done: int) -> float:
        """Record a finished epoch; return the ETA in seconds for the epochs still to run."""
        self.session_epochs += 1
        per_epoch = (time.perf_counter() - self.started) / self.session_epochs
        return per_epoch * max(0, self.epochs - epochs_done)


def format_summary(
    row: dict[str, Any], epochs: int, is_best: bool, eta: float | None = None
) -> str:
    """``epoch 3/10  loss 0.412 acc 86.1%  val_loss 0.38 val_acc 88.0% top5 99.6%  ...``

    ``eta`` (seconds) appends ``ETA 12 min`` while epochs remain."""
    width = len(str(epochs))
    top5 = row.get("val_top5")  # None with five classes or fewer: it would always be 100 %
    return (
        f"epoch {row['epoch']:>{width}}/{epochs}  "
        f"loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}%  "
        f"val_loss {row['val_loss']:.4f} val_acc {100 * row['val_acc']:.2f}%"
        + (f" top5 {100 * top5:.2f}%" if top5 is not None else "")
        + f"  lr {row['lr']:.3g}  "
        f"{row['seconds']:.1f}s ({row['images_per_second']:.0f} img/s)"
        + ("  *best" if is_best else "")
        + (f"  ETA {format_duration(eta)}" if eta and row["epoch"] < epochs else "")
    )
