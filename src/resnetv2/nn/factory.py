"""``create_model``: from a preset name, a depth or a spec to an ``nn.Module``."""

from __future__ import annotations

from typing import Any

from torch import nn

from resnetv2.nn.model import ResNetV2
from resnetv2.options import make_spec
from resnetv2.spec import ResNetV2Spec


def create_model(
    model: str | int | ResNetV2Spec | None = None, /, *, device: Any = None, **options: Any
) -> ResNetV2:
    """Build a ResNetV2.

    ``model`` is a preset name (``list_presets()``), a depth, or a spec; ``options`` are
    :func:`resnetv2.make_spec` options (``num_classes=``, ``block=``, ``units=``,
    ``stride_at=``, ``width_multiplier=``, ``drop_path_rate=``, …).
    """
    if isinstance(model, ResNetV2Spec):
        spec = model.replace(**options) if options else model
    else:
        spec = make_spec(model, **options)
    return ResNetV2(spec, device=device)


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
