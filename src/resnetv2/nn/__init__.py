"""PyTorch builders for ResNetV2 specs."""

from resnetv2.nn.factory import ResidualStages, create_model
from resnetv2.nn.model import ResNetV2, spec_of

__all__ = ["ResNetV2", "ResidualStages", "create_model", "spec_of"]
