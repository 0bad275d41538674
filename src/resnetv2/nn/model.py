"""The PyTorch ResNetV2: a thin translation of a :class:`~resnetv2.spec.ResNetV2Spec`.

Every model has the same interface as timm's models — ``forward_features``,
``forward_head(x, pre_logits=False)``, ``reset_classifier(num_classes, global_pool=None)``,
``forward_intermediates``, ``feature_info`` and ``pretrained_cfg`` — plus ``forward_stages``
(one feature map per stage), so training, export and tests are written once for every depth
and preset, and code written for timm's ResNetV2 runs unchanged on any depth.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from resnetv2.errors import SpecError
from resnetv2.model_metadata import MetadataSlot
from resnetv2.nn.blocks import PreActBasic, PreActBottleneck, PreActUnit
from resnetv2.nn.checkpointed import checkpoint_stages
from resnetv2.nn.features import feature_info, run_stem, stem_feature_module, take_indices
from resnetv2.nn.heads import ClassifierHead, GlobalPool, check_global_pool, make_classifier
from resnetv2.nn.init import init_weights
from resnetv2.nn.layers import NormLayer, norm_act_layer
from resnetv2.nn.pretrained_cfg import model_preprocessing
from resnetv2.nn.pretrained_cfg import pretrained_cfg as timm_pretrained_cfg
from resnetv2.nn.stems import make_stem
from resnetv2.preprocessing_spec import PreprocessingSpec
from resnetv2.spec import ResNetV2Spec, UnitSpec, conv_has_bias, iter_units, stem_out_channels


def spec_norm_layer(spec: ResNetV2Spec) -> NormLayer:
    """The norm-activation factory every unit, the stem and the final norm share."""
    return norm_act_layer(spec.norm, eps=spec.norm_eps, groups=spec.norm_groups)


def make_unit(spec: ResNetV2Spec, unit: UnitSpec, norm_layer: NormLayer) -> PreActUnit:
    """Translate one resolved unit of ``spec`` into a block's explicit arguments."""
    kwargs = dict(
        stride=unit.stride,
        norm_layer=norm_layer,
        preact=unit.preact,
        shortcut=unit.shortcut,
        shortcut_input=spec.shortcut_input,
        bias=conv_has_bias(spec, "inner"),
        last_bias=conv_has_bias(spec, "last"),
        proj_bias=conv_has_bias(spec, "shortcut"),
        drop_path_rate=unit.drop_path,
    )
    if unit.block == "bottleneck":
        # stride_on is None only for stride 1, where the choice makes no difference.
        stride_on = unit.stride_on or "conv2"
        return PreActBottleneck(
            unit.in_channels, unit.out_channels, unit.width, stride_on=stride_on, **kwargs
        )
    return PreActBasic(unit.in_channels, unit.out_channels, unit.width, **kwargs)


