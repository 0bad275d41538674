"""Optimisers with weight decay only on conv and linear weights.

Decaying BatchNorm/GroupNorm scales and biases only fights the normalisation and rarely helps
(Goyal et al. 2017, "Accurate, Large Minibatch SGD", §5.1; timm's ``param_groups_weight_decay``),
so parameters of norm layers and every 1-D parameter go into a group with ``weight_decay=0``.

``optim.norm_bias_lr_scale`` multiplies the learning rate of that undecayed group (norm
scales and shifts, every bias): David Page's DAWNBench ResNet-9 ("How to Train Your ResNet",
2018) and airbench (Jordan 2024, arXiv:2404.00498: BatchNorm biases at 64× the lr)
train them much faster than the weights, which cut airbench's epochs to 94 % from 18 to 13.5.

When fine-tuning, :func:`resnetv2.finetune.prepare_finetune` splits the parameters into a
``backbone`` and a ``head`` group with their own ``lr_scale``; :func:`param_groups` crosses
the two splits (decay × fine-tune group), and the schedule sets each group's lr to
``schedule(step) × lr_scale``, so the backbone/head ratio holds for the whole run.
"""

from __future__ import annotations

import torch
from torch import nn

from resnetv2.config import OptimConfig
from resnetv2.optimizers import OPTIMIZERS

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def param_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    decay_all: bool = False,
    finetune_groups: list[dict] | None = None,
    norm_bias_lr_scale: float = 1.0,
) -> list[dict]:
    """Decayed weights and undecayed norm/bias parameters (empty groups dropped).

    The norm/bias group's ``lr_scale`` is multiplied by ``norm_bias_lr_scale``; with
    ``decay_all`` it is a group of its own only when that scale is not 1 (then decayed too).

    Only parameters that require gradients are included. ``finetune_groups`` (from
    :func:`resnetv2.finetune.prepare_finetune`: ``params``, ``name``, ``lr_scale``) splits
    each of the two further: one group per (fine-tune group, decay) pair, carrying the
    fine-tune group's ``name`` and ``lr_scale``. Every group has an ``lr_scale`` (1.0
    without fine-tuning).
    """
    owner: dict[int, tuple[str, float]] = {}
    order = ["all"]
    if finetune_groups is not None:
        order = [str(g["name"]) for g in finetune_groups]
        for group in finetune_groups:
            for param in group["params"]:
                owner[id(param)] = (str(group["name"]), float(group["lr_scale"]))
    buckets: dict[tuple[str, bool], list] = {}
    scales = {name: 1.0 for name in order}
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            group_name, scale = "all", 1.0
            if finetune_groups is not None:
                if id(param) not in owner:  # trainable but in no fine-tune group: a bug
                    raise ValueError(
                        f"parameter {name!r} of {type(module).__name__} is in no group"
                    )
                group_name, scale = owner[id(param)]
            scales[group_name] = scale
            is_norm_or_bias = isinstance(module, _NORM_TYPES) or name == "bias" or param.ndim <= 1
            # One group for everything when all is decayed at one lr (as before the scale).
            special = is_norm_or_bias and (not decay_all or norm_bias_lr_scale != 1.0)
            buckets.setdefault((group_name, special), []).append(param)
    groups = []
    for group_name in order:
        for special in (False, True):
            params = buckets.get((group_name, special))
            if not params:
                continue
            decayed = decay_all or not special
            group = {
                "params": params,
                "weight_decay": weight_decay if decayed else 0.0,
                "lr_scale": scales[group_name] * (norm_bias_lr_scale if special else 1.0),
            }
            if finetune_groups is not None:
                group["name"] = group_name
            groups.append(group)
    return groups


def build_optimizer(
    model: nn.Module, config: OptimConfig, *, finetune_groups: list[dict] | None = None
) -> torch.optim.Optimizer:
    """The ``torch.optim`` class that :data:`resnetv2.optimizers.OPTIMIZERS` names for
    ``config.name``, given the entry's options from ``config`` (SGD: momentum, optionally
    Nesterov; AdamW and Adam: betas, eps, AMSGrad). With Adam the decay is L2 added to the
    gradient; with AdamW it is decoupled. ``finetune_groups``: see :func:`param_groups`."""
    entry = OPTIMIZERS.get(config.name)
    if entry is None:  # config validation prevents this
        raise ValueError(f"unknown optimizer {config.name!r}; valid: {', '.join(OPTIMIZERS)}")
    groups = param_groups(
        model,
        config.weight_decay,
        decay_all=config.decay_norm_and_bias,
        finetune_groups=finetune_groups,
        norm_bias_lr_scale=config.norm_bias_lr_scale,
    )
    for group in groups:
        group["lr"] = config.lr * group["lr_scale"]
    options = {name: _option_value(getattr(config, name)) for name in entry.options}
    return getattr(torch.optim, entry.torch_class)(groups, lr=config.lr, **options)


def _option_value(value):
    """A config value as ``torch.optim`` takes it: lists (``betas``) as tuples of floats."""
    return tuple(float(v) for v in value) if isinstance(value, list) else value
