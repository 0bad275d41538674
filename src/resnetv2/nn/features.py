"""Feature maps the way timm hands them out: ``feature_info``, ``forward_intermediates`` and
``features_only`` models.

timm numbers a ResNetV2's feature maps 0..N: index 0 is the stem's conv output (before the
stem's pooling; after its BN-ReLU when the stem is normalised), index ``i`` ≥ 1 the raw output
of stage ``i - 1``. Detection and segmentation code written for timm indexes features that way
(``out_indices=(1, 2, 3, 4)``), so the same numbering is used here for every depth and stem:
a CIFAR-style stem's feature has reduction 1, an ImageNet stem's reduction 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from resnetv2.errors import SpecError
from resnetv2.model_metadata import MetadataSlot
from resnetv2.nn.pretrained_cfg import pretrained_cfg as timm_pretrained_cfg
from resnetv2.spec import ResNetV2Spec

#: Stem types whose feature is taken after the stem's own BN-ReLU (timm: non-preact stems).
_NORMED_STEMS = ("conv3x3_bn_relu",)


class FeatureInfo(list):
    """A list of ``{"num_chs", "reduction", "module"}`` dicts with timm's accessors.

    A plain list for the full model (as timm's ``model.feature_info``); a ``features_only``
    model's holds only the taken features and remembers their ``out_indices``, so
    ``channels()`` gives the channels of the maps its forward returns, in order (as timm's
    ``FeatureInfo.channels()``).
    """

    def __init__(self, entries: Sequence[dict[str, Any]], out_indices: Sequence[int] = ()):
        super().__init__(dict(e) for e in entries)
        self.out_indices = tuple(out_indices)

    def _get(self, key: str, idx: int | Sequence[int] | None) -> Any:
        if idx is None:
            return [e[key] for e in self]
        if isinstance(idx, int):
            return self[idx][key]
        return [self[i][key] for i in idx]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        return self._get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        return self._get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        return self._get("module", idx)

    def get_dicts(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self]


def stem_feature_module(spec: ResNetV2Spec) -> str:
    """Name of the stem layer whose output is feature 0 (``""``: the input itself)."""
    if spec.stem_type == "none":
        return ""
    return "norm" if spec.stem_type in _NORMED_STEMS else "conv"


def feature_info(spec: ResNetV2Spec) -> FeatureInfo:
    """Channels, reduction and module of each feature map: the stem's, then each stage's."""
    stem = stem_feature_module(spec)
    reduction = 2 if spec.stem_type.startswith("conv7x7") else 1
    width = spec.stem_width if stem else spec.in_channels
    info = [
        {"num_chs": width, "reduction": reduction, "module": f"stem.{stem}" if stem else "stem"}
    ]
    if spec.stem_type.startswith("conv7x7"):
        reduction *= 2  # the stem's max-pool
    for i, stage in enumerate(spec.stages):
        reduction *= stage.stride
        info.append(
            {"num_chs": stage.out_channels, "reduction": reduction, "module": f"stages.{i}"}
        )
    return FeatureInfo(info)


def take_indices(num_features: int, indices: int | Sequence[int] | None) -> list[int]:
    """timm's ``feature_take_indices``: None → all, int n → the last n, a list → those
    (negative counts from the end). A clear error names the valid range."""
    if indices is None:
        indices = num_features
    if isinstance(indices, bool):
        raise SpecError(f"indices must be an int or a list of ints, got {indices!r}")
    if isinstance(indices, int):
        if not 0 < indices <= num_features:
            raise SpecError(
                f"indices={indices} asks for the last {indices} features, but there are "
                f"{num_features} (1 to {num_features})"
            )
        return list(range(num_features - indices, num_features))
    taken = []
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, int):
            raise SpecError(f"feature indices must be ints, got {i!r}")
        idx = num_features + i if i < 0 else i
        if not 0 <= idx < num_features:
            raise SpecError(
                f"feature index {i} is out of range: this model has features 0 (stem) to "
                f"{num_features - 1} (last stage)"
            )
        taken.append(idx)
    if not taken:
        raise SpecError("give at least one feature index")
    return taken


def run_stem(stem: nn.Sequential, x: torch.Tensor, feature_module: str):
    """The stem's output and its feature-0 map (taken at ``feature_module``)."""
    feat = x
    for name, layer in stem.named_children():
        x = layer(x)
        if name == feature_module:
            feat = x
    return x, feat


class ResNetV2Features(nn.Module):
    """timm's ``features_only`` model: forward returns the feature maps at ``out_indices``
    (default: all of them, the stem's and every stage's).

    Built from a :class:`~resnetv2.nn.ResNetV2` (its weights already loaded) by keeping the
    stem and the stages up to the last index taken; the final norm and the head are dropped,
    as timm drops them, so the last stage's map is its raw (un-normalised) sum. Parameter
    names stay the full model's (``stem.conv.weight``, ``stages.0.blocks.0...``).
    ``metadata`` is the full model's (class names, preprocessing).
    """

    metadata = MetadataSlot()

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | int | None = None):
        super().__init__()
        self.spec = model.spec
        self.metadata = model.metadata
        info = feature_info(self.spec)
        # Maps come out in network order, as timm's FeatureListNet returns them.
        self.out_indices = tuple(sorted(set(take_indices(len(info), out_indices))))
        self._stem_feature = stem_feature_module(self.spec)
        self.stem = model.stem
        self.stages = nn.Sequential(*list(model.stages)[: max(self.out_indices)])
        # timm's FeatureInfo numbers its entries ("index"); the full model's list does not.
        taken = [{**info[i], "index": i} for i in self.out_indices]
        self.feature_info = FeatureInfo(taken, self.out_indices)

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        return timm_pretrained_cfg(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, stem_feat = run_stem(self.stem, x, self._stem_feature)
        outs = [stem_feat] if 0 in self.out_indices else []
        for i, stage in enumerate(self.stages, start=1):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return outs
