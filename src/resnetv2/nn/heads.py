"""Classifier heads (see ``ResNetV2Spec.head``)."""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from resnetv2.errors import SpecError, suggest
from resnetv2.spec import Classifier, ResNetV2Spec

#: timm's global pooling types; "" keeps the feature map (no pooling).
GlobalPool = Literal["avg", "max", "avgmax", "catavgmax", ""]
GLOBAL_POOLS: tuple[GlobalPool, ...] = get_args(GlobalPool)


def make_classifier(classifier: Classifier, features: int, num_classes: int) -> nn.Module:
    """The final layer: none for ``num_classes=0``, else a linear or a 1×1 conv (timm's)."""
    if num_classes == 0:
        return nn.Identity()
    if classifier == "conv1x1":
        return nn.Conv2d(features, num_classes, 1, bias=True)
    return nn.Linear(features, num_classes)


def check_global_pool(global_pool: str, spec: ResNetV2Spec, num_classes: int) -> None:
    """Refuse the pooling/head combinations timm refuses, naming what would work."""
    if global_pool not in GLOBAL_POOLS:
        raise SpecError(
            f"global_pool {global_pool!r} is not one of "
            + ", ".join(repr(p) for p in GLOBAL_POOLS)
            + suggest(global_pool, GLOBAL_POOLS)
        )
    if global_pool == "" and num_classes and spec.classifier != "conv1x1":
        raise SpecError(
            "global_pool='' (no pooling) needs num_classes=0 or a conv1x1 classifier "
            "(timm's rule): a linear classifier cannot take a feature map"
        )
    if global_pool in ("", "catavgmax") and spec.head == "dense":
        raise SpecError(
            f"global_pool={global_pool!r} does not fit the dense head, whose hidden layer "
            "takes the pooled channels; use 'avg', 'max' or 'avgmax'"
        )


def global_pool_2d(x: torch.Tensor, pool: str) -> torch.Tensor:
    """Pool ``[N, C, H, W]`` to ``[N, C]`` (``[N, 2C]`` for catavgmax); "" returns ``x``."""
    if pool == "avg":
        return x.mean((2, 3))
    if pool == "max":
        return x.amax((2, 3))
    if pool == "avgmax":
        return 0.5 * (x.mean((2, 3)) + x.amax((2, 3)))
    if pool == "catavgmax":
        return torch.cat((x.mean((2, 3)), x.amax((2, 3))), dim=1)
    return x


class ClassifierHead(nn.Module):
    """Global pool (average unless reset), optional dense block, dropout, classifier.

    The ``dense`` head is the seed tutorial's Dense(512)-ReLU-BN-Dropout(0.5) before the
    classifier; its fixed 8×8 average pool is replaced by a global one, which equals it on
    32×32 inputs and works for any size. ``global_pool`` is timm's pooling choice; it is not
    part of the spec (the paper's nets all average), so weights files record it separately.
    """

    def __init__(self, spec: ResNetV2Spec, global_pool: GlobalPool = "avg") -> None:
        super().__init__()
        check_global_pool(global_pool, spec, spec.num_classes)
        self.global_pool = global_pool
        self.spec_classifier = spec.classifier
        features = spec.num_features * (2 if global_pool == "catavgmax" else 1)
        if spec.head == "dense":
            self.hidden = nn.Linear(features, spec.head_hidden)
            self.hidden_act = nn.ReLU(inplace=True)
            self.hidden_norm = nn.BatchNorm1d(spec.head_hidden, eps=spec.norm_eps)
            self.hidden_drop = nn.Dropout(spec.head_dropout)
            features = spec.head_hidden
        else:
            self.hidden = None
        self.num_features = features
        self.drop = nn.Dropout(spec.dropout) if spec.dropout else nn.Identity()
        self.fc = make_classifier(spec.classifier, features, spec.num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = global_pool_2d(x, self.global_pool)
        if x.ndim == 4:  # no pooling: the classifier (conv1x1 or none) sees the map
            x = self.drop(x)
            return x if pre_logits else self.fc(x)
        if self.hidden is not None:
            x = self.hidden_drop(self.hidden_norm(self.hidden_act(self.hidden(x))))
        x = self.drop(x)
        if pre_logits:
            return x
        if isinstance(self.fc, nn.Conv2d):
            return self.fc(x[:, :, None, None]).flatten(1)
        return self.fc(x)
