"""Sets up the trainer's model: a fresh or pretrained network, fine-tuning, recomputation.

Fine-tuning (``model.init_weights``) follows the seed tutorial's two modes through
:func:`resnetv2.convert.load_init_weights` and :func:`resnetv2.finetune.prepare_finetune`:
the pretrained network gets a new classifier head for the data's classes; ``freeze:
backbone`` trains that head only, ``none`` trains everything with the backbone at
``backbone_lr_scale`` × the learning rate. The weights' preprocessing metadata (input size,
mean, std) becomes the data defaults, written into the run's resolved ``config.yaml`` so a
resume loads the same data without the weights source (which may need a download).

On resume the init weights are not read at all: the architecture comes from the run's
``spec.json`` and every tensor from the checkpoint; only the freezing and the parameter
groups are set up again, so the optimiser state maps onto the same groups.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from resnetv2.config import TrainConfig
from resnetv2.errors import ResNetV2Error

#: ``model.options`` passed to the new head (``head`` itself is prepare_finetune's ``head=``).
_NEW_HEAD_OPTIONS = ("head_hidden", "head_dropout", "dropout", "classifier")


class InitWeightsError(ResNetV2Error, ValueError):
    """``model.init_weights`` cannot be used (missing file, wrong architecture, offline)."""


def load_pretrained(config: TrainConfig) -> tuple[nn.Module, dict[str, Any]]:
    """The model holding ``config.model.init_weights`` and the weights' metadata.

    The weights' own architecture is used unless the config names one (a preset, a depth or
    a backbone option); then :func:`load_init_weights` checks that the backbones match.
    """
    from resnetv2.convert import load_init_weights

    source = config.model.init_weights
    spec = config.build_spec() if config.model.architecture_given() else None
    try:
        return load_init_weights(spec, source)
    except ResNetV2Error:
        raise
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError) as exc:
        raise InitWeightsError(f"model.init_weights {source!r}: {exc}") from exc


def preprocessing_defaults(config: TrainConfig, metadata: dict[str, Any]) -> TrainConfig:
    """``config`` with ``data.image_size``/``channels``/``mean``/``std`` from the weights'
    metadata wherever the user left them unset (null)."""
    pre = metadata.get("preprocessing") or {}
    data = config.data
    changes: dict[str, Any] = {}
    size = pre.get("input_size")
    if data.image_size is None and isinstance(size, (list, tuple)) and len(size) == 2:
        h, w = (int(v) for v in size)
        changes["image_size"] = h if h == w else [h, w]
    channels = pre.get("in_channels")
    if data.channels is None and channels in (1, 3):
        # e.g. weights trained on 1-channel digits, fine-tuned on RGB-decoded PNG folders
        changes["channels"] = int(channels)
    mean, std = pre.get("mean"), pre.get("std")
    if data.mean is None and data.std is None and mean is not None and std is not None:
        changes["mean"] = [float(v) for v in mean]
        changes["std"] = [float(v) for v in std]
    if not changes:
        return config
    return dataclasses.replace(config, data=dataclasses.replace(data, **changes))


def init_weights_record(config: TrainConfig, metadata: dict[str, Any]) -> dict[str, Any]:
    """Where the initial weights came from, for the run's results and weights metadata."""
    source = config.model.init_weights
    if source is not None and not source.startswith(("timm:", "pytorchcv:")):
        source = os.path.abspath(source)
    record: dict[str, Any] = {
        "source": source,
        "freeze": config.model.freeze,
        "backbone_lr_scale": config.model.backbone_lr_scale,
        "head_reinitialised": True,
    }
    for key in ("imported_from", "sha256", "name"):
        if key in metadata and _plain_json(metadata[key]):
            record[key] = metadata[key]
    pretrained_spec = metadata.get("spec")
    if isinstance(pretrained_spec, dict):
        record["pretrained_classes"] = pretrained_spec.get("num_classes")
    return record


def describe_init(info: dict[str, Any]) -> str:
    """One log line for :func:`init_weights_record`'s record."""
    text = f"{info['source']}, freeze {info['freeze']}"
    if info["backbone_lr_scale"] != 1.0:
        text += f", backbone lr x{info['backbone_lr_scale']:g}"
    return text + ", new classifier head"


def _plain_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def resumed_spec(run_dir: Path):
    """The architecture of the fine-tuning run in ``run_dir`` (its ``spec.json``)."""
    from resnetv2.spec import ResNetV2Spec

    path = run_dir / "spec.json"
    if not path.is_file():
        raise InitWeightsError(f"--resume {run_dir}: spec.json is missing")
    return ResNetV2Spec.from_json(path.read_text(encoding="utf-8"))


def resumed_preprocessing(config: TrainConfig, run_dir: Path) -> TrainConfig:
    """``config`` with unset ``data.image_size``/``mean``/``std`` taken from the run's saved
    ``config.yaml``: the values that the weights' metadata gave the run when it started."""
    from resnetv2.config import ConfigError, load_config

    path = run_dir / "config.yaml"
    if not path.is_file():
        return config
    try:
        saved = load_config(path).data
    except ConfigError:
        return config
    data = config.data
    changes = {
        name: getattr(saved, name)
        for name in ("image_size", "mean", "std")
        if getattr(data, name) is None and getattr(saved, name) is not None
    }
    if data.mean is not None or data.std is not None:
        changes.pop("mean", None)
        changes.pop("std", None)
    if not changes:
        return config
    return dataclasses.replace(config, data=dataclasses.replace(data, **changes))


