"""Saving and restoring a trainer's complete state through :class:`resnetv2.io.CheckpointManager`.

A checkpoint holds the model (a plain weights file with the metadata contract: spec, class
names, preprocessing, epoch, metrics) and a training state read back without running code:
optimiser, schedule and plateau state, EMA, every process's RNG state, early stopping, the
metric history, the partial sums of an unfinished epoch, the data loader's ``(epoch, position)``
and the settings an exact resume depends on (:mod:`resnetv2.engine.resume`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from resnetv2.engine import distributed as ddp
from resnetv2.engine.ema import build_averager
from resnetv2.engine.resume import check_resume, check_state_ranges
from resnetv2.errors import ResNetV2Error

STATE_FORMAT = "resnetv2.train_state/1"


class TrainerStateMixin:
    """The checkpoint half of :class:`resnetv2.engine.trainer.Trainer`."""

    def _train_state(self) -> dict[str, Any]:
        rng = ddp.gather_rng_states(self.ctx)
        return {
            "format": STATE_FORMAT,
            "optimizer": self.optimizer.state_dict(),
            "lr": self.lr.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng_cpu": rng,
            "rng_cuda": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
            "loader": self.train_loader.state_dict(),
            "global_step": self.global_step,
            "history": self.history,
            "best": self.best,
            "running": list(self.running),
            "early_stopping": self.early_stopping.state_dict() if self.early_stopping else None,
            "resume_key": self.key,
            "init_weights": self.init_info,
            "budget": self.budget.state_dict() if self.budget is not None else None,
            "tuning": self.tuning,
        }

    def _weights_metadata(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        from resnetv2.data.preprocessing import Preprocessing

        return {
            "spec": self.spec.to_dict(),
            "class_names": list(self.data.class_names),
            # The one Preprocessing that evaluate, predict and exports read back.
            "preprocessing": Preprocessing.from_bundle(self.data).to_metadata(),
            "num_params": self.num_params,
            **({"init_weights": self.init_info} if self.init_info is not None else {}),
            **(extra or {}),
        }

    def _save_checkpoint(self, *, is_best: bool) -> Path | None:
        state = self._train_state()  # collective in DDP: every rank takes part
        path = None
        if self.ctx.is_main:
            last = self.history[-1] if self.history else {}
            meta = self._weights_metadata(
                {
                    "epoch": self.train_loader.epoch,
                    "position": self.train_loader.position,
                    "metrics": {k: v for k, v in last.items() if isinstance(v, (int, float))},
                }
            )
            path = self.checkpoints.save(
                self.global_step,
                model_state=self.model.state_dict(),
                train_state=state,
                metadata=meta,
                is_best=is_best,
            )
        if self.ctx.enabled:
            import torch.distributed as dist

            dist.barrier()
        return path

    def _restore(self) -> None:
        checkpoint = self.checkpoints.load_latest()
        if checkpoint is None:
            raise ResNetV2Error(f"--resume {self.run_dir}: it holds no checkpoint yet")
        state = checkpoint.train_state
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ResNetV2Error(f"{checkpoint.path}: not a resnetv2 training state")
        changes = check_resume(state["resume_key"], self.key, force=self.resume_force)
        check_state_ranges(
            state,
            steps_per_epoch=self.steps_per_epoch,
            num_train=self.data.num_train,
            strict=not self.resume_force,
            where=str(checkpoint.path),
        )
        for change in changes:
            self.log.warning("resuming despite a change (--resume-force): %s", change)
        from resnetv2.io import load_state_dict_strict

        load_state_dict_strict(self.model, checkpoint.model_state, source=str(checkpoint.path))
        self.optimizer.load_state_dict(state["optimizer"])
        saved_budget = state.get("budget")
        self.lr.load_state_dict(
            state["lr"], plan=self.budget is not None and saved_budget is not None
        )
        if self.ema is not None:
            if state["ema"] is not None:
                self.ema.load_state_dict(state["ema"])
            else:
                self.ema = build_averager(self.model, self.config.train)
        self.train_loader.load_state_dict(state["loader"], strict=not self.resume_force)
        rng = state["rng_cpu"]
        if len(rng) == self.ctx.world_size:
            torch.set_rng_state(rng[self.ctx.rank])
        if state.get("rng_cuda") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"])
        self.global_step = int(state["global_step"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        self.running = [float(v) for v in state["running"]]
        if state.get("init_weights") is not None:
            self.init_info = dict(state["init_weights"])
        if state.get("tuning") and not state["tuning"].get("skipped"):
            # The first session's probe decided the layout and threads (results stay exact),
            # except where this session's flags set them.
            from resnetv2.engine.setup import apply_tuning

            tuning, t = state["tuning"], self.config.train
            channels_last = (
                bool(tuning["channels_last"]) if t.channels_last == "auto" else self.channels_last
            )
            threads = int(tuning["threads"]) if t.threads is None else t.threads
            apply_tuning(self, self.model, channels_last, threads)
            self.tuning = dict(tuning)
        if self.budget is not None and saved_budget is not None:
            new_budget = self.budget.budget
            self.budget.load_state_dict(saved_budget)
            if new_budget != self.budget.budget:
                self.budget.budget = new_budget
                if self.budget.planned_steps is not None:
                    self.budget.plan(self.global_step)
                    self.lr.schedule.replan(self.global_step, self.budget.planned_steps)
                self.log.info("resumed with a new budget: %s", self.budget.describe())
        elif self.budget is not None and self.history:  # a budget added on resume
            self.budget.elapsed_before = float(self.history[-1].get("elapsed", 0.0))
        if self.early_stopping is not None and state.get("early_stopping"):
            self.early_stopping.load_state_dict(state["early_stopping"])
        self.log.info(
            "resumed %s from %s (epoch %d, batch %d of %d)",
            self.run_dir,
            checkpoint.path.name,
            self.train_loader.epoch + 1,
            self.train_loader.position,
            self.steps_per_epoch,
        )