class Stage(nn.Module):
    """The units of one stage, under ``blocks`` (timm's ``stages.N.blocks.M`` names)."""

    def __init__(self, units: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class ResNetV2(nn.Module):
    """A pre-activation ResNet built from ``spec`` (He et al. 2016, Fig. 1b).

    ``metadata`` is what the weights it holds say about it — a
    :class:`~resnetv2.model_metadata.ModelMetadata` (class names, preprocessing, origin) set
    when weights are loaded (:class:`resnetv2.loading.Weights`), ``None`` for a freshly built
    model. Assigning a mapping stores it as ``ModelMetadata``.
    """

    metadata = MetadataSlot()

    def __init__(
        self,
        spec: ResNetV2Spec,
        *,
        device: torch.device | str | None = None,
        global_pool: GlobalPool = "avg",
    ) -> None:
        super().__init__()
        if not isinstance(spec, ResNetV2Spec):
            raise TypeError(f"spec must be a ResNetV2Spec, got {type(spec).__name__}")
        self.spec = spec
        self.metadata = None
        norm_layer = spec_norm_layer(spec)
        self.stem = make_stem(
            spec.in_channels,
            spec.stem_width,
            spec.stem_type,
            norm_layer=norm_layer,
            bias=conv_has_bias(spec, "stem"),
            dropout=spec.stem_dropout,
        )
        per_stage: list[list[nn.Module]] = [[] for _ in spec.stages]
        for unit in iter_units(spec, stem_out_channels(spec)):
            per_stage[unit.stage].append(make_unit(spec, unit, norm_layer))
        self.stages = nn.Sequential(*[Stage(units) for units in per_stage])
        self.norm = norm_layer(spec.num_features) if spec.final_norm else nn.Identity()
        self.head = ClassifierHead(spec, global_pool)
        init_weights(self, zero_init_last=spec.zero_init_last)
        if device is not None:
            self.to(device)
        self.feature_info = feature_info(spec)

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

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | tuple[int, ...] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """timm's ``forward_intermediates``: the feature maps at ``indices`` (0 = stem,
        ``i`` = stage ``i - 1``; None = all, an int n = the last n) and, unless
        ``intermediates_only``, the final features. ``norm`` applies the final norm to the
        last stage's map (the only one it is sized for); ``stop_early`` skips the stages
        after the last index taken (the final features are then the last map taken)."""
        if output_fmt != "NCHW":
            raise SpecError(f"output_fmt must be 'NCHW' (timm's only choice), got {output_fmt!r}")
        take = take_indices(len(self.stages) + 1, indices)
        last = len(self.stages)
        x, stem_feat = run_stem(self.stem, x, stem_feature_module(self.spec))
        intermediates = [stem_feat] if 0 in take else []
        stages = list(self.stages)[: max(take)] if stop_early else list(self.stages)
        for i, stage in enumerate(stages, start=1):
            x = stage(x)
            if i in take:
                intermediates.append(self.norm(x) if norm and i == last else x)
        if intermediates_only:
            return intermediates
        if len(stages) == last:
            x = self.norm(x)
        return x, intermediates

    @property
    def preprocessing(self) -> PreprocessingSpec:
        """The :class:`~resnetv2.preprocessing_spec.PreprocessingSpec` these weights expect
        (:func:`resnetv2.data.preprocessing.preprocessing_of` turns it into the
        :class:`~resnetv2.data.preprocessing.Preprocessing` that applies it to pixels)."""
        return model_preprocessing(self)

    @property
    def pretrained_cfg(self) -> dict:
        """timm's ``pretrained_cfg``, derived from :attr:`preprocessing` (see
        :mod:`resnetv2.nn.pretrained_cfg`)."""
        return timm_pretrained_cfg(self)

    @property
    def default_cfg(self) -> dict:
        """timm's older name for :attr:`pretrained_cfg`."""
        return self.pretrained_cfg

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes``.

        ``global_pool`` (timm's argument) switches the pooling: ``avg``, ``max``,
        ``avgmax``, ``catavgmax`` (avg and max concatenated) or ``""`` (none: with
        ``num_classes=0`` the head returns the feature map); None keeps the current one.
        """
        pool = self.head.global_pool if global_pool is None else global_pool
        spec = self.spec.replace(num_classes=num_classes)
        check_global_pool(pool, spec, num_classes)
        features = self.head.num_features
        if self.head.hidden is None:
            features = spec.num_features * (2 if pool == "catavgmax" else 1)
        param = next(self.parameters())
        fc = make_classifier(spec.classifier, features, num_classes)
        fc = fc.to(device=param.device, dtype=param.dtype)
        if num_classes:
            nn.init.normal_(fc.weight, mean=0.0, std=0.01)
            nn.init.zeros_(fc.bias)
        self.head.fc = fc
        self.head.global_pool = pool
        self.head.num_features = features
        self.spec = spec

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each unit's activations in backward instead of storing them (timm's name).

        See :func:`resnetv2.nn.recompute.enable_activation_checkpointing` for segments.
        """
        checkpoint_stages(self, None if enable else False)


def spec_of(model: nn.Module) -> ResNetV2Spec:
    """The spec a model was built from (works through DDP / torch.compile wrappers)."""
    from resnetv2.io.weights import unwrap_model

    inner = unwrap_model(model)
    spec = getattr(inner, "spec", None)
    if not isinstance(spec, ResNetV2Spec):
        raise TypeError(f"{type(model).__name__} was not built from a ResNetV2Spec")
    return dataclasses.replace(spec)
