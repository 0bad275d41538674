"""Named specs: the published networks, reproduced exactly.

Each preset is a set of :func:`resnetv2.options.make_spec` options, so any of them can be
overridden (``create_model("seed", depth=110)``, ``create_model("resnetv2_50",
num_classes=10)``). Parameter counts asserted by the tests are in the project's
docs/references.md and the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from resnetv2.errors import PresetError, suggest


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    source: str
    options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))


_PRESETS: dict[str, Preset] = {}


def _add(name: str, description: str, source: str, **options: Any) -> None:
    _PRESETS[name] = Preset(name, description, source, MappingProxyType({**options, "name": name}))


# He et al. 2016, CIFAR: 3×3 stem without BN, stride on the first conv of each stage's first
# unit, projection shortcut on the pre-activated input, final BN-ReLU, linear classifier.
_HE = "He et al. 2016 (arXiv:1603.05027); KaimingHe/resnet-1k-layers"
for _depth, _block in ((20, "basic"), (56, "basic"), (110, "basic"), (164, "bottleneck")):
    _add(
        f"preresnet{_depth}",
        f"He et al. CIFAR pre-activation ResNet-{_depth} ({_block} units)",
        _HE,
        depth=_depth,
        block=_block,
        layout="cifar",
    )
_add(
    "preresnet1001",
    "He et al. CIFAR pre-activation ResNet-1001 (bottleneck units)",
    _HE,
    depth=1001,
    block="bottleneck",
    layout="cifar",
)

# timm's ResNetV2 (BN variants): state_dict keys and shapes equal timm's, so its weights load
# with strict=True. Stride on the 3×3, 7×7 stem + max-pool, 1×1-conv classifier.
_TIMM = "timm.models.resnetv2 (timm 1.0)"
for _depth, _block in ((18, "basic"), (34, "basic"), (50, "bottleneck"), (101, "bottleneck")):
    _add(
        f"resnetv2_{_depth}",
        f"timm-compatible ImageNet ResNetV2-{_depth}",
        _TIMM,
        depth=_depth,
        block=_block,
        layout="imagenet",
        classifier="conv1x1",
    )
for _depth in (152, 200):
    _add(
        f"resnetv2_{_depth}",
        f"timm-compatible ImageNet ResNetV2-{_depth}",
        _TIMM,
        depth=_depth,
        block="bottleneck",
        layout="imagenet",
        classifier="conv1x1",
    )

# keras.applications ResNet50V2/101V2/152V2: the stride sits on the 3×3 of each stage's last
# unit (so stage strides are 2,2,2,1) with a subsampled identity shortcut; biases on the stem,
# shortcut and last conv of each unit; zero-padded max-pool; BN epsilon 1.001e-5.
for _depth in (50, 101, 152):
    _add(
        f"keras_resnet{_depth}v2",
        f"keras.applications ResNet{_depth}V2 conventions",
        "keras.applications.resnet_v2 (Keras 3)",
        depth=_depth,
        block="bottleneck",
        layout="imagenet",
        strides=(2, 2, 2, 1),
        stride_at="last_unit",
        stem_type="conv7x7_zeropad_maxpool",
        conv_bias="keras",
        norm_eps=1.001e-5,
    )

# The seed tutorial's network ("Build a Custom ResNetV2 with the desired depth",
# Akashdesarda/ResNet-builder): 32-filter conv-BN-ReLU-Dropout(0.2) stem; bottleneck units
# whose inner width is the stage's input width (32, 128, 256 → out 128, 256, 512); projection
# shortcut on the raw input; biases everywhere; Keras' default BN epsilon 1e-3; dense head.
_add(
    "seed",
    "The seed tutorial's ResNetV2 (9n+2, dense head), any input size",
    "Akashdesarda/ResNet-builder core/resnet.py",
    depth=56,
    block="bottleneck",
    layout="cifar",
    widths=(32, 128, 256),
    out_channels=(128, 256, 512),
    stem_type="conv3x3_bn_relu",
    stem_width=32,
    stem_dropout=0.2,
    shortcut_input="raw",
    conv_bias="all",
    norm_eps=1e-3,
    head="dense",
    head_hidden=512,
    head_dropout=0.5,
)


def list_presets() -> list[str]:
    """Names of all presets, in a stable order."""
    return list(_PRESETS)


def get_preset(name: str) -> Preset:
    if not isinstance(name, str) or name not in _PRESETS:
        raise PresetError(
            f"unknown preset {name!r}{suggest(name, _PRESETS)}; valid presets: "
            + ", ".join(_PRESETS)
        )
    return _PRESETS[name]
