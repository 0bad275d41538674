"""PyTorch builders for ResNetV2 specs.

The package's public face also offers :func:`~resnetv2.models.create_model`, which lives a
layer above ``nn/`` because ``pretrained=`` loads weights; the modules inside ``nn/`` import
nothing above the spec layer and ``io`` (``docs/architecture.md``).
"""

from resnetv2.models import create_model
from resnetv2.nn.factory import ResidualStages
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
