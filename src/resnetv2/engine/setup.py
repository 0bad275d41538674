"""Sets up a training run: everything :class:`~resnetv2.engine.trainer.Trainer` runs with.

:func:`build_run` is ``Trainer._build``: the precision, the fine-tuning source and its data
defaults, the data (with its identity recorded for resume checks), the memory preflight, the
model (:mod:`resnetv2.engine.model_setup`), EMA, optimiser, loaders, learning-rate controller,
the DDP / ``torch.compile`` wrapping, early stopping, the resume key and the checkpoint
manager, all set as the trainer's attributes. :func:`log_run_start` logs the run it built.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import torch
from torch import nn

from resnetv2.config.validate import MAX_EPOCHS
from resnetv2.engine import budget as budgets
from resnetv2.engine import model_setup, net_choice, probe
from resnetv2.engine.budget import BudgetPlanner
from resnetv2.engine.callbacks import EarlyStopping
from resnetv2.engine.data import (
    DataError,
    check_model_matches_data,
    load_training_data,
    make_loaders,
    record_data_identity,
)
from resnetv2.engine.data_plan import class_weight_tensor, plan_for_run
from resnetv2.engine.ema import build_averager
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
    trainer.net_choice = None
    if cfg.model.by_budget:
        if trainer.ctx.enabled and t.time is not None:
            trainer.log.info(
                "net for the budget: not chosen in multi-process runs (each process would time "
                "its own candidates); training the recipe's own net"
            )
        if (
            t.time is not None
            and not finetuning
            and not trainer.resuming
            and not trainer.ctx.enabled
        ):
            left = (
                float(t.time) - (budgets.now() - trainer.clock_started) - BudgetPlanner.FINISH_BASE
            )
            cfg, trainer.net_choice = net_choice.choose_net(
                cfg, data, amp=trainer.amp, channels_last=trainer.channels_last, seconds_left=left
            )
            trainer.log.info("%s", net_choice.describe(trainer.net_choice, float(t.time)))
            torch.manual_seed(t.seed)  # the candidates' timing built models: seed again
        else:  # no budget: the recipe's own depth and options, and config.yaml says so
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, by_budget=[]))
        trainer.config = cfg
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
    model_setup.set_bn_momentum(model, t.bn_momentum)
    whitening = model_setup.whiten_stem(model, data, cfg, fit=not trainer.resuming)
    if whitening is not None:
        trainer.log.info("%s", model_setup.describe_whitening(cfg.model.whiten_stem, whitening))
    trainer.model = model
    trainer.num_params = sum(p.numel() for p in model.parameters())
    trainer.ema = build_averager(model, t)  # EMA or lookahead weights
    trainer.optimizer = build_optimizer(model, cfg.optim, finetune_groups=finetune_groups)

    trainer.train_loader, trainer.val_loader = make_loaders(
        data, cfg.data, seed=t.seed, device=trainer.device, ctx=trainer.ctx
    )
    trainer.steps_per_epoch = len(trainer.train_loader)
    trainer.lr = build_lr_controller(cfg.schedule, cfg.optim.lr, t.epochs, trainer.steps_per_epoch)
    trainer.budget = None
    if t.time is not None:
        trainer.budget = BudgetPlanner(
            float(t.time),
            steps_per_epoch=trainer.steps_per_epoch,
            max_steps=t.epochs * trainer.steps_per_epoch,
            batch_size=cfg.data.batch_size,
            num_val=data.num_val,
            started=trainer.clock_started,
            time_triggers=not trainer.ctx.enabled,
        )
    trainer.tuning = _tune(trainer, model, cfg, data)
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


def _tune(trainer: Trainer, model: nn.Module, cfg, data) -> dict | None:
    """Run the machine probe where it applies and apply its choice (:mod:`.probe`)."""
    t = cfg.train
    total = t.epochs * trainer.steps_per_epoch
    why_not = probe.should_probe(
        t.tune,
        device=trainer.device,
        deterministic=t.deterministic,
        resuming=trainer.resuming,
        # Under a budget the lifted epoch cap says nothing of the run's length.
        total_steps=0 if t.time is not None else total,
        budget=t.time,
        world_size=trainer.ctx.world_size,
    )
    if why_not is not None:
        return None
    current = probe.Setting(trainer.channels_last, torch.get_num_threads())
    options = probe.candidates(
        current,
        tune_format=t.channels_last == "auto",
        tune_threads=t.threads is None,
        cores=os.cpu_count() or 1,
    )
    if len(options) < 2:
        return None
    per_process = max(1, cfg.data.batch_size // trainer.ctx.world_size)
    height, width = data.image_size
    result = probe.probe(
        model,
        current,
        options,
        batch_shape=(per_process, data.in_channels, height, width),
        num_classes=data.num_classes,
        amp=trainer.amp,
        limit=probe.probe_limit(t.time),
        # --tune on asks for the probe whatever the run's length: only the 10 s cap holds.
        expected_steps=None if t.time is not None or t.tune == "on" else total,
    )
    trainer.log.info("%s", result.describe())
    apply_tuning(trainer, model, result.chosen.channels_last, result.chosen.threads)
    return result.to_dict()


def apply_tuning(trainer: Trainer, model: nn.Module, channels_last: bool, threads: int) -> None:
    """Use a probe's choice: the model's memory format and the intra-op thread count."""
    if channels_last != trainer.channels_last:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model.to(memory_format=fmt)
        averager = getattr(trainer, "ema", None)
        if averager is not None and hasattr(averager, "module"):
            averager.module.to(memory_format=fmt)  # EMA / lookahead weights alike
        trainer.channels_last = channels_last
    torch.set_num_threads(threads)


def _forward_model(trainer: Trainer, model: nn.Module, *, compile: bool) -> nn.Module:
    """``model`` as the training step calls it: wrapped in DDP and/or ``torch.compile``."""
    forward_model: nn.Module = model
    if trainer.ctx.enabled:
        ids = [trainer.device.index] if trainer.device.type == "cuda" else None
        forward_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if compile:
        forward_model = torch.compile(forward_model)
    return forward_model


def _count(n: int, noun: str) -> str:
    """``1 epoch``, ``20 epochs``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def log_run_start(trainer: Trainer) -> None:
    """Log what a fresh run trains: the net, its parameters, the data, epochs and device."""
    cfg = trainer.config
    spec, data, ctx = trainer.spec, trainer.data, trainer.ctx
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    trainer.log.info(
        "training %s: %s, %s params (%s trainable, %s frozen), %d train / %d val images "
        "(%s), %s of %s on %s%s -> %s",
        cfg.name,
        f"depth-{spec.depth} {spec.block} net",
        f"{trainer.num_params:,}",
        f"{trainable:,}",
        f"{trainer.num_params - trainable:,}",
        data.num_train,
        data.num_val,
        data.source,
        _epochs_text(cfg.train),
        _count(trainer.steps_per_epoch, "step"),
        trainer.device,
        f" x{ctx.world_size} processes" if ctx.enabled else "",
        trainer.run_dir,
    )


def _epochs_text(t) -> str:
    if t.time is None:
        return _count(t.epochs, "epoch")
    from resnetv2.engine.progress import format_duration

    cap = "" if t.epochs >= MAX_EPOCHS else f", at most {_count(t.epochs, 'epoch')}"
    return f"a {format_duration(float(t.time))} budget (epochs planned from the speed{cap})"


__all__ = ["build_run", "log_run_start"]
