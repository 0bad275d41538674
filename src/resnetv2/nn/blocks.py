"""Pre-activation residual units (He et al. 2016, "Identity Mappings in Deep Residual Networks").

Each unit computes ``x + F(BN-ReLU(x))``: normalisation and activation come *before* each
conv, and the shortcut stays a clean identity whenever shapes allow (the paper's Fig. 1b/4e).

As timm's ``PreActBasic`` / ``PreActBottleneck``, the units take explicit arguments (channels,
stride, a ``norm_layer`` factory, per-unit options) and know nothing of the spec;
:func:`resnetv2.nn.model.make_unit` translates a :class:`~resnetv2.spec.UnitSpec` into them.
The options beyond timm's exist because references differ (see
:class:`resnetv2.spec.ResNetV2Spec` for ``stride_at``, ``shortcut_input`` and ``conv_bias``).
Parameter names (``norm1``, ``conv1``, …, ``downsample.conv``) match timm's.
"""

from __future__ import annotations

import torch
from torch import nn

from resnetv2.nn.layers import BatchNormAct2d, DropPath, NormLayer, conv2d
from resnetv2.spec import (
    SHORTCUT_INPUTS,
    SHORTCUTS,
    STRIDE_ON,
    Shortcut,
    ShortcutInput,
    StrideOn,
    check_choice,
)


class Projection(nn.Module):
    """1×1 (strided) conv shortcut for units that change shape (option B of He et al. 2015)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, bias: bool = False) -> None:
        super().__init__()
        self.conv = conv2d(in_chs, out_chs, 1, stride, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PreActUnit(nn.Module):
    """Shared shortcut logic of the basic and bottleneck units.

    Args:
        in_chs, out_chs: input and output channels.
        stride: the unit's downsampling factor.
        norm_layer: builds each norm-activation (``norm_layer(channels)``).
        preact: False skips ``norm1`` — for the first unit after a stem that already ends
            in BN-ReLU, as the paper's code does (``norm1`` is then an ``Identity``).
        shortcut: ``identity``, ``projection`` (a 1×1 conv, strided with the unit) or
            ``subsample`` (the identity taken every ``stride`` pixels, keras.applications'
            1×1 max-pool); None: a projection when the shape changes, else the identity.
        shortcut_input: what the projection sees: the pre-activated input (``preact``, the
            paper and timm) or the raw input (``raw``, the seed tutorial).
        proj_bias: whether the projection conv has a bias.
        drop_path_rate: stochastic depth rate of the residual branch (Huang et al. 2016).
    """

    last_conv: str

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        stride: int = 1,
        norm_layer: NormLayer = BatchNormAct2d,
        preact: bool = True,
        shortcut: Shortcut | None = None,
        shortcut_input: ShortcutInput = "preact",
        proj_bias: bool = False,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if shortcut is None:
            shortcut = "projection" if in_chs != out_chs or stride != 1 else "identity"
        check_choice("shortcut", shortcut, SHORTCUTS)
        check_choice("shortcut_input", shortcut_input, SHORTCUT_INPUTS)
        # Registration order (norm1, downsample, then the convs) keeps state_dict key order.
        self.norm1 = norm_layer(in_chs) if preact else nn.Identity()
        if shortcut == "projection":
            self.downsample = Projection(in_chs, out_chs, stride, proj_bias)
        else:
            self.downsample = None
        self.subsample = stride if shortcut == "subsample" else 1
        self.shortcut_raw = shortcut_input == "raw"
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

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
    """Two 3×3 convs, each preceded by BN-ReLU (the paper's basic unit). The stride sits on
    the first 3×3.

    ``mid_chs`` (default ``out_chs``) is the first conv's output; ``bias`` / ``last_bias`` put
    a bias on the first / the last conv. Other arguments: see :class:`PreActUnit`.
    """

    last_conv = "conv2"

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        mid_chs: int | None = None,
        *,
        stride: int = 1,
        norm_layer: NormLayer = BatchNormAct2d,
        preact: bool = True,
        shortcut: Shortcut | None = None,
        shortcut_input: ShortcutInput = "preact",
        bias: bool = False,
        last_bias: bool = False,
        proj_bias: bool = False,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(
            in_chs,
            out_chs,
            stride=stride,
            norm_layer=norm_layer,
            preact=preact,
            shortcut=shortcut,
            shortcut_input=shortcut_input,
            proj_bias=proj_bias,
            drop_path_rate=drop_path_rate,
        )
        mid_chs = out_chs if mid_chs is None else mid_chs
        self.conv1 = conv2d(in_chs, mid_chs, 3, stride, bias)
        self.norm2 = norm_layer(mid_chs)
        self.conv2 = conv2d(mid_chs, out_chs, 3, 1, last_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_preact = self.norm1(x)
        shortcut = self._shortcut(x, x_preact)
        y = self.conv1(x_preact)
        y = self.conv2(self.norm2(y))
        return self.drop_path(y) + shortcut


class PreActBottleneck(PreActUnit):
    """1×1 reduce to ``mid_chs``, 3×3, 1×1 expand to ``out_chs``, each preceded by BN-ReLU.

    ``stride_on`` names the conv carrying the stride: the paper's code strides the first 1×1
    (``conv1``); timm and pytorchcv stride the 3×3 (``conv2``, the default). ``bias`` puts a
    bias on conv1/conv2, ``last_bias`` on conv3. Other arguments: see :class:`PreActUnit`.
    """

    last_conv = "conv3"

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        mid_chs: int | None = None,
        *,
        stride: int = 1,
        stride_on: StrideOn = "conv2",
        norm_layer: NormLayer = BatchNormAct2d,
        preact: bool = True,
        shortcut: Shortcut | None = None,
        shortcut_input: ShortcutInput = "preact",
        bias: bool = False,
        last_bias: bool = False,
        proj_bias: bool = False,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(
            in_chs,
            out_chs,
            stride=stride,
            norm_layer=norm_layer,
            preact=preact,
            shortcut=shortcut,
            shortcut_input=shortcut_input,
            proj_bias=proj_bias,
            drop_path_rate=drop_path_rate,
        )
        check_choice("stride_on", stride_on, STRIDE_ON)
        mid_chs = out_chs // 4 if mid_chs is None else mid_chs  # the paper's 4× expansion
        s1 = stride if stride_on == "conv1" else 1
        s2 = stride if stride_on == "conv2" else 1
        self.conv1 = conv2d(in_chs, mid_chs, 1, s1, bias)
        self.norm2 = norm_layer(mid_chs)
        self.conv2 = conv2d(mid_chs, mid_chs, 3, s2, bias)
        self.norm3 = norm_layer(mid_chs)
        self.conv3 = conv2d(mid_chs, out_chs, 1, 1, last_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_preact = self.norm1(x)
        shortcut = self._shortcut(x, x_preact)
        y = self.conv1(x_preact)
        y = self.conv2(self.norm2(y))
        y = self.conv3(self.norm3(y))
        return self.drop_path(y) + shortcut
