"""The PyTorch ResNetV2: a thin translation of a :class:`~resnetv2.spec.ResNetV2Spec`.

Every model has the same small interface as timm's models — ``forward_features``,
``forward_head(x, pre_logits=False)``, ``reset_classifier(num_classes)``,
``forward_stages`` (one feature map per stage) and ``feature_info`` — so training, export and
tests are written once for every depth and preset.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from resnetv2.nn.blocks import make_unit
from resnetv2.nn.heads import ClassifierHead, make_classifier
from resnetv2.nn.init import init_weights
from resnetv2.nn.layers import norm_act
from resnetv2.nn.stems import make_stem
from resnetv2.spec import ResNetV2Spec, iter_units, stem_out_channels


class Stage(nn.Module):
    """The units of one stage, under ``blocks`` (timm's ``stages.N.blocks.M`` names)."""

    def __init__(self, units: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class ResNetV2(nn.Module):
    """A pre-activation ResNet built from ``spec`` (He et al. 2016, Fig. 1b)."""

    def __init__(self, spec: ResNetV2Spec, *, device: torch.device | str | None = None) -> None:
        super().__init__()
        if not isinstance(spec, ResNetV2Spec):
            raise TypeError(f"spec must be a ResNetV2Spec, got {type(spec).__name__}")
        self.spec = spec
        self.stem = make_stem(spec)
        per_stage: list[list[nn.Module]] = [[] for _ in spec.stages]
        for unit in iter_units(spec, stem_out_channels(spec)):
            per_stage[unit.stage].append(make_unit(spec, unit))
        self.stages = nn.Sequential(*[Stage(units) for units in per_stage])
        self.norm = norm_act(spec, spec.num_features) if spec.final_norm else nn.Identity()
        self.head = ClassifierHead(spec)
        init_weights(self, zero_init_last=spec.zero_init_last)
        if device is not None:
            self.to(device)
        self.feature_info = _feature_info(spec)

    # -- interface -----------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def num_features(self) -> int:
        return self.spec.num_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, stages and the final BN-ReLU: the feature map the head pools."""
        return self.norm(self.stages(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One feature map per stage (raw stage outputs; the last one after the final norm).

        Pre-activation stage outputs are un-normalised sums; the last is normalised because
        the network itself normalises it before the head.
        """
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            outs.append(self.norm(x) if i == len(self.stages) - 1 else x)
        return outs

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes``."""
        spec = self.spec.replace(num_classes=num_classes)
        param = next(self.parameters())
        fc = make_classifier(spec, self.head.num_features, num_classes)
        fc = fc.to(device=param.device, dtype=param.dtype)
        if num_classes:
            nn.init.normal_(fc.weight, mean=0.0, std=0.01)
            nn.init.zeros_(fc.bias)
        self.head.fc = fc
        self.spec = spec

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each unit's activations in backward instead of storing them (timm's name).

        See :func:`resnetv2.nn.checkpointing.enable_activation_checkpointing` for segments.
        """
        from resnetv2.nn.checkpointing import enable_activation_checkpointing

        enable_activation_checkpointing(self, None if enable else False)


def _feature_info(spec: ResNetV2Spec) -> list[dict]:
    reduction = 1 if spec.stem_type in ("conv3x3", "conv3x3_bn_relu", "none") else 4
    info = []
    for i, stage in enumerate(spec.stages):
        reduction *= stage.stride
        info.append(
            {"num_chs": stage.out_channels, "reduction": reduction, "module": f"stages.{i}"}
        )
    return info


def spec_of(model: nn.Module) -> ResNetV2Spec:
    """The spec a model was built from (works through DDP / torch.compile wrappers)."""
    inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None) or model
    spec = getattr(inner, "spec", None)
    if not isinstance(spec, ResNetV2Spec):
        raise TypeError(f"{type(model).__name__} was not built from a ResNetV2Spec")
    return dataclasses.replace(spec)
