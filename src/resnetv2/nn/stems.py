"""Stems: the layers before the first residual unit (see ``ResNetV2Spec.stem_type``)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from resnetv2.nn.layers import BatchNormAct2d, NormLayer, conv2d
from resnetv2.spec import STEM_TYPES, StemType, check_choice


def make_stem(
    in_chs: int,
    out_chs: int,
    stem_type: StemType = "conv3x3",
    *,
    norm_layer: NormLayer = BatchNormAct2d,
    bias: bool = False,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Build the stem; module names (``stem.conv``, ``stem.pool``) follow timm.

    ``conv3x3`` is the paper's CIFAR stem (He et al. 2016, Sec. 4.1); ``conv7x7_maxpool`` its
    ImageNet stem; ``conv3x3_bn_relu`` adds ``norm_layer`` and a ``dropout`` (the seed
    tutorial); ``none`` is empty. ``bias`` puts a bias on the stem conv.
    """
    check_choice("stem_type", stem_type, STEM_TYPES)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if stem_type == "none":
        return nn.Sequential(layers)
    if stem_type.startswith("conv7x7"):
        layers["conv"] = conv2d(in_chs, out_chs, 7, 2, bias)
    else:
        layers["conv"] = conv2d(in_chs, out_chs, 3, 1, bias)
    if stem_type == "conv3x3_bn_relu":
        layers["norm"] = norm_layer(out_chs)
        if dropout:
            layers["drop"] = nn.Dropout(dropout)
    if stem_type == "conv7x7_maxpool":
        layers["pool"] = nn.MaxPool2d(3, stride=2, padding=1)
    elif stem_type == "conv7x7_zeropad_maxpool":
        # Keras pads with zeros before pooling; the un-normalised conv output can be negative,
        # so this differs from PyTorch's -inf padding at the borders.
        layers["pad"] = nn.ConstantPad2d(1, 0.0)
        layers["pool"] = nn.MaxPool2d(3, stride=2, padding=0)
    return nn.Sequential(layers)
