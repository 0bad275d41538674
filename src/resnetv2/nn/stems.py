"""Stems: the layers before the first residual unit (see ``ResNetV2Spec.stem_type``)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from resnetv2.nn.layers import conv2d, norm_act
from resnetv2.spec import ResNetV2Spec, conv_has_bias


def make_stem(spec: ResNetV2Spec) -> nn.Sequential:
    """Build the stem; module names (``stem.conv``, ``stem.pool``) follow timm."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if spec.stem_type == "none":
        return nn.Sequential(layers)
    bias = conv_has_bias(spec, "stem")
    if spec.stem_type.startswith("conv7x7"):
        layers["conv"] = conv2d(spec.in_channels, spec.stem_width, 7, 2, bias)
    else:
        layers["conv"] = conv2d(spec.in_channels, spec.stem_width, 3, 1, bias)
    if spec.stem_type == "conv3x3_bn_relu":
        layers["norm"] = norm_act(spec, spec.stem_width)
        if spec.stem_dropout:
            layers["drop"] = nn.Dropout(spec.stem_dropout)
    if spec.stem_type == "conv7x7_maxpool":
        layers["pool"] = nn.MaxPool2d(3, stride=2, padding=1)
    elif spec.stem_type == "conv7x7_zeropad_maxpool":
        # Keras pads with zeros before pooling; the un-normalised conv output can be negative,
        # so this differs from PyTorch's -inf padding at the borders.
        layers["pad"] = nn.ConstantPad2d(1, 0.0)
        layers["pool"] = nn.MaxPool2d(3, stride=2, padding=0)
    return nn.Sequential(layers)
