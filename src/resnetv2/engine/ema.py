"""Averaged weights: an exponential moving average (Polyak averaging), or lookahead.

As in timm's ``ModelEmaV2``: after every optimiser step ``ema = decay * ema + (1 - decay) *
weights`` for floating-point parameters and buffers; integer buffers (BatchNorm's
``num_batches_tracked``) are copied. A warm-up (``decay_t = min(decay, (1 + t) / (10 + t))``,
as in TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``) keeps early averages
from being dominated by the random initialisation.

:class:`Lookahead` (Zhang, Lucas, Hinton & Ba 2019, "Lookahead Optimizer: k steps forward, 1
step back", arXiv:1907.08610) keeps the same kind of averaged copy but writes it back into the
model every ``k`` steps. :func:`build_averager` makes whichever ``train.ema`` /
``train.lookahead`` asks for; the trainer evaluates and saves the averaged copy of either.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from resnetv2.errors import ResNetV2Error


class ModelEMA:
    """Holds an averaged copy of ``model`` (evaluated instead of the raw weights when on)."""

    #: What the averaged copy is; a checkpoint of one kind is not loaded into the other.
    kind = "ema"

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
        state = {"module": self.module.state_dict(), "updates": self.updates}
        if self.kind != "ema":  # EMA states keep their format of before lookahead existed
            state["kind"] = self.kind
        return state

    def load_state_dict(self, state: dict) -> None:
        saved = state.get("kind", "ema")
        if saved != self.kind:
            raise ResNetV2Error(
                f"the checkpoint holds {saved} weights but this run asks for {self.kind} "
                "(train.ema / train.lookahead); resume with the setting the run started with"
            )
        self.module.load_state_dict(state["module"], strict=True)
        self.updates = int(state["updates"])


class Lookahead(ModelEMA):
    """Lookahead (Zhang et al. 2019): slow weights that pull the model back every ``k`` steps.

    After every ``k``-th optimiser step: ``slow += alpha * (fast - slow)``, then the model's
    (fast) weights are set to ``slow``; the optimiser's state (momentum) is kept, as in the
    paper's default. ``module`` holds the slow weights, which are evaluated and saved.

    BatchNorm statistics: the running mean and variance are interpolated and written back
    like the weights (as airbench does, Jordan 2024, arXiv:2404.00498), so the model's
    statistics belong to its weights after each pull-back; airbench found lookahead helps only
    with a fast BatchNorm momentum (``train.bn_momentum``), which lets the statistics catch
    up within the ``k`` steps. Integer buffers are copied, frozen tensors left alone. The
    state (slow weights and the step count within the cycle) is checkpointed, so a resume
    between two pull-backs continues exactly.
    """

    kind = "lookahead"

    def __init__(self, model: nn.Module, k: int = 5, alpha: float = 0.5) -> None:
        super().__init__(model, decay=1.0 - alpha)
        self.k = int(k)
        self.alpha = float(alpha)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        if self.updates % self.k:
            return
        slow = self.module.state_dict()
        for name, fast in model.state_dict().items():
            target = slow[name]
            if name in self.fixed:
                continue
            if target.dtype.is_floating_point:
                target.lerp_(fast.detach(), self.alpha)
                fast.copy_(target)
            else:
                target.copy_(fast)


def build_averager(model: nn.Module, train) -> ModelEMA | None:
    """The averaged copy ``train`` (a :class:`~resnetv2.config.TrainSection`) asks for:
    :class:`ModelEMA` (``ema``), :class:`Lookahead` (``lookahead``) or ``None``."""
    if train.ema:
        return ModelEMA(model, train.ema_decay)
    if train.lookahead:
        return Lookahead(model, train.lookahead_steps, train.lookahead_alpha)
    return None
