"""PyTorch builders for ResNetV2 specs."""

from resnetv2.nn.factory import ResidualStages, create_model
from resnetv2.nn.features import FeatureInfo, ResNetV2Features
from resnetv2.nn.model import ResNetV2, spec_of

__all__ = [
    "FeatureInfo",
    "ResNetV2",
    "ResNetV2Features",
    "ResidualStages",
    "create_model",
    "spec_of",
]
