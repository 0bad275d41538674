"""Training to a wall-clock budget (``--time 10m``): plan the steps, re-plan, end annealed.

A fixed number of epochs is a plan for one machine. With a budget the run measures its own
speed and decides how many optimiser steps fit: the first plan comes after a short warm-up
in the first epoch (the first steps pay one-off costs: allocation, kernel selection), and
every epoch end re-plans from the latest measured step, validation and checkpoint times. The
learning-rate schedule is a function of progress; a re-plan changes only the part still to
come (:meth:`resnetv2.engine.schedules.StepSchedule.replan`), so the run ends with its
schedule completed — annealed, not cut, as Li, Yumer & Ramanan (ICLR 2020, "Budgeted
Training") show a budget needs. The budget covers the whole command: start-up and data
loading before the first step count (``started``), and a reserve is kept for the work after
the last epoch (best weights, results, curves).

The planner reads the clock only through :func:`now`, once per event (a step, the start and
end of a validation or a checkpoint), and keeps what it saw: tests replace :func:`now` with a
fake clock, and a resumed run sees exactly the times the uninterrupted run saw.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from resnetv2.engine.progress import format_duration


def now() -> float:
    """The planner's clock (monotonic seconds)."""
    return time.perf_counter()


def process_age() -> float:
    """Seconds since this process started (Linux ``/proc``), 0 where that is unknown.

    The budget covers the whole command, and Python plus PyTorch take seconds to import
    before any of this code runs.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - started)


class BudgetPlanner:
    """How many optimiser steps fit in ``budget`` seconds, re-planned as the run goes.

    Args:
        budget: seconds for the whole run (every session of it, when resumed).
        steps_per_epoch: training steps per epoch.
        max_steps: the cap (``--epochs`` × steps per epoch).
        batch_size, num_val: for the first plan's validation estimate (a forward pass costs
            about a third of a training step).
        started: :func:`now` at which this session's clock starts (default: now).
        time_triggers: also re-plan when :attr:`replan_seconds` passed since the last plan.
    """

    WARMUP_STEPS = 3
    FIRST_PLAN_STEP = 20
    #: Checkpoint time assumed before the first one was measured.
    CHECKPOINT_GUESS = 0.5
    #: Reserved after the last epoch besides two checkpoint-sized writes (best weights read
    #: back, model.safetensors): the curves plot (matplotlib's import and render took 2.0 s
    #: on a busy 2-core VM) and the process's exit.
    FINISH_BASE = 3.0

    def __init__(
        self,
        budget: float,
        *,
        steps_per_epoch: int,
        max_steps: int,
        batch_size: int,
        num_val: int,
        started: float | None = None,
        time_triggers: bool = True,
    ) -> None:
        self.budget = float(budget)
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.max_steps = max(1, max_steps)
        self.batch_size = max(1, batch_size)
        self.num_val = num_val
        self.session_start = now() if started is None else started
        #: Re-plan on elapsed time too (off under torchrun: processes must agree on when).
        self.time_triggers = time_triggers
        self.elapsed_before = 0.0
        self._last = self.session_start
        self.planned_steps: int | None = None
        self.plans = 0
        self.step_seconds: float | None = None
        self.val_seconds: float | None = None
        self.checkpoint_seconds: float | None = None
        self.capped = False
        self._session_steps = 0
        self._first_plan_step = self.FIRST_PLAN_STEP
        self._epoch_time = 0.0
        self._epoch_steps = 0
        self._warm_time = 0.0  # steps after the session's warm-up, this epoch
        self._warm_steps = 0
        self._val_started = 0.0
        self._ckpt_started = 0.0
        self._plan_step = 0
        self._since_steps = 0
        self._since_time = 0.0

    # ------------------------------------------------------------------ clock
    def _tick(self) -> float:
        self._last = now()
        return self._last

    @property
    def elapsed(self) -> float:
        """Seconds of the run so far (earlier sessions included), as of the last event."""
        return self.elapsed_before + self._last - self.session_start

    @property
    def left(self) -> float:
        return self.budget - self.elapsed

    @property
    def finish_seconds(self) -> float:
        """Time kept for the work after the last epoch."""
        ckpt = self.CHECKPOINT_GUESS if self.checkpoint_seconds is None else self.checkpoint_seconds
        return self.FINISH_BASE + 2 * ckpt

    # ------------------------------------------------------------------ events
    def begin_session(self, global_step: int) -> None:
        """A session's first epoch starts at ``global_step`` (0, or a resumed position)."""
        self._tick()
        left_in_run = self.max_steps - global_step
        # Short runs plan as soon as the warm-up is over.
        self._first_plan_step = min(
            self.FIRST_PLAN_STEP, max(self.WARMUP_STEPS + 2, left_in_run // 2)
        )
        self._reset_epoch()

    def _reset_epoch(self) -> None:
        self._epoch_time = self._warm_time = 0.0
        self._epoch_steps = self._warm_steps = 0

    def after_step(self, global_step: int) -> bool:
        """Count a finished step; return True when this step made a plan: the first one
        (after the warm-up), or a re-plan inside a long epoch (every :meth:`replan_every`
        steps, from the recent steps, so a change of speed mid-epoch is followed; see
        :meth:`_mid_epoch_step_seconds`). The trigger is a step count, the same in every process."""
        before = self._last
        seconds = self._tick() - before
        self._session_steps += 1
        self._epoch_steps += 1
        self._epoch_time += seconds
        self._since_steps += 1
        self._since_time += seconds
        if self._session_steps > self.WARMUP_STEPS:
            self._warm_steps += 1
            self._warm_time += seconds
        if self.planned_steps is None:
            if self._session_steps >= self._first_plan_step:
                self.step_seconds = self._warm_time / max(self._warm_steps, 1)
                self.plan(global_step)
                return True
            return False
        due = global_step - self._plan_step >= self.replan_every()
        if self.time_triggers and self._since_time >= self.replan_seconds:
            due = True  # a sudden slow-down: do not wait for the step count
        if due and self._since_steps >= 3:
            self.step_seconds = self._mid_epoch_step_seconds()
            self.plan(global_step)
            return True
        return False

    #: A mid-epoch window within this fraction of the epoch's mean step time is noise.
    STEADY_BAND = 0.25

    def _mid_epoch_step_seconds(self) -> float:
        """The step time for a mid-epoch re-plan: the steps since the last plan when the
        speed changed, else the steadier mean of this epoch's warm steps so far.

        The windows between plans are a few seconds long, and on a shared VM they are noisy:
        in one quiet 10-minute run (wide8-s2, 2-core AMD EPYC) 6-second windows measured
        0.104-0.139 s/step and whole epochs 0.108-0.130, and planning from each window alone
        swung the plan between 11.5 and 14.4 epochs (and the progress bar's epoch count with
        it) within a minute. A real change of speed (a window outside :attr:`STEADY_BAND` of
        the epoch's mean) is still followed at once."""
        recent = self._since_time / self._since_steps
        if self._warm_steps > self._since_steps:
            mean = self._warm_time / self._warm_steps
            if abs(recent - mean) <= self.STEADY_BAND * mean:  # (mean may be 0: a fake clock)
                return mean
        return recent

    @property
    def replan_seconds(self) -> float:
        """Wall time between plans inside an epoch (single process): 1 % of the budget, at
        most 30 s. A step count alone would wait minutes after a 10× slow-down."""
        return min(30.0, self.budget / 100)

    def replan_every(self) -> int:
        """Steps between plans inside an epoch: a fiftieth of the plan, at least 10."""
        return max(10, math.ceil((self.planned_steps or 0) / 50))

    def begin_validation(self) -> None:
        self._val_started = self._tick()

    def end_validation(self) -> None:
        self.val_seconds = self._tick() - self._val_started

    def begin_checkpoint(self) -> None:
        self._ckpt_started = self._tick()

    def end_checkpoint(self) -> None:
        self.checkpoint_seconds = self._tick() - self._ckpt_started

    def end_epoch(self, global_step: int) -> None:
        """Re-plan after an epoch's validation, from this epoch's measured step time."""
        if self._warm_steps:
            self.step_seconds = self._warm_time / self._warm_steps
        elif self._epoch_steps:  # every step of this epoch was warm-up: use them anyway
            self.step_seconds = self._epoch_time / self._epoch_steps
        self._reset_epoch()
        # This epoch's checkpoint is still to be written after the plan.
        self.plan(global_step, pending_checkpoint=True)

    # ------------------------------------------------------------------ the plan
    def _validations(self, global_step: int, steps: int) -> int:
        """Validations run while training ``steps`` more steps (one per epoch touched)."""
        if steps <= 0:
            return 0
        return math.ceil((global_step + steps) / self.steps_per_epoch) - (
            global_step // self.steps_per_epoch
        )

    def _per_validation(self) -> float:
        if self.val_seconds is not None:
            val = self.val_seconds
        else:
            val = (self.step_seconds or 0.0) / self.batch_size * self.num_val / 3
        ckpt = self.checkpoint_seconds
        return val + (self.CHECKPOINT_GUESS if ckpt is None else ckpt)

    def plan(self, global_step: int, *, pending_checkpoint: bool = False) -> int:
        """Set :attr:`planned_steps` (total steps of the run) from the time left
        (``pending_checkpoint``: the current epoch's checkpoint is still to be written)."""
        step = max(self.step_seconds or 0.0, 1e-6)
        per_val = self._per_validation()
        available = self.left - self.finish_seconds
        if pending_checkpoint:
            ckpt = self.checkpoint_seconds
            available -= self.CHECKPOINT_GUESS if ckpt is None else ckpt
        low, high = 0, self.max_steps - global_step
        while low < high:  # the most steps whose training + validations fit
            mid = (low + high + 1) // 2
            if mid * step + self._validations(global_step, mid) * per_val <= available:
                low = mid
            else:
                high = mid - 1
        self.capped = low == self.max_steps - global_step and low > 0
        self.planned_steps = global_step + low
        self.plans += 1
        self._plan_step = global_step
        self._since_steps, self._since_time = 0, 0.0
        return self.planned_steps

    @property
    def planned_epochs(self) -> float:
        return (self.planned_steps or 0) / self.steps_per_epoch

    def describe(self) -> str:
        """One line: ``budget 10 min: 37.0 epochs × 352 steps at 0.210 s/step + 4.1 s ...``."""
        epochs = self.planned_epochs
        text = (
            f"budget {format_duration(self.budget)}: {epochs:.1f} epochs × "
            f"{self.steps_per_epoch} steps at {self.step_seconds or 0.0:.3f} s/step + "
            f"{self._per_validation():.1f} s validation and checkpoint per epoch "
            f"({format_duration(self.elapsed)} used, {format_duration(max(self.left, 0))} left)"
        )
        if self.capped:
            text += "; capped by --epochs (train.epochs)"
        return text

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "planned_steps": self.planned_steps,
            "plans": self.plans,
            "step_seconds": self.step_seconds,
            "val_seconds": self.val_seconds,
            "checkpoint_seconds": self.checkpoint_seconds,
            "elapsed": self.elapsed,
            "capped": self.capped,
            "plan_step": self._plan_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a saved plan: the budget left is the budget minus the time already used."""
        self.planned_steps = state["planned_steps"]
        self.plans = int(state["plans"])
        self.step_seconds = state["step_seconds"]
        self.val_seconds = state["val_seconds"]
        self.checkpoint_seconds = state["checkpoint_seconds"]
        self.capped = bool(state.get("capped", False))
        self._plan_step = int(state.get("plan_step", 0))
        # This session's own start-up (process, data, model) is spent on top of it.
        self.elapsed_before = float(state["elapsed"])

    def results(self) -> dict[str, Any]:
        """What ``results.json`` records of the plan."""
        return {
            "budget_seconds": self.budget,
            "planned_epochs": round(self.planned_epochs, 3),
            "planned_steps": self.planned_steps,
            "plans": self.plans,
            "step_seconds": self.step_seconds,
            "capped_by_epochs": self.capped,
        }
