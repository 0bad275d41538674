"""A run's state: what the loop counts (:class:`LoopState`), and the checkpoint that saves and
restores all of it through :class:`resnetv2.io.CheckpointManager`.

A checkpoint holds the model (a plain weights file with the metadata contract: spec, class
names, preprocessing, epoch, metrics) and a training state read back without running code:
optimiser, schedule and plateau state, EMA, every process's RNG state, early stopping, the
loop's counters (global step, metric history, best epoch, the partial sums of an unfinished
epoch), the data loader's ``(epoch, position)`` and the settings an exact resume depends on
(:mod:`resnetv2.engine.resume`). The training state is one flat dictionary; its keys are
:data:`STATE_FORMAT`'s.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from resnetv2.engine import distributed as ddp
from resnetv2.engine.ema import build_averager
from resnetv2.engine.resume import check_resume, check_state_ranges
from resnetv2.engine.setup import RunParts, apply_tuning
from resnetv2.errors import ResNetV2Error

STATE_FORMAT = "resnetv2.train_state/1"


def _no_best() -> dict[str, Any]:
    return {"val_acc": -1.0, "epoch": None}


@dataclass
class LoopState:
    """What the training loop counts as it goes; saved in every checkpoint.

    The parts the loop drives keep their own state (:class:`~.setup.RunParts`); this is the
    rest: the optimiser steps taken, one metrics row per finished epoch, the best epoch's
    metrics, and the sums of the epoch in progress (a mid-epoch checkpoint carries them).
    """

    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=_no_best)
    #: This epoch so far: loss sum, correct predictions, images, seconds.
    running: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])

    def add_to_epoch(self, loss_sum: float, correct: float, count: float, seconds: float) -> None:
        """Add a stretch of training (all of an epoch, or its rest after a resume)."""
        self.running[0] += loss_sum
        self.running[1] += correct
        self.running[2] += count
        self.running[3] += seconds

    def take_epoch_sums(self) -> tuple[float, float, float, float]:
        """The epoch's sums (loss, correct, images, seconds); the next epoch starts at zero."""
        loss_sum, correct, count, seconds = self.running
        self.running = [0.0, 0.0, 0.0, 0.0]
        return loss_sum, correct, count, seconds

    def end_epoch(self, row: dict[str, Any]) -> bool:
        """Record a finished epoch's metrics row; True when its ``val_acc`` is the best yet."""
        is_best = row["val_acc"] > self.best["val_acc"]
        if is_best:
            self.best = {
                "val_acc": row["val_acc"],
                "val_top5": row["val_top5"],
                "val_loss": row["val_loss"],
                "epoch": row["epoch"],
            }
        self.history.append(row)
        return is_best

    def state_dict(self) -> dict[str, Any]:
        return {
            "global_step": self.global_step,
            "history": self.history,
            "best": self.best,
            "running": list(self.running),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.global_step = int(state["global_step"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        self.running = [float(v) for v in state["running"]]


def train_state(parts: RunParts, loop: LoopState) -> dict[str, Any]:
    """The training state a checkpoint saves (collective in DDP: every rank takes part)."""
    rng = ddp.gather_rng_states(parts.ctx)
    return {
        "format": STATE_FORMAT,
        "optimizer": parts.optimizer.state_dict(),
        "lr": parts.lr.state_dict(),
        "ema": parts.ema.state_dict() if parts.ema is not None else None,
        "rng_cpu": rng,
        "rng_cuda": torch.cuda.get_rng_state() if parts.device.type == "cuda" else None,
        "loader": parts.train_loader.state_dict(),
        **loop.state_dict(),  # global_step, history, best, running
        "early_stopping": parts.early_stopping.state_dict() if parts.early_stopping else None,
        "resume_key": parts.resume_key,
        "init_weights": parts.init_info,
        "budget": parts.budget.state_dict() if parts.budget is not None else None,
        "tuning": parts.tuning,
    }


def weights_metadata(parts: RunParts, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata of a weights file the run writes (a checkpoint's, ``model.safetensors``)."""
    from resnetv2.data.preprocessing import Preprocessing

    return {
        "spec": parts.spec.to_dict(),
        "class_names": list(parts.data.class_names),
        # The one Preprocessing that evaluate, predict and exports read back.
        "preprocessing": Preprocessing.from_bundle(parts.data).to_metadata(),
        "num_params": parts.num_params,
        **({"init_weights": parts.init_info} if parts.init_info is not None else {}),
        **(extra or {}),
    }


def save_checkpoint(parts: RunParts, loop: LoopState, *, is_best: bool) -> Path | None:
    """Save the run's state; the main process writes it and returns its folder."""
    state = train_state(parts, loop)  # collective in DDP: every rank takes part
    path = None
    if parts.ctx.is_main:
        last = loop.history[-1] if loop.history else {}
        meta = weights_metadata(
            parts,
            {
                "epoch": parts.train_loader.epoch,
                "position": parts.train_loader.position,
                "metrics": {k: v for k, v in last.items() if isinstance(v, (int, float))},
            },
        )
        path = parts.checkpoints.save(
            loop.global_step,
            model_state=parts.model.state_dict(),
            train_state=state,
            metadata=meta,
            is_best=is_best,
        )
    if parts.ctx.enabled:
        import torch.distributed as dist

        dist.barrier()
    return path


def restore(
    parts: RunParts, loop: LoopState, *, run_dir: Path, force: bool, log: logging.Logger
) -> RunParts:
    """Continue from the latest checkpoint in ``run_dir``: load the parts' states and
    ``loop``'s, and return the parts this session runs with (a fresh averager where the
    checkpoint holds none, the first session's tuning, the fine-tuning record). Refuses
    (raises) a checkpoint this run cannot continue exactly, unless ``force``."""
    checkpoint = parts.checkpoints.load_latest()
    if checkpoint is None:
        raise ResNetV2Error(f"--resume {run_dir}: it holds no checkpoint yet")
    state = checkpoint.train_state
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ResNetV2Error(f"{checkpoint.path}: not a resnetv2 training state")
    changes = check_resume(state["resume_key"], parts.resume_key, force=force)
    check_state_ranges(
        state,
        steps_per_epoch=parts.steps_per_epoch,
        num_train=parts.data.num_train,
        strict=not force,
        where=str(checkpoint.path),
    )
    for change in changes:
        log.warning("resuming despite a change (--resume-force): %s", change)
    from resnetv2.io import load_state_dict_strict

    load_state_dict_strict(parts.model, checkpoint.model_state, source=str(checkpoint.path))
    parts.optimizer.load_state_dict(state["optimizer"])
    budget, lr = parts.budget, parts.lr
    saved_budget = state.get("budget")
    lr.load_state_dict(state["lr"], plan=budget is not None and saved_budget is not None)
    ema = parts.ema
    if ema is not None:
        if state["ema"] is not None:
            ema.load_state_dict(state["ema"])
        else:  # averaging turned on at resume: it starts from the restored weights
            ema = build_averager(parts.model, parts.config.train)
    parts.train_loader.load_state_dict(state["loader"], strict=not force)
    rng = state["rng_cpu"]
    if len(rng) == parts.ctx.world_size:
        torch.set_rng_state(rng[parts.ctx.rank])
    if state.get("rng_cuda") is not None and parts.device.type == "cuda":
        torch.cuda.set_rng_state(state["rng_cuda"])
    loop.load_state_dict(state)
    init_info = parts.init_info
    if state.get("init_weights") is not None:
        init_info = dict(state["init_weights"])
    channels_last, tuning = parts.channels_last, parts.tuning
    if state.get("tuning") and not state["tuning"].get("skipped"):
        # The first session's probe decided the layout and threads (results stay exact),
        # except where this session's flags set them.
        saved, t = state["tuning"], parts.config.train
        wanted = bool(saved["channels_last"]) if t.channels_last == "auto" else channels_last
        threads = int(saved["threads"]) if t.threads is None else t.threads
        channels_last = apply_tuning(parts.model, ema, channels_last, wanted, threads)
        tuning = dict(saved)
    if budget is not None and saved_budget is not None:
        new_budget = budget.budget
        budget.load_state_dict(saved_budget)
        if new_budget != budget.budget:
            budget.budget = new_budget
            if budget.planned_steps is not None:
                budget.plan(loop.global_step)
                lr.schedule.replan(loop.global_step, budget.planned_steps)
            log.info("resumed with a new budget: %s", budget.describe())
    elif budget is not None and loop.history:  # a budget added on resume
        budget.elapsed_before = float(loop.history[-1].get("elapsed", 0.0))
    if parts.early_stopping is not None and state.get("early_stopping"):
        parts.early_stopping.load_state_dict(state["early_stopping"])
    log.info(
        "resumed %s from %s (epoch %d, batch %d of %d)",
        run_dir,
        checkpoint.path.name,
        parts.train_loader.epoch + 1,
        parts.train_loader.position,
        parts.steps_per_epoch,
    )
    return dataclasses.replace(
        parts, ema=ema, channels_last=channels_last, tuning=tuning, init_info=init_info
    )
