"""Import timm ResNetV2 checkpoints (``timm.models.resnetv2``, BN pre-activation variants).

Our ``resnetv2_18/34/50/101/152/200`` presets use timm's module names (``stem.conv``,
``stages.N.blocks.M.{norm1,conv1,...}``, ``norm``, ``head.fc``), so the state dict needs no
renaming; this module only reads the architecture off the tensor shapes (units per stage,
block type, widths, classes, input channels) and refuses the timm variants whose layers we
do not build (deep stems ``*d``/``*t``, BiT's weight-standardised convs with GroupNorm, FRN
or EvoNorm), which would otherwise load without error and compute something else.

Online, :func:`fetch_timm` downloads through timm's own hub code
(``timm.create_model(name, pretrained=True)``); offline it raises a message that says how to
pass a local file instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from resnetv2.convert.common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ConversionError,
    ImportedWeights,
    default_class_names,
    preprocessing,
    shape,
    tensor_dict,
)
from resnetv2.convert.offline import hf_cached_file, timm_download_blocker
from resnetv2.options import make_spec
from resnetv2.presets import list_presets
from resnetv2.spec import ResNetV2Spec

_BLOCK_KEY = re.compile(r"^stages\.(\d+)\.blocks\.(\d+)\.")


def looks_like_timm(state: Mapping[str, Any]) -> bool:
    """Whether a state dict uses timm's ResNetV2 names (``stem.conv`` + ``stages.N.blocks``)."""
    keys = list(state)
    return any(k.startswith("stem.") for k in keys) and any(_BLOCK_KEY.match(k) for k in keys)


def timm_spec_from_state_dict(
    state: Mapping[str, torch.Tensor], name: str | None = None
) -> ResNetV2Spec:
    """The spec of the timm ResNetV2 whose weights ``state`` holds, read from tensor shapes.

    Stage strides cannot be read from weights; timm's (1, 2, 2, 2) is assumed. When the
    result equals one of our ``resnetv2_*`` presets (up to classes and input channels) the
    spec carries that preset's name.
    """
    what = "timm checkpoint"
    if "stem.conv1.weight" in state:
        raise ConversionError(
            f"{what}: a deep stem (stem.conv1/conv2/conv3, timm's resnetv2_*d / *t variants) is "
            "not a stem resnetv2 builds; use the plain 7x7-stem models (resnetv2_18/34/50/101/152)"
        )
    stem_width, in_channels, k, _ = shape(state, "stem.conv.weight", what)
    if k != 7:
        raise ConversionError(f"{what}: stem.conv is {k}x{k}; only timm's 7x7 stem is supported")
    if "norm.running_var" not in state:
        raise ConversionError(
            f"{what}: the final norm has no running statistics, so this is a GroupNorm / FRN / "
            "EvoNorm variant (e.g. BiT's resnetv2_50x1_bit with weight-standardised convs), "
            "which resnetv2 does not reproduce; use a BatchNorm ResNetV2 (resnetv2_50, ...)"
        )
    units: dict[int, int] = {}
    for key in state:
        match = _BLOCK_KEY.match(key)
        if match:
            s, b = int(match.group(1)), int(match.group(2))
            units[s] = max(units.get(s, 0), b + 1)
    if not units or sorted(units) != list(range(len(units))):
        raise ConversionError(f"{what}: stages are missing or not numbered 0..N-1")
    bottleneck = "stages.0.blocks.0.conv3.weight" in state
    block = "bottleneck" if bottleneck else "basic"
    last = "conv3" if bottleneck else "conv2"
    widths, outs = [], []
    for s in range(len(units)):
        widths.append(shape(state, f"stages.{s}.blocks.0.conv1.weight", what)[0])
        outs.append(shape(state, f"stages.{s}.blocks.0.{last}.weight", what)[0])
    num_classes = shape(state, "head.fc.weight", what)[0] if "head.fc.weight" in state else 0
    options: dict[str, Any] = dict(
        layout="imagenet",
        block=block,
        units=[units[s] for s in range(len(units))],
        widths=widths,
        out_channels=outs,
        strides=[1] + [2] * (len(units) - 1),
        stem_width=stem_width,
        in_channels=in_channels,
        num_classes=num_classes,
        classifier="conv1x1",
    )
    spec = make_spec(**options)
    preset = matching_preset(spec)
    return spec.replace(name=name or preset or "timm_resnetv2")


