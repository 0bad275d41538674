"""Pre-activation residual units (He et al. 2016, "Identity Mappings in Deep Residual Networks").

Each unit computes ``x + F(BN-ReLU(x))``: normalisation and activation come *before* each
conv, and the shortcut stays a clean identity whenever shapes allow (the paper's Fig. 1b/4e).
Where a unit departs from the paper it is because the spec asks for it: see
:class:`resnetv2.spec.ResNetV2Spec` for ``stride_at``, ``shortcut_input`` and ``conv_bias``.
Parameter names (``norm1``, ``conv1``, …, ``downsample.conv``) match timm's
``PreActBasic`` / ``PreActBottleneck``.
"""

from __future__ import annotations

import torch
from torch import nn

from resnetv2.nn.layers import DropPath, conv2d, norm_act
from resnetv2.spec import ResNetV2Spec, UnitSpec, conv_has_bias


class Projection(nn.Module):
    """1×1 (strided) conv shortcut for units that change shape."""

    def __init__(self, cin: int, cout: int, stride: int, bias: bool) -> None:
        super().__init__()
        self.conv = conv2d(cin, cout, 1, stride, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PreActUnit(nn.Module):
    """Shared shortcut logic of the basic and bottleneck units."""

    last_conv: str

    def _init_shortcut(self, spec: ResNetV2Spec, unit: UnitSpec) -> None:
        self.norm1 = norm_act(spec, unit.in_channels) if unit.preact else nn.Identity()
        if unit.shortcut == "projection":
            bias = conv_has_bias(spec, "shortcut")
            self.downsample = Projection(unit.in_channels, unit.out_channels, unit.stride, bias)
        else:
            self.downsample = None
        self.subsample = unit.stride if unit.shortcut == "subsample" else 1
        self.shortcut_raw = spec.shortcut_input == "raw"
        self.drop_path = DropPath(unit.drop_path) if unit.drop_path > 0 else nn.Identity()

    def _shortcut(self, x: torch.Tensor, x_preact: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            return self.downsample(x if self.shortcut_raw else x_preact)
        if self.subsample > 1:
            # keras.applications' MaxPooling2D(1, strides=s): keep every s-th pixel.
            return x[:, :, :: self.subsample, :: self.subsample]
        return x

    def zero_init_last(self) -> None:
        """Zero the branch's last conv so the unit starts as an identity (Goyal et al. 2017)."""
        nn.init.zeros_(getattr(self, self.last_conv).weight)


class PreActBasic(PreActUnit):
    """Two 3×3 convs, each preceded by BN-ReLU. The stride sits on the first 3×3."""

    last_conv = "conv2"

    def __init__(self, spec: ResNetV2Spec, unit: UnitSpec) -> None:
        super().__init__()
        self._init_shortcut(spec, unit)
        inner, last = conv_has_bias(spec, "inner"), conv_has_bias(spec, "last")
        self.conv1 = conv2d(unit.in_channels, unit.width, 3, unit.stride, inner)
        self.norm2 = norm_act(spec, unit.width)
        self.conv2 = conv2d(unit.width, unit.out_channels, 3, 1, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_preact = self.norm1(x)
        shortcut = self._shortcut(x, x_preact)
        y = self.conv1(x_preact)
        y = self.conv2(self.norm2(y))
        return self.drop_path(y) + shortcut


class PreActBottleneck(PreActUnit):
    """1×1 reduce, 3×3, 1×1 expand, each preceded by BN-ReLU.

    The paper's code strides the first 1×1 (``stride_at="first_1x1"``); timm and pytorchcv
    stride the 3×3 (``first_3x3``), keras.applications the 3×3 of the stage's last unit.
    """

    last_conv = "conv3"

    def __init__(self, spec: ResNetV2Spec, unit: UnitSpec) -> None:
        super().__init__()
        self._init_shortcut(spec, unit)
        inner, last = conv_has_bias(spec, "inner"), conv_has_bias(spec, "last")
        s1 = unit.stride if unit.stride_on == "conv1" else 1
        s2 = unit.stride if unit.stride_on == "conv2" else 1
        self.conv1 = conv2d(unit.in_channels, unit.width, 1, s1, inner)
        self.norm2 = norm_act(spec, unit.width)
        self.conv2 = conv2d(unit.width, unit.width, 3, s2, inner)
        self.norm3 = norm_act(spec, unit.width)
        self.conv3 = conv2d(unit.width, unit.out_channels, 1, 1, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_preact = self.norm1(x)
        shortcut = self._shortcut(x, x_preact)
        y = self.conv1(x_preact)
        y = self.conv2(self.norm2(y))
        y = self.conv3(self.norm3(y))
        return self.drop_path(y) + shortcut


def make_unit(spec: ResNetV2Spec, unit: UnitSpec) -> PreActUnit:
    return PreActBottleneck(spec, unit) if unit.block == "bottleneck" else PreActBasic(spec, unit)
