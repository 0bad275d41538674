"""Import pytorchcv's CIFAR pre-activation ResNets (``preresnet*_cifar10`` / ``_cifar100``).

pytorchcv (osmr/imgclsmob, ``pytorchcv/models/preresnet_cifar.py``) publishes pretrained
CIFAR weights for He et al.'s nets. Its conventions, read from that code, map onto a spec as:

- stem: a bare 3×3 conv, stride 1, no bias, no BN (``features.init_block``) → ``conv3x3``;
- units: ``PreResUnit``; each conv is a ``PreConvBlock`` = BN-ReLU-conv, and the projection
  shortcut (``identity_conv``, 1×1, no bias) sees the first block's pre-activated input →
  ``shortcut_input="preact"``; a projection wherever channels or stride change;
- stride: on the first 3×3 of a basic unit and — ``conv1_stride=False`` — on the 3×3 of a
  bottleneck unit → ``stride_at="first_3x3"``; stages 2 and 3 downsample;
- head: final BN-ReLU (``post_activ``), 8×8 average pool (= global pool at 32×32), linear.

Key names map mechanically: ``features.stage{i}.unit{j}.body.conv{k}.bn`` →
``stages.{i-1}.blocks.{j-1}.norm{k}``, ``...conv{k}.conv`` → ``...conv{k}``,
``identity_conv`` → ``downsample.conv``, ``post_activ.bn`` → ``norm``, ``output`` →
``head.fc``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from resnetv2.convert.common import (
    ConversionError,
    ImportedWeights,
    default_class_names,
    preprocessing,
    shape,
    tensor_dict,
)
from resnetv2.convert.offline import pytorchcv_cached_file, pytorchcv_download_blocker
from resnetv2.options import make_spec
from resnetv2.spec import ResNetV2Spec

#: imgclsmob's CIFAR normalisation (``cifar10_cls_dataset.py``; also used for CIFAR-100).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip

CIFAR100_CLASSES = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
]

NAME_PATTERN = re.compile(r"^preresnet(\d+)(bn)?_(cifar10|cifar100|svhn)$")
_RENAMES = (
    (re.compile(r"^features\.init_block\.(weight|bias)$"), r"stem.conv.\1"),
    (
        re.compile(r"^features\.stage(\d+)\.unit(\d+)\.body\.conv(\d)\.bn\.(.+)$"),
        lambda m: f"stages.{int(m[1]) - 1}.blocks.{int(m[2]) - 1}.norm{m[3]}.{m[4]}",
    ),
    (
        re.compile(r"^features\.stage(\d+)\.unit(\d+)\.body\.conv(\d)\.conv\.(.+)$"),
        lambda m: f"stages.{int(m[1]) - 1}.blocks.{int(m[2]) - 1}.conv{m[3]}.{m[4]}",
    ),
    (
        re.compile(r"^features\.stage(\d+)\.unit(\d+)\.identity_conv\.(.+)$"),
        lambda m: f"stages.{int(m[1]) - 1}.blocks.{int(m[2]) - 1}.downsample.conv.{m[3]}",
    ),
    (re.compile(r"^features\.post_activ\.bn\.(.+)$"), r"norm.\1"),
    (re.compile(r"^output\.(.+)$"), r"head.fc.\1"),
)


def looks_like_pytorchcv(state: Mapping[str, Any]) -> bool:
    return "features.init_block.weight" in state and "features.post_activ.bn.weight" in state


def pytorchcv_key(name: str) -> str:
    """Our name for pytorchcv parameter/buffer ``name`` (ConversionError when unknown)."""
    for pattern, replacement in _RENAMES:
        if pattern.match(name):
            return pattern.sub(replacement, name)
    raise ConversionError(f"pytorchcv checkpoint: no mapping for key {name!r}")


def pytorchcv_cifar_spec(
    state: Mapping[str, torch.Tensor], name: str | None = None
) -> ResNetV2Spec:
    """The spec of a pytorchcv CIFAR pre-activation ResNet, read from its tensor shapes."""
    what = "pytorchcv checkpoint"
    stem_width, in_channels, k, _ = shape(state, "features.init_block.weight", what)
    if k != 3:
        raise ConversionError(
            f"{what}: init_block is a {k}x{k} conv; only the CIFAR nets (3x3 stem) are supported"
        )
    units: dict[int, int] = {}
    unit_key = re.compile(r"^features\.stage(\d+)\.unit(\d+)\.")
    for key in state:
        match = unit_key.match(key)
        if match:
            s, u = int(match[1]), int(match[2])
            units[s] = max(units.get(s, 0), u)
    if not units or sorted(units) != list(range(1, len(units) + 1)):
        raise ConversionError(f"{what}: stages are missing or not numbered 1..N")
    bottleneck = "features.stage1.unit1.body.conv3.conv.weight" in state
    last = "conv3" if bottleneck else "conv2"
    widths, outs = [], []
    for s in range(1, len(units) + 1):
        widths.append(shape(state, f"features.stage{s}.unit1.body.conv1.conv.weight", what)[0])
        outs.append(shape(state, f"features.stage{s}.unit1.body.{last}.conv.weight", what)[0])
    num_classes = shape(state, "output.weight", what)[0]
    spec = make_spec(
        layout="cifar",
        block="bottleneck" if bottleneck else "basic",
        units=[units[s] for s in range(1, len(units) + 1)],
        widths=widths,
        out_channels=outs,
        strides=[1] + [2] * (len(units) - 1),
        stem_type="conv3x3",
        stem_width=stem_width,
        in_channels=in_channels,
        num_classes=num_classes,
        stride_at="first_3x3",
        shortcut_input="preact",
        conv_bias="none",
    )
    if name is None:
        suffix = {10: "_cifar10", 100: "_cifar100"}.get(num_classes, "")
        # pytorchcv's names: preresnet164bn, 272bn, 542bn, but preresnet1001 (bottleneck too).
        bn = "bn" if bottleneck and spec.depth != 1001 else ""
        name = f"preresnet{spec.depth}{bn}{suffix}"
    return spec.replace(name=name)


def convert_pytorchcv_state_dict(
    state: Mapping[str, Any], *, name: str | None = None, source: dict[str, Any] | None = None
) -> ImportedWeights:
    """Convert a pytorchcv ``preresnet*_cifar*`` state dict into our names and spec."""
    tensors = tensor_dict(state, "pytorchcv checkpoint")
    if name is not None and not NAME_PATTERN.match(name):
        raise ConversionError(
            f"pytorchcv model {name!r} is not a CIFAR pre-activation ResNet "
            "(preresnet<depth>[bn]_cifar10 / _cifar100 / _svhn)"
        )
    spec = pytorchcv_cifar_spec(tensors, name)
    converted = {pytorchcv_key(k): v for k, v in tensors.items()}
    if spec.name.endswith("svhn"):
        classes = [str(d) for d in range(spec.num_classes)]
    elif spec.num_classes == 100:
        classes = list(CIFAR100_CLASSES)
    elif spec.num_classes == 10:
        classes = list(CIFAR10_CLASSES)
    else:
        classes = default_class_names(spec.num_classes)
    return ImportedWeights(
        spec=spec,
        state_dict=converted,
        preprocessing=preprocessing((32, 32), spec.in_channels, CIFAR_MEAN, CIFAR_STD),
        class_names=classes,
        source={"library": "pytorchcv", "model": spec.name, **(source or {})},
    )


def fetch_pytorchcv(name: str) -> ImportedWeights:
    """Download pytorchcv's pretrained ``name`` through pytorchcv's own model store.

    Offline, raises :class:`ConversionError` saying how to pass a local file instead.
    """
    if not NAME_PATTERN.match(name):
        raise ConversionError(
            f"pytorchcv:{name}: not a CIFAR pre-activation ResNet; use "
            "preresnet<depth>[bn]_cifar10 / _cifar100 (e.g. preresnet164bn_cifar10)"
        )
    try:
        from pytorchcv.model_provider import get_model
    except ImportError:
        raise ConversionError(
            f"pytorchcv:{name} needs the pytorchcv package (pip install pytorchcv), or pass a "
            "local file"
        ) from None
    # Check the local store before any network call (pytorchcv's download retries too).
    blocker = None if pytorchcv_cached_file(name) else pytorchcv_download_blocker()
    try:
        if blocker:
            raise ConnectionError(blocker)
        net = get_model(name, pretrained=True)
    except Exception as exc:  # noqa: BLE001 - any download failure gets the same advice
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConversionError(
            f"could not download pytorchcv:{name} (offline? {type(exc).__name__}: {reason}). "
            'On a machine with internet access save its state dict, e.g. `python -c "import '
            "torch; from pytorchcv.model_provider import get_model; torch.save(get_model("
            f"'{name}', pretrained=True).state_dict(), '{name}.pth')\"`, then pass the file: "
            f"--init-weights {name}.pth (or `resnetv2 convert {name}.pth --from pytorchcv`)."
        ) from None
    return convert_pytorchcv_state_dict(net.state_dict(), name=name)
