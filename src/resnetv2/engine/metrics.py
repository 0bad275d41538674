"""Exact evaluation sums: loss, top-1 and top-k hits and the sample count.

Sums (not means) are returned so that shards from several processes combine exactly
(:func:`resnetv2.engine.distributed.all_reduce_sums`); the caller divides once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EvalSums:
    loss: float = 0.0
    correct: float = 0.0
    correct_top5: float = 0.0
    count: float = 0.0

    def as_list(self) -> list[float]:
        return [self.loss, self.correct, self.correct_top5, self.count]

    @classmethod
    def from_list(cls, values: list[float]) -> EvalSums:
        return cls(*values)

    def metrics(self, prefix: str = "val_") -> dict[str, float]:
        n = max(self.count, 1.0)
        return {
            f"{prefix}loss": self.loss / n,
            f"{prefix}acc": self.correct / n,
            f"{prefix}top5": self.correct_top5 / n,
            f"{prefix}count": int(self.count),
        }


@torch.no_grad()
def evaluate_sums(
    model: nn.Module,
    loader,
    *,
    autocast: bool = False,
    channels_last: bool = False,
) -> EvalSums:
    """Evaluate ``model`` (put in eval mode, then restored) over every batch of ``loader``."""
    was_training = model.training
    model.eval()
    sums = EvalSums()
    try:
        for images, labels in loader:
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = model(images)
            logits = logits.float()
            sums.loss += float(F.cross_entropy(logits, labels, reduction="sum"))
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices
            hits = top.eq(labels[:, None])
            sums.correct += float(hits[:, 0].sum())
            sums.correct_top5 += float(hits.any(dim=1).sum())
            sums.count += labels.shape[0]
    finally:
        model.train(was_training)
    return sums
