"""Fine-tuning a pretrained ResNetV2 on a new task: a new head, frozen or trainable backbone.

The seed tutorial's two modes:

- ``freeze="backbone"`` (feature extraction): only the new head trains. The backbone's
  parameters stop requiring gradients *and* its BatchNorm layers stay in eval mode even when
  ``model.train()`` is called — otherwise the frozen network would still drift, because
  train-mode BN normalises with batch statistics and overwrites its running averages.
- ``freeze="none"``: everything trains; ``backbone_lr_scale`` (e.g. 0.1) gives the pretrained
  layers a lower learning rate than the new head (discriminative fine-tuning, Howard & Ruder
  2018), through separate optimizer parameter groups.

``head="dense"`` swaps in the tutorial's Dense(512)-ReLU-BN-Dropout(0.5) head. Input size and
normalisation should follow the weights' metadata (``metadata["preprocessing"]``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from resnetv2.errors import ResNetV2Error
from resnetv2.nn.heads import ClassifierHead
from resnetv2.nn.init import init_weights
from resnetv2.nn.layers import BatchNormAct2d

FREEZE_MODES = ("backbone", "none")
HEAD_TYPES = ("linear", "dense")


class _FrozenNormMixin:
    """A norm layer that ignores ``train()``: it always normalises with running statistics."""

    frozen = True

    def train(self, mode: bool = True):  # noqa: ARG002 - the mode is ignored on purpose
        return super().train(False)


class FrozenBatchNormAct2d(_FrozenNormMixin, BatchNormAct2d):
    """A frozen :class:`~resnetv2.nn.layers.BatchNormAct2d` (module-level, so it pickles)."""


_FROZEN_CLASSES: dict[type, type] = {BatchNormAct2d: FrozenBatchNormAct2d}


def _frozen_class(cls: type) -> type:
    if issubclass(cls, _FrozenNormMixin):
        return cls
    if cls not in _FROZEN_CLASSES:
        _FROZEN_CLASSES[cls] = type(f"Frozen{cls.__name__}", (_FrozenNormMixin, cls), {})
    return _FROZEN_CLASSES[cls]


def freeze_module(module: nn.Module) -> None:
    """Stop ``module`` training: no gradients, BatchNorm statistics fixed (eval mode for good).

    The norm layers keep their class's state-dict keys, so saving and exporting are unchanged.
    """
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            sub.__class__ = _frozen_class(type(sub))
            sub.eval()
    for param in module.parameters():
        param.requires_grad_(False)


def unfreeze_module(module: nn.Module) -> None:
    """Undo :func:`freeze_module`: parameters train again and norm layers follow ``train()``."""
    for sub in module.modules():
        if isinstance(sub, _FrozenNormMixin):
            sub.__class__ = next(b for b in type(sub).__mro__[1:] if b is not _FrozenNormMixin)
    for param in module.parameters():
        param.requires_grad_(True)


def is_frozen(module: nn.Module) -> bool:
    return isinstance(module, _FrozenNormMixin)


def new_head(model: nn.Module, num_classes: int, head: str = "linear", **head_options: Any):
    """Replace ``model.head`` with a freshly initialised ``head`` for ``num_classes``.

    ``head_options`` are spec fields of the head (``head_hidden``, ``head_dropout``,
    ``dropout``). The model's ``spec`` is updated to match, so it saves and reloads as is.
    """
    if head not in HEAD_TYPES:
        raise ResNetV2Error(f"head must be one of {', '.join(HEAD_TYPES)}, got {head!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ResNetV2Error(f"num_classes must be a positive integer, got {num_classes!r}")
    changes: dict[str, Any] = {"num_classes": num_classes, "head": head, **head_options}
    if head == "dense":
        changes["classifier"] = "linear"
    spec = model.spec.replace(**changes)
    param = next(model.parameters())
    fresh = ClassifierHead(spec).to(device=param.device, dtype=param.dtype)
    init_weights(fresh)
    # init_weights skips "head."-prefixed names only for convs; the classifier rule
    # (normal(0, 0.01)) must apply here too, and a bare head has no prefix.
    for sub in fresh.modules():
        if isinstance(sub, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(sub.weight, mean=0.0, std=0.01)
            nn.init.zeros_(sub.bias)
    model.head = fresh
    model.spec = spec
    return fresh


def prepare_finetune(
    model: nn.Module,
    num_classes: int | None,
    *,
    freeze: str = "backbone",
    head: str = "linear",
    backbone_lr_scale: float = 1.0,
    lr: float | None = None,
    **head_options: Any,
) -> list[dict[str, Any]]:
    """Set ``model`` up for fine-tuning and return optimizer parameter groups.

    ``num_classes``: a new classifier head (of type ``head``) for that many classes; ``None``
    keeps the current head. ``freeze="backbone"`` trains the head only (one group);
    ``freeze="none"`` trains everything, the backbone at ``backbone_lr_scale`` × the learning
    rate (two groups: ``backbone`` then ``head``). Each group carries ``name`` and
    ``lr_scale``; with ``lr`` given each also carries its ``lr``. Pass the groups to any
    ``torch.optim`` optimizer; a scheduler that sets ``lr`` must multiply by ``lr_scale``.
    """
    if freeze not in FREEZE_MODES:
        raise ResNetV2Error(f"freeze must be one of {', '.join(FREEZE_MODES)}, got {freeze!r}")
    if (
        isinstance(backbone_lr_scale, bool)
        or not isinstance(backbone_lr_scale, (int, float))
        or not 0 <= backbone_lr_scale <= 1e3
    ):
        raise ResNetV2Error(f"backbone_lr_scale must be a number >= 0, got {backbone_lr_scale!r}")
    if freeze == "backbone" and backbone_lr_scale != 1.0:
        raise ResNetV2Error("backbone_lr_scale needs freeze='none' (a frozen backbone has no lr)")
    if num_classes is not None:
        new_head(model, num_classes, head, **head_options)
    elif head != model.spec.head or head_options:
        raise ResNetV2Error("changing the head type needs num_classes (a new head is built)")
    backbone = [m for name, m in model.named_children() if name != "head"]
    unfreeze_module(model)
    if freeze == "backbone":
        for module in backbone:
            freeze_module(module)
    head_params = list(model.head.parameters())
    backbone_params = [p for m in backbone for p in m.parameters()]
    groups = []
    if freeze == "none":
        groups.append(
            {"params": backbone_params, "name": "backbone", "lr_scale": backbone_lr_scale}
        )
    groups.append({"params": head_params, "name": "head", "lr_scale": 1.0})
    if lr is not None:
        for group in groups:
            group["lr"] = lr * group["lr_scale"]
    return groups


def trainable_parameter_names(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]
