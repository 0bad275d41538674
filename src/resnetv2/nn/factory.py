"""``ResidualStages``: residual stages of any depth to append to your own network.

(``create_model``, which also loads pretrained weights, is :mod:`resnetv2.models`.)"""

from __future__ import annotations

from typing import Any

from torch import nn

from resnetv2.nn.model import ResNetV2
from resnetv2.options import make_spec


class ResidualStages(nn.Module):
    """Residual stages to append to your own network (the tutorial's ``build_resnet_layer``).

    ``ResidualStages(in_channels=64, depth=29)`` adds He et al.'s three CIFAR stages after a
    layer with 64 channels; ``units=[2, 2]`` with ``widths=[64, 128]`` adds two custom ones.
    The output is the final feature map (after BN-ReLU unless ``final_norm=False``), ready for
    a pooling layer or any head.
    """

    def __init__(
        self, in_channels: int, depth: int | None = None, *, device: Any = None, **options: Any
    ) -> None:
        super().__init__()
        options.setdefault("final_norm", True)
        spec = make_spec(depth, in_channels=in_channels, stem_type="none", num_classes=0, **options)
        self.body = ResNetV2(spec, device=device)
        self.spec = spec
        self.out_channels = spec.num_features

    def forward(self, x):
        return self.body.forward_features(x)
