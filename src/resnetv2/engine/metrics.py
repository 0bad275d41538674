"""The trainer's validation pass, scored by evaluation's own :class:`EvalAccumulator`.

Validation during training and ``resnetv2 evaluate`` count loss, top-1 and top-k the same way
(per-sample losses summed in float64, one ``all_reduce`` of exact counts across processes), so
a run's ``val_acc`` is the number ``evaluate`` reports for the same weights and data.
"""

from __future__ import annotations

import torch
from torch import nn

from resnetv2.evaluation.loop import score
from resnetv2.evaluation.metrics import DEFAULT_TOPK, EvalAccumulator


@torch.no_grad()
def validate(
    model: nn.Module,
    loader,
    num_classes: int,
    *,
    autocast: bool = False,
    channels_last: bool = False,
    prefix: str = "val_",
    tta: str = "none",
) -> dict[str, float | int | None]:
    """Evaluate ``model`` (put in eval mode, then restored) over every batch of ``loader``.

    Returns ``{prefix}loss``, ``{prefix}acc``, ``{prefix}top5`` and ``{prefix}count``, summed
    over every process of a distributed run (each rank must call it). ``top5`` is ``None``
    when the model has at most five classes: it would always be 100 %. ``tta='flip'`` scores
    the mean softmax of each image and its mirror, exactly as ``evaluate --tta flip`` does.
    """
    accumulator = EvalAccumulator(num_classes, topk=DEFAULT_TOPK)
    was_training = model.training
    model.eval()
    try:
        for images, labels in loader:
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=autocast):
                logits, _ = score(model, images, tta, want_probabilities=False)
            accumulator.update(logits.float(), labels)
    finally:
        model.train(was_training)
    accumulator.all_reduce()
    loss_sum, counts = accumulator.state()
    count = int(counts[2])
    n = max(count, 1)
    return {
        f"{prefix}loss": loss_sum / n,
        f"{prefix}acc": int(counts[0]) / n,
        f"{prefix}top5": int(counts[1]) / n if num_classes > DEFAULT_TOPK else None,
        f"{prefix}count": count,
    }
