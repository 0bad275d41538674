"""resnetv2: pre-activation ResNets (He et al. 2016) of any depth.

>>> import resnetv2
>>> model = resnetv2.create_model(164)            # He et al.'s CIFAR ResNet-164
>>> model = resnetv2.create_model("resnetv2_50")  # timm-compatible ImageNet net
>>> spec = resnetv2.make_spec(1001)               # the pure-data architecture
"""

from resnetv2._version import __version__
from resnetv2.analysis import analyze, count_flops, count_params
from resnetv2.depth import units_for_depth, valid_depths
from resnetv2.errors import DepthError, PresetError, ResNetV2Error, SpecError
from resnetv2.options import make_spec
from resnetv2.presets import list_presets
from resnetv2.spec import ResNetV2Spec, StageSpec

__all__ = [
    "DepthError",
    "Predictor",
    "Preprocessing",
    "PresetError",
    "ResNetV2Error",
    "ResNetV2Spec",
    "SpecError",
    "StageSpec",
    "__version__",
    "analyze",
    "count_flops",
    "count_params",
    "create_model",
    "list_presets",
    "load",
    "make_spec",
    "save_model",
    "save_pretrained",
    "units_for_depth",
    "valid_depths",
]


def __getattr__(name: str):
    # torch is imported only when a model is built, so the spec layer stays torch-free.
    if name in ("create_model", "ResNetV2", "ResidualStages"):
        from resnetv2 import nn

        return getattr(nn, name)
    if name in ("load", "save_model", "save_pretrained"):
        from resnetv2 import loading

        return loading.load_model if name == "load" else getattr(loading, name)
    if name == "Preprocessing":
        from resnetv2.data.preprocessing import Preprocessing

        return Preprocessing
    if name == "Predictor":
        from resnetv2.predict import Predictor

        return Predictor
    raise AttributeError(f"module 'resnetv2' has no attribute {name!r}")
