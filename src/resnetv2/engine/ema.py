"""Exponential moving average of a model's weights (Polyak averaging).

As in timm's ``ModelEmaV2``: after every optimiser step ``ema = decay * ema + (1 - decay) *
weights`` for floating-point parameters and buffers; integer buffers (BatchNorm's
``num_batches_tracked``) are copied. A warm-up (``decay_t = min(decay, (1 + t) / (10 + t))``,
as in TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``) keeps early averages
from being dominated by the random initialisation.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Holds an averaged copy of ``model`` (evaluated instead of the raw weights when on)."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay = decay
        self.updates = 0
        # Frozen tensors (a fine-tuning run's backbone) are copied, not averaged: averaging
        # equal values can still move them by a rounding error.
        self.fixed = {n for n, p in model.named_parameters() if not p.requires_grad}
        for name, module in model.named_modules():
            if getattr(module, "frozen", False):
                prefix = f"{name}." if name else ""
                self.fixed.update(prefix + b for b, _ in module.named_buffers(recurse=False))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_state = self.module.state_dict()
        for name, value in model.state_dict().items():
            target = ema_state[name]
            if target.dtype.is_floating_point and name not in self.fixed:
                target.mul_(decay).add_(value.detach(), alpha=1 - decay)
            else:
                target.copy_(value)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"], strict=True)
        self.updates = int(state["updates"])
