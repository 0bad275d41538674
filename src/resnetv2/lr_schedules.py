"""The learning-rate schedules a training config can name (``schedule.name``): one registry.

Each entry holds the schedule's shape, the learning rate as a pure function of where the
run is, and two facts about it. Everything that names schedules reads :data:`SCHEDULES`:

* the config's allowed ``schedule.name`` values and the CLI's ``--schedule`` choices
  (:mod:`resnetv2.config.validate`, :mod:`resnetv2.cli.train`), with "did you mean";
* ``--time``, which plans the steps of a run and so accepts only the schedules that are
  functions of progress (``of_progress``);
* :class:`resnetv2.engine.schedules.StepSchedule`, which runs the shared warm-up (where the
  entry's ``warmup`` says so) and then the shape, and :func:`~resnetv2.engine.schedules.
  build_lr_controller`, which adds reduce-on-plateau to a schedule that is not a function
  of progress.

So a schedule is added here, with its test, and nowhere else (a new option is also a field
of :class:`resnetv2.config.sections.ScheduleConfig`). The module is pure arithmetic, below
the config, so validating a config needs no torch.

Shapes:

* ``multistep`` — He et al. 2016 (arXiv:1603.05027, §4.1 / 1512.03385 §4.2): lr ÷10 at 50 % and
  75 % of training; for ResNet-1001 "we use 0.01 to warm up the training until the training
  error is below 80 % (about 400 iterations), and then go back to 0.1" (``warmup: constant``).
* ``cosine`` — SGDR without restarts (Loshchilov & Hutter 2017) after a linear warm-up
  (Goyal et al. 2017).
* ``linear`` — linear decay to ``min_lr`` (0 by default) at the last step, after the warm-up:
  Li, Yumer & Ramanan 2020 ("Budgeted Training: Rethinking Deep Neural Network Training
  Under Resource Constraints", ICLR, arXiv:1905.04753) found linear-to-zero the best schedule
  for every fixed budget of epochs they tried, ahead of cosine and step decay.
* ``onecycle`` — Smith & Topin 2018, as in PyTorch's ``OneCycleLR`` (and, with
  ``anneal: linear``, the piecewise-linear schedule of the DAWNBench CIFAR-10 entries).
* ``constant`` — the base lr after any warm-up.
* ``plateau`` — the base lr, with Keras' ``ReduceLROnPlateau`` on top
  (:class:`resnetv2.engine.schedules.ReduceOnPlateau`): a multiplier that shrinks when a
  monitored metric stalls (``schedule.plateau`` sets it on any schedule).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resnetv2.config.sections import ScheduleConfig

#: ``shape(config, base_lr, step, total_steps, warmup_steps) -> lr``: the learning rate at
#: ``step`` (a float position, ``0..total_steps``) of a run of ``total_steps >= 1`` steps.
Shape = Callable[["ScheduleConfig", float, float, int, int], float]


@dataclass(frozen=True)
class Schedule:
    """One schedule of :data:`SCHEDULES`."""

    shape: Shape
    #: Whether the lr is a function of progress alone, which ``--time`` can plan; ``False``:
    #: it follows the validation metric (reduce-on-plateau with its defaults).
    of_progress: bool = True
    #: Whether the shared warm-up (``schedule.warmup_epochs``) runs before the shape.
    warmup: bool = True


def anneal(start: float, end: float, t: float, how: str) -> float:
    """From ``start`` at ``t = 0`` to ``end`` at ``t = 1``: ``linear`` or ``cos`` (half a
    cosine)."""
    if how == "linear":
        return start + (end - start) * t
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * t))


def _constant(c: ScheduleConfig, base_lr: float, step: float, total: int, warmup: int) -> float:
    return base_lr


def _multistep(c: ScheduleConfig, base_lr: float, step: float, total: int, warmup: int) -> float:
    done = step / total
    passed = sum(1 for m in c.milestones if done >= m)
    return base_lr * c.gamma**passed


def _decay(how: str) -> Shape:
    """From the base lr after the warm-up to ``min_lr`` at the last step."""

    def shape(c: ScheduleConfig, base_lr: float, step: float, total: int, warmup: int) -> float:
        span = max(total - warmup, 1)
        t = min(max(step - warmup, 0) / span, 1.0)
        return anneal(base_lr, c.min_lr, t, how)

    return shape


def _onecycle(c: ScheduleConfig, base_lr: float, step: float, total: int, warmup: int) -> float:
    peak = base_lr
    low, end = peak / c.div_factor, peak / c.div_factor / c.final_div
    up = max(c.pct_start * total, 1.0)
    if step < up:
        return anneal(low, peak, step / up, c.anneal)
    return anneal(peak, end, min((step - up) / max(total - up, 1.0), 1.0), c.anneal)


SCHEDULES: dict[str, Schedule] = {
    "constant": Schedule(_constant),
    "cosine": Schedule(_decay("cos")),
    "linear": Schedule(_decay("linear")),
    "multistep": Schedule(_multistep),
    "onecycle": Schedule(_onecycle, warmup=False),  # its own ramp up is the warm-up
    "plateau": Schedule(_constant, of_progress=False),
}
"""Schedule name → :class:`Schedule`, in the order the CLI lists them."""
