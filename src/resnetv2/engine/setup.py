"""Sets up a training run: :func:`build_run` makes the :class:`RunParts` a
:class:`~resnetv2.engine.trainer.Trainer` runs with.

:func:`build_run` resolves the config (fine-tuning data defaults, the data plan, the data's
identity for resume checks, the net chosen for a budget), runs the memory preflight, and
builds the model (:mod:`resnetv2.engine.model_setup`), EMA, optimiser, loaders,
learning-rate controller, budget planner, the DDP / ``torch.compile`` wrapping, early
stopping, the resume key and the checkpoint manager. It reads only its arguments and returns
them as one frozen :class:`RunParts`. :func:`log_run_start` logs the run it built.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from resnetv2.engine.distributed import DistContext
from resnetv2.engine.ema import ModelEMA, build_averager
from resnetv2.engine.optim import build_optimizer
from resnetv2.engine.precision import Precision, choose_precision
from resnetv2.engine.resume import resume_key
from resnetv2.engine.schedules import LRController, build_lr_controller
from resnetv2.memory.preflight import preflight_training

if TYPE_CHECKING:
    from resnetv2.config import TrainConfig
    from resnetv2.data.bundle import DataBundle
    from resnetv2.io import CheckpointManager
    from resnetv2.spec import ResNetV2Spec


@dataclass(frozen=True)
class RunParts:
    """Everything a training run runs with, built once by :func:`build_run`.

    The fields are never rebound: a resume that must change one (a fresh EMA, the first
    session's tuning) makes a new ``RunParts`` with :func:`dataclasses.replace`. The objects
    themselves (model, optimiser, schedule, EMA, loaders, budget planner, early stopping)
    keep their own mutable state, each with a ``state_dict``, and the checkpoint saves it.
    """

    #: The config the run trains: the one given, with fine-tuning data defaults, the data
    #: plan, the data's recorded identity and a budget's chosen net filled in.
    config: TrainConfig
    device: torch.device
    ctx: DistContext
    precision: Precision
    data: DataBundle
    spec: ResNetV2Spec
    #: The model whose weights are trained and saved.
    model: nn.Module
    #: ``model`` as the training step calls it: wrapped in DDP and/or ``torch.compile``.
    forward_model: nn.Module
    num_params: int
    #: Averaged weights (EMA or lookahead), evaluated and saved instead of ``model``'s.
    ema: ModelEMA | None
    optimizer: torch.optim.Optimizer
    lr: LRController
    train_loader: Any
    val_loader: Any
    steps_per_epoch: int
    class_weights: torch.Tensor | None
    #: Plans the steps of a ``--time`` budget; ``None`` without one.
    budget: BudgetPlanner | None
    early_stopping: EarlyStopping | None
    checkpoints: CheckpointManager
    #: The settings an exact resume depends on (:func:`resnetv2.engine.resume.resume_key`).
    resume_key: dict[str, Any]
    #: Inputs and weights in channels-last memory format.
    channels_last: bool
    #: The machine probe's choice (:mod:`.probe`), recorded in ``results.json``.
    tuning: dict[str, Any] | None
    #: The net chosen for the budget (:mod:`.net_choice`), recorded in ``results.json``.
    net_choice: dict[str, Any] | None
    #: Where fine-tuning weights came from, recorded in the weights and ``results.json``.
    init_info: dict[str, Any] | None

    @property
    def amp(self) -> bool:
        """bf16 autocast on."""
        return self.precision.autocast


def build_run(
    config: TrainConfig,
    *,
    device: torch.device,
    ctx: DistContext,
    run_dir: Path,
    log: logging.Logger,
    resuming: bool = False,
    resume_force: bool = False,
    data: DataBundle | None = None,
    progress: bool = False,
    clock_started: float | None = None,
) -> RunParts:
    """The data, model, optimiser, schedule and checkpoints of ``config``'s run in
    ``run_dir``.

    ``data`` is a loaded bundle to train on instead of ``config.data``'s (its plan and
    identity are then taken as given). ``clock_started`` is the :func:`.budget.now` time a
    ``--time`` budget counts from (default: now). With fine-tuning (and not ``resuming``),
    the config gains the pretrained weights' data defaults first; ``RunParts.config`` is the
    resolved config.
    """
    if clock_started is None:
        clock_started = budgets.now()
    cfg = config
    t = cfg.train
    precision = choose_precision(t.amp, device)
    amp = precision.autocast
    # channels_last measured faster on CPU too (docs/bench-training.md), so auto = on.
    channels_last = t.channels_last != "off"
    torch.manual_seed(t.seed)
    finetuning = cfg.model.init_weights is not None
    pretrained = None
    init_info = None
    if finetuning and not resuming:
        pretrained, meta = model_setup.load_pretrained(cfg)
        cfg = model_setup.preprocessing_defaults(cfg, meta)
        init_info = model_setup.init_weights_record(cfg, meta)
        log.info("init weights: %s", model_setup.describe_init(init_info))
    elif finetuning:
        cfg = model_setup.resumed_preprocessing(cfg, run_dir)
    # The seed again: building the pretrained model may have drawn random numbers.
    torch.manual_seed(t.seed)
    if data is None:  # engine/data_plan.py; the same plan again on a resume
        cfg = plan_for_run(cfg, device=device, log=log, world_size=ctx.world_size)
        # absolute paths + fingerprint in config.yaml; checked on resume
        cfg = record_data_identity(cfg, resuming=resuming, force=resume_force, log=log)
        data = load_training_data(cfg.data, seed=t.seed, progress=progress)
    if data.num_train == 0 or data.num_val == 0:
        raise DataError("data: the training and validation sets must both be non-empty")
    log.info("data: %s", data.summary())
    chosen_net = None
    if cfg.model.by_budget:
        if ctx.enabled and t.time is not None:
            log.info(
                "net for the budget: not chosen in multi-process runs (each process would time "
                "its own candidates); training the recipe's own net"
            )
        if t.time is not None and not finetuning and not resuming and not ctx.enabled:
            left = float(t.time) - (budgets.now() - clock_started) - BudgetPlanner.FINISH_BASE
            cfg, chosen_net = net_choice.choose_net(
                cfg, data, amp=amp, channels_last=channels_last, seconds_left=left
            )
            log.info("%s", net_choice.describe(chosen_net, float(t.time)))
            torch.manual_seed(t.seed)  # the candidates' timing built models: seed again
        else:  # no budget: the recipe's own depth and options, and config.yaml says so
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, by_budget=[]))
    class_weights = class_weight_tensor(
        cfg.train.class_weights, data.train_labels, data.num_classes, device=device
    )
    if not finetuning and t.memory_check:  # refuse what cannot fit, before allocating
        preflight_training(cfg, data, device, ctx.world_size, amp=amp)
    model, finetune_groups = model_setup.build_model(
        cfg,
        data,
        device=device,
        channels_last=channels_last,
        sync_bn=t.sync_bn and ctx.enabled,
        pretrained=pretrained,
        run_dir=run_dir,
    )
    spec = model.spec
    check_model_matches_data(spec, data, finetuning=finetuning)
    # Before DDP and torch.compile wrap the model, so both see the checkpointed stages.
    model_setup.enable_checkpointing(model, t.checkpoint_activations)
    model_setup.set_bn_momentum(model, t.bn_momentum)
    whitening = model_setup.whiten_stem(model, data, cfg, fit=not resuming)
    if whitening is not None:
        log.info("%s", model_setup.describe_whitening(cfg.model.whiten_stem, whitening))
    num_params = sum(p.numel() for p in model.parameters())
    ema = build_averager(model, t)  # EMA or lookahead weights
    optimizer = build_optimizer(model, cfg.optim, finetune_groups=finetune_groups)

    train_loader, val_loader = make_loaders(data, cfg.data, seed=t.seed, device=device, ctx=ctx)
    steps_per_epoch = len(train_loader)
    lr = build_lr_controller(cfg.schedule, cfg.optim.lr, t.epochs, steps_per_epoch)
    budget = None
    if t.time is not None:
        budget = BudgetPlanner(
            float(t.time),
            steps_per_epoch=steps_per_epoch,
            max_steps=t.epochs * steps_per_epoch,
            batch_size=cfg.data.batch_size,
            num_val=data.num_val,
            started=clock_started,
            time_triggers=not ctx.enabled,
        )
    tuning = None
    result = _probe(
        model,
        cfg,
        data,
        device=device,
        ctx=ctx,
        channels_last=channels_last,
        amp=amp,
        resuming=resuming,
        steps_per_epoch=steps_per_epoch,
    )
    if result is not None:
        log.info("%s", result.describe())
        chosen = result.chosen
        channels_last = apply_tuning(
            model, ema, channels_last, chosen.channels_last, chosen.threads
        )
        tuning = result.to_dict()
    forward_model = _forward_model(model, device=device, ctx=ctx, compile=t.compile)
    if ctx.enabled:
        # Dropout / drop-path masks must differ between processes.
        from resnetv2.data.rng import derive_seed

        torch.manual_seed(derive_seed(t.seed, "rank", ctx.rank))
    early_stopping = (
        EarlyStopping(cfg.callbacks.early_stopping) if cfg.callbacks.early_stopping else None
    )
    key = resume_key(cfg, spec, ctx.world_size)
    from resnetv2.io import CheckpointManager

    checkpoints = CheckpointManager(
        run_dir / "checkpoints", keep_last=cfg.callbacks.keep_checkpoints
    )
    return RunParts(
        config=cfg,
        device=device,
        ctx=ctx,
        precision=precision,
        data=data,
        spec=spec,
        model=model,
        forward_model=forward_model,
        num_params=num_params,
        ema=ema,
        optimizer=optimizer,
        lr=lr,
        train_loader=train_loader,
        val_loader=val_loader,
        steps_per_epoch=steps_per_epoch,
        class_weights=class_weights,
        budget=budget,
        early_stopping=early_stopping,
        checkpoints=checkpoints,
        resume_key=key,
        channels_last=channels_last,
        tuning=tuning,
        net_choice=chosen_net,
        init_info=init_info,
    )


def _probe(
    model: nn.Module,
    cfg,
    data,
    *,
    device: torch.device,
    ctx: DistContext,
    channels_last: bool,
    amp: bool,
    resuming: bool,
    steps_per_epoch: int,
) -> probe.ProbeResult | None:
    """The machine probe's timings where it applies (:mod:`.probe`), else ``None``."""
    t = cfg.train
    total = t.epochs * steps_per_epoch
    why_not = probe.should_probe(
        t.tune,
        device=device,
        deterministic=t.deterministic,
        resuming=resuming,
        # Under a budget the lifted epoch cap says nothing of the run's length.
        total_steps=0 if t.time is not None else total,
        budget=t.time,
        world_size=ctx.world_size,
    )
    if why_not is not None:
        return None
    current = probe.Setting(channels_last, torch.get_num_threads())
    options = probe.candidates(
        current,
        tune_format=t.channels_last == "auto",
        tune_threads=t.threads is None,
        cores=os.cpu_count() or 1,
    )
    if len(options) < 2:
        return None
    per_process = max(1, cfg.data.batch_size // ctx.world_size)
    height, width = data.image_size
    return probe.probe(
        model,
        current,
        options,
        batch_shape=(per_process, data.in_channels, height, width),
        num_classes=data.num_classes,
        amp=amp,
        limit=probe.probe_limit(t.time),
        # --tune on asks for the probe whatever the run's length: only the 10 s cap holds.
        expected_steps=None if t.time is not None or t.tune == "on" else total,
    )


def apply_tuning(
    model: nn.Module, ema: ModelEMA | None, current: bool, channels_last: bool, threads: int
) -> bool:
    """Use a probe's choice: the memory format of ``model`` and ``ema`` (now ``current``
    channels-last) and the intra-op thread count. Returns the channels-last now in use."""
    if channels_last != current:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model.to(memory_format=fmt)
        if ema is not None:
            ema.module.to(memory_format=fmt)  # EMA / lookahead weights alike
    torch.set_num_threads(threads)
    return channels_last


def _forward_model(
    model: nn.Module, *, device: torch.device, ctx: DistContext, compile: bool
) -> nn.Module:
    """``model`` as the training step calls it: wrapped in DDP and/or ``torch.compile``."""
    forward_model: nn.Module = model
    if ctx.enabled:
        ids = [device.index] if device.type == "cuda" else None
        forward_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if compile:
        forward_model = torch.compile(forward_model)
    return forward_model


def _count(n: int, noun: str) -> str:
    """``1 epoch``, ``20 epochs``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def log_run_start(parts: RunParts, *, run_dir: Path, log: logging.Logger) -> None:
    """Log what a fresh run trains: the net, its parameters, the data, epochs and device."""
    cfg, spec, data, ctx = parts.config, parts.spec, parts.data, parts.ctx
    trainable = sum(p.numel() for p in parts.model.parameters() if p.requires_grad)
    log.info(
        "training %s: %s, %s params (%s trainable, %s frozen), %d train / %d val images "
        "(%s), %s of %s on %s%s -> %s",
        cfg.name,
        f"depth-{spec.depth} {spec.block} net",
        f"{parts.num_params:,}",
        f"{trainable:,}",
        f"{parts.num_params - trainable:,}",
        data.num_train,
        data.num_val,
        data.source,
        _epochs_text(cfg.train),
        _count(parts.steps_per_epoch, "step"),
        parts.device,
        f" x{ctx.world_size} processes" if ctx.enabled else "",
        run_dir,
    )


def _epochs_text(t) -> str:
    if t.time is None:
        return _count(t.epochs, "epoch")
    from resnetv2.engine.progress import format_duration

    cap = "" if t.epochs >= MAX_EPOCHS else f", at most {_count(t.epochs, 'epoch')}"
    return f"a {format_duration(float(t.time))} budget (epochs planned from the speed{cap})"


__all__ = ["RunParts", "apply_tuning", "build_run", "log_run_start"]
