"""Small building blocks shared by stems, units and heads."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from resnetv2.spec import NORMS, Norm, check_choice

#: A norm-activation factory: ``norm_layer(channels)`` builds a norm followed by ReLU,
#: ``norm_layer(channels, act=False)`` the norm alone. timm's ResNetV2 passes its blocks the
#: same kind of ``norm_layer`` (``BatchNormAct2d``/``GroupNormAct``, activation included).
NormLayer = Callable[..., nn.Module]


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm followed by ReLU, as one module.

    Subclassing keeps the parameter names of a plain ``BatchNorm2d`` (``norm1.weight``…),
    the names timm's ``BatchNormAct2d`` produces, so weights move between the two as they are.
    """

    def __init__(self, channels: int, eps: float = 1e-5, act: bool = True) -> None:
        super().__init__(channels, eps=eps)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        # In place is safe: batch norm's backward does not read its own output.
        return F.relu(x, inplace=True) if self.act else x


class GroupNormAct(nn.GroupNorm):
    """GroupNorm followed by ReLU (timm's ``GroupNormAct`` naming)."""

    def __init__(self, groups: int, channels: int, eps: float = 1e-5, act: bool = True) -> None:
        super().__init__(groups, channels, eps=eps)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return F.relu(x, inplace=True) if self.act else x


def norm_act_layer(norm: Norm = "batch", *, eps: float = 1e-5, groups: int = 32) -> NormLayer:
    """The :data:`NormLayer` for a spec's ``norm``/``norm_eps``/``norm_groups``.

    The activation is ReLU, fused into the norm module: the paper's units are BN-ReLU-conv
    (He et al. 2016, Fig. 4e), and one module per pair keeps timm's parameter names.
    """
    check_choice("norm", norm, NORMS)
    if norm == "group":
        return partial(GroupNormAct, groups, eps=eps)
    return partial(BatchNormAct2d, eps=eps)


def conv2d(cin: int, cout: int, kernel: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """A conv with 'same'-style padding (k // 2), the padding every reference uses here."""
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=bias)


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): drop a unit's residual branch per sample."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate:.4f}"
