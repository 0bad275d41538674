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


#: Strided 1×1 convs with fewer input channels than this are computed as subsample + 1×1.
#: oneDNN's ``jit_1x1`` weight-gradient kernel (bundled with torch ≤ 2.14.1 at least) sizes
#: its "reduce-to-unit-stride" workspace by the channel block (8 on AVX2, 16 on AVX-512)
#: instead of the real channel count when the input is channels_last (NHWC) and has fewer
#: channels than one block, and writes past it: heap corruption, aborts, or a silently
#: wrong weight gradient (oneDNN issue 6035, "1x1 convolution backward_weights writes past
#: the rtus workspace (nhwc, IC < ic_block)"). 16 covers both ISAs' block.
SAFE_STRIDED_1X1_CHANNELS = 16


class SubsampledPointwiseConv(nn.Conv2d):
    """A strided, unpadded 1×1 conv computed as ``conv1x1(x[:, :, ::s, ::s])``.

    The two are the same function — a 1×1 kernel at stride ``s`` reads exactly the pixels
    the subsample keeps — but this form reaches oneDNN as a stride-1 1×1 conv and so never
    the faulty strided kernel above. It stays an ``nn.Conv2d`` with the same parameters, so
    state dicts, initialisation, Keras conversion and export treat it as any other conv.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if (
            self.kernel_size != (1, 1)
            or self.padding != (0, 0)
            or self.dilation != (1, 1)
            or self.groups != 1
        ):
            raise ValueError("SubsampledPointwiseConv is an unpadded, ungrouped 1x1 conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh, sw = self.stride
        return F.conv2d(x[:, :, ::sh, ::sw], self.weight, self.bias)


def conv2d(cin: int, cout: int, kernel: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """A conv with 'same'-style padding (k // 2), the padding every reference uses here.

    Every conv the spec builds comes from here, so this is the one place that keeps strided
    1×1 convs on few channels away from oneDNN's faulty kernel (see
    :data:`SAFE_STRIDED_1X1_CHANNELS`).
    """
    if kernel == 1 and stride > 1 and cin < SAFE_STRIDED_1X1_CHANNELS:
        return SubsampledPointwiseConv(cin, cout, 1, stride=stride, padding=0, bias=bias)
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
