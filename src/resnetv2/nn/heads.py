"""Classifier heads (see ``ResNetV2Spec.head``)."""

from __future__ import annotations

import torch
from torch import nn

from resnetv2.spec import ResNetV2Spec


def make_classifier(spec: ResNetV2Spec, features: int, num_classes: int) -> nn.Module:
    if num_classes == 0:
        return nn.Identity()
    if spec.classifier == "conv1x1":
        return nn.Conv2d(features, num_classes, 1, bias=True)
    return nn.Linear(features, num_classes)


class ClassifierHead(nn.Module):
    """Global average pool, optional dense block, dropout, classifier.

    The ``dense`` head is the seed tutorial's Dense(512)-ReLU-BN-Dropout(0.5) before the
    classifier; its fixed 8×8 average pool is replaced by a global one, which equals it on
    32×32 inputs and works for any size.
    """

    def __init__(self, spec: ResNetV2Spec) -> None:
        super().__init__()
        self.spec_classifier = spec.classifier
        features = spec.num_features
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
        self.fc = make_classifier(spec, features, spec.num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))
        if self.hidden is not None:
            x = self.hidden_drop(self.hidden_norm(self.hidden_act(self.hidden(x))))
        x = self.drop(x)
        if pre_logits:
            return x
        if isinstance(self.fc, nn.Conv2d):
            return self.fc(x[:, :, None, None]).flatten(1)
        return self.fc(x)