def matching_preset(spec: ResNetV2Spec) -> str | None:
    """The ``resnetv2_*`` preset equal to ``spec`` up to classes, input channels and name."""
    for preset in list_presets():
        if not preset.startswith("resnetv2_"):
            continue
        candidate = make_spec(
            preset, num_classes=spec.num_classes, in_channels=spec.in_channels, name=spec.name
        )
        if candidate == spec:
            return preset
    return None


def timm_preprocessing(name: str | None, in_channels: int = 3) -> dict[str, Any]:
    """Preprocessing for timm model ``name`` from timm's pretrained config (read offline).

    Falls back to 224x224, ImageNet mean/std, bicubic when timm or the name is unknown.
    """
    cfg: dict[str, Any] = {}
    if name:
        try:
            import timm

            found = timm.get_pretrained_cfg(name)
            cfg = found.to_dict() if found is not None else {}
        except Exception:  # noqa: BLE001 - timm missing or name unknown: use the defaults
            cfg = {}
    size = cfg.get("input_size", (in_channels, 224, 224))
    return preprocessing(
        (size[1], size[2]),
        in_channels,
        cfg.get("mean", IMAGENET_MEAN),
        cfg.get("std", IMAGENET_STD),
        cfg.get("interpolation", "bicubic"),
        cfg.get("crop_pct", 1.0),
    )


def imagenet_class_names(num_classes: int) -> list[str]:
    """ImageNet-1k descriptions from timm's bundled label info, else ``class_i``."""
    if num_classes == 1000:
        try:
            from timm.data import ImageNetInfo

            info = ImageNetInfo()
            return [info.index_to_description(i) for i in range(1000)]
        except Exception:  # noqa: BLE001 - timm missing: generic names still work
            pass
    return default_class_names(num_classes)


def convert_timm_state_dict(
    state: Mapping[str, Any], *, name: str | None = None, source: dict[str, Any] | None = None
) -> ImportedWeights:
    """Convert a timm ResNetV2 state dict (``module.`` / ``_orig_mod.`` prefixes allowed)."""
    tensors = tensor_dict(state, "timm checkpoint")
    spec = timm_spec_from_state_dict(tensors, name)
    timm_name = name or (spec.name if spec.name.startswith("resnetv2_") else None)
    return ImportedWeights(
        spec=spec,
        state_dict=tensors,
        preprocessing=timm_preprocessing(timm_name, spec.in_channels),
        class_names=imagenet_class_names(spec.num_classes),
        source={"library": "timm", **({"model": timm_name} if timm_name else {}), **(source or {})},
    )


OFFLINE_HELP = (
    "Download the weights on a machine with internet access (e.g. "
    '`python -c "import timm, safetensors.torch as s; '
    "s.save_file(timm.create_model('{name}', pretrained=True).state_dict(), '{name}.safetensors')\"`"
    " or the model.safetensors file of https://huggingface.co/{hub_id}) and pass the local file "
    "instead: --init-weights {name}.safetensors (or `resnetv2 convert {name}.safetensors "
    "--from timm`)."
)


def fetch_timm(name: str) -> ImportedWeights:
    """Download timm's pretrained ``name`` through timm's hub code and convert it.

    Raises :class:`ConversionError` with instructions for a local file when the download
    cannot happen (offline, ``HF_HUB_OFFLINE=1``, unknown name, timm not installed).
    """
    try:
        import timm
    except ImportError:
        raise ConversionError(
            f"timm:{name} needs the timm package (pip install timm), or pass a local file"
        ) from None
    if name not in timm.list_models("resnetv2*"):
        raise ConversionError(
            f"timm:{name}: not a timm ResNetV2 model; BN variants resnetv2 can import: "
            + ", ".join(p for p in list_presets() if p.startswith("resnetv2_"))
        )
    cfg = timm.get_pretrained_cfg(name)
    hub_id = getattr(cfg, "hf_hub_id", None) or f"timm/{name}"
    cached = hf_cached_file(hub_id)  # check cache and offline mode before any network call
    blocker = None if cached else timm_download_blocker(hub_id)
    if blocker:
        raise ConversionError(
            f"could not download timm:{name} ({blocker}). "
            + OFFLINE_HELP.format(name=name, hub_id=hub_id)
        )
    overlay = {"pretrained_cfg_overlay": {"file": cached}} if cached else {}
    try:
        model = timm.create_model(name, pretrained=True, **overlay)
    except Exception as exc:  # noqa: BLE001 - any download failure gets the same advice
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConversionError(
            f"could not download timm:{name} (offline? {type(exc).__name__}: {reason}). "
            + OFFLINE_HELP.format(name=name, hub_id=hub_id)
        ) from None
    return convert_timm_state_dict(
        model.state_dict(), name=name, source={"timm_pretrained": hub_id}
    )
