"""Budget-native recipes: the net that makes the most of a ``--time`` budget on this machine.

A recipe's ``model.by_budget`` lists candidate nets, largest first, each with the fewest
epochs it needs to beat the smaller ones (from measured runs, explained beside the recipe).
With a budget the trainer times one training step of each candidate on random data of the
run's shape, estimates how many epochs of it fit in the time that is left (training, the
validation each epoch, a checkpoint, the final reserve) and trains the first candidate whose
``min_epochs`` fit; the last one when none does. The timing counts against the budget.
"""

from __future__ import annotations

import math
from typing import Any

from resnetv2.config import TrainConfig
from resnetv2.engine.budget import BudgetPlanner
from resnetv2.engine.probe import seconds_per_step


def choose_net(
    cfg: TrainConfig, data, *, amp: bool, channels_last: bool, seconds_left: float
) -> tuple[TrainConfig, dict[str, Any]]:
    """``cfg`` with the chosen candidate as its model, and a record of the choice."""
    from resnetv2.nn import ResNetV2

    batch = cfg.data.batch_size
    steps_per_epoch = max(1, math.ceil(data.num_train / batch))
    height, width = data.image_size
    shape = (batch, data.in_channels, height, width)
    nets = cfg.model.by_budget
    timings = []
    chosen = len(nets) - 1
    for i, net in enumerate(nets):
        spec = cfg.with_net(net).build_spec(
            num_classes=data.num_classes, in_channels=data.in_channels
        )
        step = seconds_per_step(
            ResNetV2(spec),
            batch_shape=shape,
            num_classes=data.num_classes,
            amp=amp,
            channels_last=channels_last,
            # A net whose single step takes 2 % of the budget cannot fit many epochs.
            give_up_after=0.02 * seconds_left,
        )
        views = 1 if cfg.train.val_tta == "none" else 2  # flip TTA doubles validation
        validation = step / batch * data.num_val / 3 * views + BudgetPlanner.CHECKPOINT_GUESS
        epochs = min(seconds_left / (steps_per_epoch * step + validation), cfg.train.epochs)
        timings.append(
            {
                "net": net.note or f"depth {spec.depth}",
                "ms_per_step": round(1000 * step, 1),
                "epochs_fit": round(epochs, 1),
                "min_epochs": net.min_epochs,
            }
        )
        if epochs >= net.min_epochs:
            chosen = i
            break
    record = {"chosen": (nets[chosen].note or f"candidate {chosen + 1}"), "candidates": timings}
    return cfg.with_net(nets[chosen]), record


def describe(record: dict[str, Any], budget: float) -> str:
    from resnetv2.engine.progress import format_duration

    parts = [
        f"{c['net']}: {c['epochs_fit']:g} epochs fit at {c['ms_per_step']:g} ms/step "
        f"(needs {c['min_epochs']:g})"
        for c in record["candidates"]
    ]
    return f"net for a {format_duration(budget)} budget: {record['chosen']} — " + "; ".join(parts)
