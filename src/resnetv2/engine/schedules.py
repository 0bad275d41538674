"""Learning-rate schedules as pure functions of the optimiser step, plus reduce-on-plateau.

A schedule that is a function of the global step needs no state of its own, so resuming at
any step reproduces the learning rate exactly. The shapes (``cosine``, ``linear``,
``multistep``, ``onecycle``, ``constant``, ``plateau``) and what each is are in the registry,
:data:`resnetv2.lr_schedules.SCHEDULES`; this module runs one: the warm-up, the re-plans of a
``--time`` budget (:meth:`StepSchedule.replan`), and Keras' ``ReduceLROnPlateau``
(:class:`ReduceOnPlateau`), a multiplier that shrinks when a monitored metric stalls and can
sit on top of any schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from resnetv2.config import PlateauConfig, ScheduleConfig
from resnetv2.lr_schedules import SCHEDULES


@dataclass
class StepSchedule:
    """``lr(step)`` for a run of ``total_steps`` optimiser steps and ``steps_per_epoch``."""

    config: ScheduleConfig
    base_lr: float
    total_steps: int
    steps_per_epoch: int
    #: ``(at_step, at_position, end_step)`` after a budget re-plan: from ``at_step`` the
    #: schedule's position runs from ``at_position`` to ``total_steps`` by ``end_step``.
    warp: tuple[int, float, int] | None = None
    #: Under a budget: the most warm-up steps (a fifth of the planned run), so a plan shorter
    #: than the recipe's warm-up still reaches the end of its schedule.
    max_warmup: int | None = None

    def position(self, step: int) -> float:
        """Where in the schedule (in steps of ``total_steps``) the run is at ``step``."""
        if self.warp is None:
            return float(step)
        at_step, at_position, end_step = self.warp
        if end_step <= at_step:
            return float(self.total_steps)
        rate = (self.total_steps - at_position) / (end_step - at_step)
        return min(at_position + (step - at_step) * rate, float(self.total_steps))

    def replan(self, at_step: int, end_step: int, *, first: bool = False) -> None:
        """End the schedule at ``end_step`` instead; only the part after ``at_step`` changes.

        The first plan of a budgeted run (``first``) sets the length outright: the steps so
        far were its warm-up, and with a length from a measurement rather than a guess every
        schedule keeps its exact shape (warm-up epochs, milestones, one-cycle phases). Later
        plans stretch or shrink what is left, so the learning rate stays continuous.
        """
        if first:
            self.total_steps = max(int(end_step), 1)
            self.warp = None
            self.max_warmup = max(1, self.total_steps // 5)
        else:
            self.warp = (int(at_step), self.position(at_step), int(end_step))

    def __call__(self, step: int) -> float:
        step = self.position(step)  # type: ignore[assignment]
        c = self.config
        schedule = SCHEDULES.get(c.name)
        if schedule is None:  # config validation prevents this
            raise ValueError(f"unknown schedule {c.name!r}")
        warmup_steps = round(c.warmup_epochs * self.steps_per_epoch)
        if self.max_warmup is not None:
            warmup_steps = min(warmup_steps, self.max_warmup)
        if schedule.warmup and step < warmup_steps:
            start = c.warmup_lr if c.warmup_lr is not None else self.base_lr * 0.1
            if c.warmup == "constant":
                return start
            return start + (self.base_lr - start) * step / warmup_steps
        return schedule.shape(c, self.base_lr, step, max(self.total_steps, 1), warmup_steps)


class ReduceOnPlateau:
    """Multiplier that drops by ``factor`` after ``patience`` epochs without improvement.

    Follows Keras' ``ReduceLROnPlateau`` (the seed tutorial's callback): improvement means
    better than the best value by more than ``min_delta``; after a reduction, ``cooldown``
    epochs pass before counting again; the effective lr never drops below ``min_lr``.
    """

    def __init__(self, config: PlateauConfig) -> None:
        self.config = config
        self.scale = 1.0
        self.best: float | None = None
        self.wait = 0
        self.cooldown_left = 0

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.config.monitor == "val_loss":
            return value < self.best - self.config.min_delta
        return value > self.best + self.config.min_delta

    def step(self, value: float, current_lr: float) -> bool:
        """Record one epoch's metric; return True when the lr was reduced."""
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self._improved(value):
            self.best = value
            self.wait = 0
            return False
        self.wait += 1
        # Keras counts `wait >= patience` and skips reducing once the lr sits at min_lr.
        if self.wait >= self.config.patience and self.cooldown_left == 0:
            self.wait = 0
            if current_lr > self.config.min_lr:
                self.scale *= self.config.factor
                self.cooldown_left = self.config.cooldown
                return True
        return False

    def clamp(self, lr: float) -> float:
        return lr if self.scale == 1.0 else max(lr * self.scale, self.config.min_lr)

    def state_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "best": self.best,
            "wait": self.wait,
            "cooldown_left": self.cooldown_left,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = float(state["scale"])
        self.best = None if state["best"] is None else float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_left = int(state["cooldown_left"])


class LRController:
    """The learning rate of every step: schedule × plateau multiplier, written to the optimiser."""

    def __init__(self, schedule: StepSchedule, plateau: ReduceOnPlateau | None) -> None:
        self.schedule = schedule
        self.plateau = plateau

    def lr_at(self, step: int) -> float:
        lr = self.schedule(step)
        return self.plateau.clamp(lr) if self.plateau is not None else lr

    def apply(self, optimizer, step: int) -> float:
        lr = self.lr_at(step)
        for group in optimizer.param_groups:
            # Fine-tuning groups (a slower backbone) keep their ratio to the base lr.
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def end_epoch(self, metrics: dict[str, float], step: int) -> bool:
        if self.plateau is None:
            return False
        value = metrics.get(self.plateau.config.monitor)
        if value is None or not math.isfinite(value):
            return False
        return self.plateau.step(value, self.lr_at(step))

    def state_dict(self) -> dict[str, Any]:
        warp = self.schedule.warp
        return {
            "plateau": self.plateau.state_dict() if self.plateau else None,
            "total_steps": self.schedule.total_steps,
            "warp": list(warp) if warp is not None else None,
            "max_warmup": self.schedule.max_warmup,
        }

    def load_state_dict(self, state: dict[str, Any], *, plan: bool = False) -> None:
        """Restore the plateau state and, with ``plan`` (a budgeted run resumed under its
        budget), the schedule's planned length; otherwise the length stays the one this
        session built from ``--epochs``, so changing it on resume stretches the schedule."""
        if self.plateau is not None and state.get("plateau") is not None:
            self.plateau.load_state_dict(state["plateau"])
        if plan and state.get("total_steps") is not None:
            self.schedule.total_steps = int(state["total_steps"])
            warp = state.get("warp")
            self.schedule.warp = (int(warp[0]), float(warp[1]), int(warp[2])) if warp else None
            self.schedule.max_warmup = state.get("max_warmup")


def build_lr_controller(
    config: ScheduleConfig, base_lr: float, epochs: int, steps_per_epoch: int
) -> LRController:
    schedule = StepSchedule(config, base_lr, epochs * steps_per_epoch, steps_per_epoch)
    plateau_cfg = config.plateau
    if plateau_cfg is None and not SCHEDULES[config.name].of_progress:
        plateau_cfg = PlateauConfig()
    return LRController(schedule, ReduceOnPlateau(plateau_cfg) if plateau_cfg else None)
