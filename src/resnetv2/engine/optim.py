"""Optimisers with weight decay only on conv and linear weights.

Decaying BatchNorm/GroupNorm scales and biases only fights the normalisation and rarely helps
(Goyal et al. 2017, "Accurate, Large Minibatch SGD", §5.1; timm's ``param_groups_weight_decay``),
so parameters of norm layers and every 1-D parameter go into a group with ``weight_decay=0``.
"""

from __future__ import annotations

import torch
from torch import nn

from resnetv2.config import OptimConfig

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def param_groups(model: nn.Module, weight_decay: float, *, decay_all: bool = False) -> list[dict]:
    """Two groups: decayed weights and undecayed norm/bias parameters (empty groups dropped)."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            is_norm_or_bias = isinstance(module, _NORM_TYPES) or name == "bias" or param.ndim <= 1
            (no_decay if is_norm_or_bias and not decay_all else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov), AdamW, or Adam (optionally AMSGrad, as in the seed
    tutorial). With Adam the decay is L2 added to the gradient; with AdamW it is decoupled."""
    groups = param_groups(model, config.weight_decay, decay_all=config.decay_norm_and_bias)
    if config.name == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov
        )
    betas = (float(config.betas[0]), float(config.betas[1]))
    cls = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr, betas=betas, eps=config.eps, amsgrad=config.amsgrad)
