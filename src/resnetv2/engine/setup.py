"""Sets up a training run: everything :class:`~resnetv2.engine.trainer.Trainer` runs with.

:func:`build_run` is ``Trainer._build``: the precision, the fine-tuning source and its data
defaults, the data (with its identity recorded for resume checks), the memory preflight, the
model (:mod:`resnetv2.engine.model_setup`), EMA, optimiser, loaders, learning-rate controller,
the DDP / ``torch.compile`` wrapping, early stopping, the resume key and the checkpoint
manager, all set as the trainer's attributes. :func:`log_run_start` logs the run it built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from resnetv2.engine import model_setup
from resnetv2.engine.callbacks import EarlyStopping
from resnetv2.engine.data import (
    DataError,
    check_model_matches_data,
    load_training_data,
    make_loaders,
    record_data_identity,
)
from resnetv2.engine.data_plan import class_weight_tensor, plan_for_run
from resnetv2.engine.ema import ModelEMA
from resnetv2.engine.optim import build_optimizer
from resnetv2.engine.precision import choose_precision
from resnetv2.engine.resume import resume_key
from resnetv2.engine.schedules import build_lr_controller
from resnetv2.memory.preflight import preflight_training

if TYPE_CHECKING:
    from resnetv2.engine.trainer import Trainer


def build_run(trainer: Trainer) -> None:
    """Set up ``trainer``'s data, model, optimiser, schedule and checkpoints from its config.

    With fine-tuning (and not resuming), the config gains the pretrained weights' data
    defaults first; ``trainer.config`` is replaced by the resolved config.
    """
    cfg = trainer.config
    t = cfg.train
    trainer.precision = choose_precision(t.amp, trainer.device)
    trainer.amp = trainer.precision.autocast
    # channels_last measured faster on CPU too (docs/bench-training.md), so auto = on.
    trainer.channels_last = t.channels_last != "off"
    torch.manual_seed(t.seed)
    finetuning = cfg.model.init_weights is not None
    pretrained = None
    trainer.init_info = None
    if finetuning and not trainer.resuming:
        pretrained, meta = model_setup.load_pretrained(cfg)
        cfg = trainer.config = model_setup.preprocessing_defaults(cfg, meta)
        trainer.init_info = model_setup.init_weights_record(cfg, meta)
        trainer.log.info("init weights: %s", model_setup.describe_init(trainer.init_info))
    elif finetuning:
        cfg = trainer.config = model_setup.resumed_preprocessing(cfg, trainer.run_dir)
    # The seed again: building the pretrained model may have drawn random numbers.
    torch.manual_seed(t.seed)
    if trainer._data is None:  # engine/data_plan.py; the same plan again on a resume
        cfg = trainer.config = plan_for_run(
            cfg, device=trainer.device, log=trainer.log, world_size=trainer.ctx.world_size
        )
    if trainer._data is None:  # absolute paths + fingerprint in config.yaml; checked on resume
        cfg = trainer.config = record_data_identity(
            cfg, resuming=trainer.resuming, force=trainer.resume_force, log=trainer.log
        )
    data = trainer._data or load_training_data(cfg.data, seed=t.seed, progress=trainer.progress)
    if data.num_train == 0 or data.num_val == 0:
        raise DataError("data: the training and validation sets must both be non-empty")
    trainer.data = data
    trainer.log.info("data: %s", data.summary())
    trainer.class_weights = class_weight_tensor(
        cfg.train.class_weights, data.train_labels, data.num_classes, device=trainer.device
    )
    if not finetuning and t.memory_check:  # refuse what cannot fit, before allocating
        preflight_training(cfg, data, trainer.device, trainer.ctx.world_size, amp=trainer.amp)
    model, finetune_groups = model_setup.build_model(
        cfg,
        data,
        device=trainer.device,
        channels_last=trainer.channels_last,
        sync_bn=t.sync_bn and trainer.ctx.enabled,
        pretrained=pretrained,
        run_dir=trainer.run_dir,
    )
    trainer.spec = model.spec
    check_model_matches_data(trainer.spec, data, finetuning=finetuning)
    # Before DDP and torch.compile wrap the model, so both see the checkpointed stages.
    model_setup.enable_checkpointing(model, t.checkpoint_activations)
    trainer.model = model
    trainer.num_params = sum(p.numel() for p in model.parameters())
    trainer.ema = ModelEMA(model, t.ema_decay) if t.ema else None
    trainer.optimizer = build_optimizer(model, cfg.optim, finetune_groups=finetune_groups)

    trainer.train_loader, trainer.val_loader = make_loaders(
        data, cfg.data, seed=t.seed, device=trainer.device, ctx=trainer.ctx
    )
    trainer.steps_per_epoch = len(trainer.train_loader)
    trainer.lr = build_lr_controller(cfg.schedule, cfg.optim.lr, t.epochs, trainer.steps_per_epoch)
    trainer.forward_model = _forward_model(trainer, model, compile=t.compile)
    if trainer.ctx.enabled:
        # Dropout / drop-path masks must differ between processes.
        from resnetv2.data.rng import derive_seed

        torch.manual_seed(derive_seed(t.seed, "rank", trainer.ctx.rank))
    trainer.early_stopping = (
        EarlyStopping(cfg.callbacks.early_stopping) if cfg.callbacks.early_stopping else None
    )
    trainer.key = resume_key(cfg, trainer.spec, trainer.ctx.world_size)
    trainer.global_step = 0
    trainer.history = []
    trainer.best = {"val_acc": -1.0, "epoch": None}
    trainer.running = [0.0, 0.0, 0.0, 0.0]  # loss sum, correct, count, seconds (this epoch)
    from resnetv2.io import CheckpointManager

    trainer.checkpoints = CheckpointManager(
        trainer.run_dir / "checkpoints", keep_last=cfg.callbacks.keep_checkpoints
    )


def _forward_model(trainer: Trainer, model: nn.Module, *, compile: bool) -> nn.Module:
    """``model`` as the training step calls it: wrapped in DDP and/or ``torch.compile``."""
    forward_model: nn.Module = model
    if trainer.ctx.enabled:
        ids = [trainer.device.index] if trainer.device.type == "cuda" else None
        forward_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if compile:
        forward_model = torch.compile(forward_model)
    return forward_model


def log_run_start(trainer: Trainer) -> None:
    """Log what a fresh run trains: the net, its parameters, the data, epochs and device."""
    cfg = trainer.config
    spec, data, ctx = trainer.spec, trainer.data, trainer.ctx
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    trainer.log.info(
        "training %s: %s, %s params (%s trainable, %s frozen), %d train / %d val images "
        "(%s), %d epochs of %d steps on %s%s -> %s",
        cfg.name,
        f"depth-{spec.depth} {spec.block} net",
        f"{trainer.num_params:,}",
        f"{trainable:,}",
        f"{trainer.num_params - trainable:,}",
        data.num_train,
        data.num_val,
        data.source,
        cfg.train.epochs,
        trainer.steps_per_epoch,
        trainer.device,
        f" x{ctx.world_size} processes" if ctx.enabled else "",
        trainer.run_dir,
    )


__all__ = ["build_run", "log_run_start"]