def prepare(model: nn.Module, config: TrainConfig, num_classes: int | None) -> list[dict]:
    """Freeze / new head per ``config.model``; returns the fine-tune parameter groups.

    ``num_classes=None`` keeps the model's head (a resumed run's model already has it).
    """
    from resnetv2.finetune import prepare_finetune

    m = config.model
    head_options = {}
    head = model.spec.head
    if num_classes is not None:
        head = m.options.get("head", "linear")
        head_options = {k: m.options[k] for k in _NEW_HEAD_OPTIONS if k in m.options}
    return prepare_finetune(
        model,
        num_classes,
        freeze=m.freeze,
        backbone_lr_scale=m.backbone_lr_scale,
        lr=config.optim.lr,
        head=head,
        **head_options,
    )


def build_model(
    config: TrainConfig,
    data,
    *,
    device,
    channels_last: bool,
    sync_bn: bool,
    pretrained: nn.Module | None,
    run_dir: Path,
) -> tuple[nn.Module, list[dict] | None]:
    """The model to train and, when fine-tuning, its parameter groups for the optimiser.

    ``pretrained``: the model from :func:`load_pretrained` (a fresh fine-tuning run); a
    resumed fine-tuning run (``pretrained=None``) rebuilds the run's own architecture.
    """
    import torch

    from resnetv2.engine import distributed as ddp
    from resnetv2.nn import ResNetV2

    finetuning = config.model.init_weights is not None
    if pretrained is not None:
        model = pretrained
    elif finetuning:  # resuming: the checkpoint restores every tensor
        model = ResNetV2(resumed_spec(run_dir))
    else:
        spec = config.build_spec(num_classes=data.num_classes, in_channels=data.in_channels)
        model = ResNetV2(spec)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if sync_bn:
        model = ddp.convert_sync_batchnorm(model)
    groups = None
    if finetuning:
        # After the sync-BN swap, so the frozen layers are the ones that train.
        groups = prepare(model, config, None if pretrained is None else data.num_classes)
        model.train()
    return model, groups


def enable_checkpointing(model: nn.Module, value: int | str | None) -> None:
    """``train.checkpoint_activations`` on ``model`` (before DDP / torch.compile wrap it)."""
    if value is None:
        return
    from resnetv2.nn.recompute import enable_activation_checkpointing

    enable_activation_checkpointing(model, value)


def set_bn_momentum(model: nn.Module, momentum: float | None) -> None:
    """``train.bn_momentum`` on every BatchNorm layer (``None`` keeps PyTorch's 0.1).

    PyTorch's convention: the weight of the new batch, ``running = (1 - m) * running + m *
    batch``. airbench (Jordan 2024, arXiv:2404.00498) uses 0.4 in this convention (its "0.6"
    is Keras'): statistics that follow the weights quickly, which short runs and lookahead
    need.
    """
    if momentum is None:
        return
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = float(momentum)


def whiten_stem(model: nn.Module, data, config: TrainConfig, *, fit: bool):
    """``model.whiten_stem``: fit the stem conv to the training images' patches
    (:mod:`resnetv2.nn.whitening`; ``fit=False`` on resume, where the checkpoint holds the
    weights) and, when ``frozen``, stop its weights from training. Returns the
    :class:`~resnetv2.nn.whitening.WhiteningFit`, or ``None`` when nothing was fitted."""
    from resnetv2.nn.whitening import whiten_conv_, whitening_image_count

    mode = config.model.whiten_stem
    conv = getattr(getattr(model, "stem", None), "conv", None)
    if mode == "off":
        return None
    if not isinstance(conv, nn.Conv2d):
        raise ResNetV2Error(
            "model.whiten_stem needs a stem conv; this model's stem_type is "
            f"{model.spec.stem_type!r}"
        )
    result = None
    if fit:
        kernel = (int(conv.kernel_size[0]), int(conv.kernel_size[1]))
        count = min(data.num_train, whitening_image_count(*data.image_size, kernel))
        # The first `count` images of epoch 0's seeded order, unaugmented and normalised as
        # the network sees them; cached or streaming alike, no global RNG drawn.
        loader = data.train_loader(count, "none", seed=config.train.seed, num_workers=0)
        images, _ = next(iter(loader))
        result = whiten_conv_(conv, images)
    if mode == "frozen":
        conv.weight.requires_grad_(False)
    return result


def describe_whitening(mode: str, fit) -> str:
    """One log line for :func:`whiten_stem`'s fit."""
    values = fit.eigenvalues
    negated = f" + {fit.negated} negated" if fit.negated else ""
    return (
        f"whitened stem ({mode}): {fit.whitened} filters{negated} from {values.numel()} patch "
        f"directions of {fit.images:,} images (eigenvalues {float(values[0]):.3g}.."
        f"{float(values[-1]):.3g})"
    )


__all__ = [
    "InitWeightsError",
    "build_model",
    "describe_whitening",
    "enable_checkpointing",
    "init_weights_record",
    "load_pretrained",
    "preprocessing_defaults",
    "prepare",
    "resumed_preprocessing",
    "resumed_spec",
    "set_bn_momentum",
    "whiten_stem",
]
