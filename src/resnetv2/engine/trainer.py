"""The training loop: one config in, one run folder out.

:func:`train` builds everything from a :class:`~resnetv2.config.TrainConfig` — data, spec,
model, optimiser, schedule, EMA, callbacks — and runs epochs, checkpointing after each one
through :class:`resnetv2.io.CheckpointManager`. Resuming restores the model, optimiser,
schedule, EMA, RNG states, callbacks and the data loader's ``(epoch, position)``, so a run
that was stopped (at an epoch boundary, or mid-epoch by SIGTERM / Ctrl-C) and resumed ends
with bit-identical weights on CPU in deterministic mode (promise 3 of docs/reliability.md).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from resnetv2.config import TrainConfig, dump_yaml
from resnetv2.device import resolve_device
from resnetv2.engine import budget as budgets
from resnetv2.engine import distributed as ddp
from resnetv2.engine.callbacks import CSVLogger, TensorBoardLogger, check_finite_loss
from resnetv2.engine.metrics import validate
from resnetv2.engine.progress import EpochProgress, RunTimer, format_summary
from resnetv2.engine.runfolder import (
    RunLock,
    check_resume_dir,
    close_logging,
    commit_log_file,
    discard_unstarted_run,
    new_run_dir,
    plot_curves_safely,
    save_model_file,
    setup_logging,
    write_json,
    write_text,
)
from resnetv2.engine.runtime import (
    StopSignals,
    TrainingInterrupted,
    deterministic_mode,
)
from resnetv2.engine.setup import build_run, log_run_start
from resnetv2.engine.trainer_state import TrainerStateMixin
from resnetv2.errors import ResNetV2Error


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    history: list[dict[str, Any]]
    results: dict[str, Any]
    stopped_early: bool = False
    paused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Trainer(TrainerStateMixin):
    """One training run. Use :func:`train`; the class exists to keep the loop readable."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        out: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None,
        resume_force: bool = False,
        quiet: bool = False,
        progress: bool = True,
        data=None,
        runs_root: str = "runs",
        stop_after_epochs: int | None = None,
        started: float | None = None,
    ) -> None:
        self.started = time.perf_counter()
        #: Where a --time budget's clock starts (the CLI passes the process start).
        self.clock_started = budgets.now() if started is None else started
        self.config = config
        self.stop_after_epochs = stop_after_epochs
        self.quiet = quiet
        self.progress = progress and not quiet
        self.resume_force = resume_force
        self.device = resolve_device(config.train.device)
        self.ctx = ddp.init_distributed(self.device.type)
        if self.ctx.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.ctx.local_rank)
        self.resuming = resume is not None
        run_dir: Path | ResNetV2Error | None = None  # other ranks get rank 0's folder
        if self.resuming:
            run_dir = check_resume_dir(resume)
        elif self.ctx.is_main:
            try:
                run_dir = new_run_dir(out, config.name, runs_root)
            except ResNetV2Error as exc:
                if not self.ctx.enabled:
                    raise
                run_dir = exc
        self.run_dir = ddp.share_run_dir(run_dir, self.ctx)
        # One training process per run folder (the main one holds the lock until it exits).
        self.lock = RunLock(self.run_dir)
        if self.ctx.is_main:
            self.lock.acquire()  # refused: another process trains into this folder
        self.log = setup_logging(
            self.run_dir, quiet=quiet, main=self.ctx.is_main, defer_file=self.resuming
        )
        self._data = data

    # ------------------------------------------------------------------ set-up
    def _build(self) -> None:
        """Set up data, model, optimiser, schedule and checkpoints (:mod:`.setup`)."""
        build_run(self)

    # ------------------------------------------------------------------ loop
    def _train_epoch(self, epoch: int, stop: StopSignals) -> bool:
        """Run the rest of ``epoch``; return False when a stop signal cut it short."""
        t = self.config.train
        model = self.forward_model
        model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        started = time.perf_counter()
        check_every = 1 if self.device.type == "cpu" else 25
        bar = EpochProgress(
            epoch,
            self._epochs_label(),
            self.steps_per_epoch,
            self.train_loader.position,
            enabled=self.progress and self.ctx.is_main,
        )
        lr = self.lr.lr_at(self.global_step)
        completed = True
        try:
            for images, labels in self.train_loader:
                images = ddp.local_slice(images, self.ctx)
                labels = ddp.local_slice(labels, self.ctx)
                if self.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                lr = self.lr.apply(self.optimizer, self.global_step)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    logits = model(images)
                loss = F.cross_entropy(
                    logits.float(),
                    labels,
                    weight=self.class_weights,
                    label_smoothing=t.label_smoothing,
                )
                if self.global_step % check_every == 0 or self.ctx.enabled:
                    self._check_loss(loss, epoch, lr)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if t.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
                self.optimizer.step()
                if self.ema is not None:
                    self.ema.update(self.model)
                self.global_step += 1
                message = self.timer.step()
                if message is not None and self.budget is None:
                    self.log.info(message)
                n = labels.shape[0]
                loss_sum += loss.detach().double() * n
                correct += (logits.detach().argmax(1) == labels).sum()
                count += n
                bar.update(loss_sum, correct, count, lr, started)
                # The budget counts this step first: a stop request during the plan's last
                # step still ends the epoch normally (validated, then the stop is handled).
                done = self.budget is not None and self._budget_step()
                if done:
                    break  # the budget's last step: this epoch ends here and is validated
                if ddp.broadcast_flag(stop.signum is not None, self.ctx, self.device):
                    completed = False
                    break
        finally:
            bar.close()
        self._check_loss(loss_sum / max(count, 1), epoch, lr)
        sums = ddp.all_reduce_sums([float(loss_sum), float(correct), count], self.ctx, self.device)
        self.running[0] += sums[0]
        self.running[1] += sums[1]
        self.running[2] += sums[2]
        self.running[3] += time.perf_counter() - started
        return completed

    # ------------------------------------------------------------------ budget
    def _epochs_label(self) -> int:
        """The epoch count shown in progress lines: planned under a budget, else the config's."""
        if self.budget is not None and self.budget.planned_steps is not None:
            return max(1, math.ceil(self.budget.planned_epochs))
        return self.config.train.epochs

    def _budget_done(self) -> bool:
        planned = self.budget.planned_steps if self.budget is not None else None
        return planned is not None and self.global_step >= planned

    def _budget_step(self) -> bool:
        """Count a step against the budget (the first plan comes after a warm-up); True when
        the plan's last step is done."""
        before = self.budget.planned_steps
        if self.budget.after_step(self.global_step):
            self._agree_on_plan()
            first = before is None and self._budget_from_start
            self.lr.schedule.replan(self.global_step, self.budget.planned_steps, first=first)
            planned = self.budget.planned_steps
            if before is None or abs(planned - before) > 0.02 * max(before, 1):
                self.log.info("%s", self.budget.describe())
            self.timer.epochs = self._epochs_label()
        return self._budget_done()

    def _agree_on_plan(self) -> None:
        """Every process adopts the shortest plan, so all stop at the same step."""
        if self.ctx.enabled:
            planned = ddp.agree_min(self.budget.planned_steps, self.ctx, self.device)
            self.budget.planned_steps = planned

    def _budget_replan(self, epoch: int) -> None:
        """Re-plan at an epoch end from this epoch's measured times (rest of schedule only)."""
        first = self.budget.planned_steps is None and self._budget_from_start
        self.budget.end_epoch(self.global_step)
        self._agree_on_plan()
        self.lr.schedule.replan(self.global_step, self.budget.planned_steps, first=first)
        self.log.info(
            "%s after epoch %d: %s",
            "plan" if first else "re-plan",
            epoch + 1,
            self.budget.describe(),
        )
        self.timer.epochs = self._epochs_label()

    def _check_loss(self, loss: torch.Tensor, epoch: int, lr: float) -> None:
        value = float(loss.detach())
        if self.ctx.enabled:
            bad = ddp.broadcast_flag(not math.isfinite(value), self.ctx, self.device)
            value = float("nan") if bad else value
        check_finite_loss(value, epoch + 1, self.global_step, lr)

    def _evaluate(self) -> dict[str, float]:
        model = self.ema.module if self.ema is not None else self.model
        return validate(
            model,
            self.val_loader,
            self.spec.num_classes,
            autocast=self.amp,
            channels_last=self.channels_last,
            tta=self.config.train.val_tta,
        )

    def _end_epoch(self, epoch: int) -> bool:
        """Metrics, callbacks and checkpoint after a complete epoch; True means stop."""
        loss_sum, correct, count, seconds = self.running
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(count, 1),
            "train_acc": correct / max(count, 1),
        }
        if self.budget is not None:
            self.budget.begin_validation()
        row.update(self._evaluate())
        row["lr"] = self.lr.lr_at(max(self.global_step - 1, 0))
        if self.budget is not None:
            self.budget.end_validation()
            if not self._budget_done():
                self._budget_replan(epoch)
        row["seconds"] = seconds
        row["images_per_second"] = count / seconds if seconds > 0 else 0.0
        row["train_images"] = int(count)  # for results.json's train_pflop
        row["elapsed"] = self.timer.elapsed
        self.running = [0.0, 0.0, 0.0, 0.0]
        reduced = self.lr.end_epoch(row, self.global_step)
        is_best = row["val_acc"] > self.best["val_acc"]
        if is_best:
            self.best = {
                "val_acc": row["val_acc"],
                "val_top5": row["val_top5"],
                "val_loss": row["val_loss"],
                "epoch": epoch + 1,
            }
        self.history.append(row)
        stop = False
        if self.early_stopping is not None and self.early_stopping.step(row):
            stop = True
        if self.budget is not None:
            self.budget.begin_checkpoint()
        self._save_checkpoint(is_best=is_best)
        if self.budget is not None:
            self.budget.end_checkpoint()
        if self.ctx.is_main:
            CSVLogger(self.run_dir / "metrics.csv").write_all(self.history)
            if self.tensorboard is not None:
                self.tensorboard.log_epoch(row)
        eta = self.timer.end_epoch(epoch + 1)
        if self.budget is not None:
            eta = max(self.budget.left - self.budget.finish_seconds, 0.0)
        self.log.info(format_summary(row, self._epochs_label(), is_best, eta))
        if reduced:
            self.log.info(
                "reduce-on-plateau: learning rate now %.3g", self.lr.lr_at(self.global_step)
            )
        if stop:
            es = self.config.callbacks.early_stopping
            self.log.info(
                "early stopping: %s has not improved by more than %g for %d epochs",
                es.monitor,
                es.min_delta,
                es.patience,
            )
        return stop

    def _compute_record(self) -> dict[str, Any]:
        """Training compute: images seen (every epoch's training images, summed over
        processes) and ``train_pflop`` (:func:`resnetv2.analysis.training_pflop`)."""
        from resnetv2.analysis import count_flops, training_pflop

        # Rows of runs resumed from before this was recorded: one pass over the training set.
        images = sum(int(r.get("train_images", self.data.num_train)) for r in self.history)
        size = tuple(self.data.image_size)
        return {
            "train_images": images,
            "flops_per_image": count_flops(self.spec, size),
            "train_pflop": training_pflop(self.spec, size, images),
        }

    def fit(self) -> TrainResult:
        cfg = self.config
        threads = torch.get_num_threads()
        if cfg.train.threads is not None:
            torch.set_num_threads(cfg.train.threads)
        with deterministic_mode(cfg.train.deterministic):
            try:
                return self._fit()
            except BaseException:
                close_logging(self.log)
                if not self.resuming and self.ctx.is_main:
                    # A start that failed before its first checkpoint leaves no folder.
                    discard_unstarted_run(self.run_dir)
                raise
            finally:
                close_logging(self.log)
                self.lock.release()
                torch.set_num_threads(threads)

    def _fit(self) -> TrainResult:
        self._build()
        cfg = self.config  # with fine-tuning, _build fills data defaults from the weights
        self.tensorboard = None
        if self.resuming:
            self._restore()  # a refused resume raises here, before the run is touched
            commit_log_file(self.log)
        if self.ctx.is_main:
            write_text(self.run_dir / "config.yaml", dump_yaml(cfg))
            write_json(self.run_dir / "spec.json", self.spec.to_dict())
            if cfg.callbacks.tensorboard:
                self.tensorboard = TensorBoardLogger(self.run_dir, self.log)
        if self.precision.warning:
            self.log.warning("%s", self.precision.warning)
        self.log.info("precision: %s", self.precision.describe())
        self.timer = RunTimer(
            epochs=cfg.train.epochs,
            steps_per_epoch=self.steps_per_epoch,
            start_epoch=self.train_loader.epoch,
            start_position=self.train_loader.position,
            batch_size=cfg.data.batch_size,
            num_val=self.data.num_val,
            elapsed_before=self.history[-1].get("elapsed", 0.0) if self.history else 0.0,
            session_started=self.started,
        )
        if not self.resuming:
            log_run_start(self)
        if self.budget is not None:
            # A first plan may set the schedule's length outright only when the run started
            # from step 0 under this budget; a budget added on resume stretches what is left
            # of the schedule instead, from where the run is.
            self._budget_from_start = self.global_step == 0 or self.budget.plans > 0
            self.budget.begin_session(self.global_step)
        stopped_early = False
        session_epochs = 0
        try:
            with StopSignals() as stop:
                while (
                    self.train_loader.epoch < cfg.train.epochs
                    and not stopped_early
                    and not self._budget_done()
                ):
                    if self.stop_after_epochs is not None and (
                        session_epochs >= self.stop_after_epochs
                    ):
                        self.log.info(
                            "paused after %d epoch(s) as asked; continue with --resume %s",
                            session_epochs,
                            self.run_dir,
                        )
                        return TrainResult(self.run_dir, self.history, {}, paused=True)
                    session_epochs += 1
                    epoch = self.train_loader.epoch
                    if not self._train_epoch(epoch, stop):
                        path = self._save_checkpoint(is_best=False)
                        raise TrainingInterrupted(stop.signum, path)
                    stopped_early = self._end_epoch(epoch)
                    if ddp.broadcast_flag(stop.signum is not None, self.ctx, self.device):
                        raise TrainingInterrupted(stop.signum or signal.SIGTERM, self.run_dir)
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
        results = self._finish(stopped_early)
        return TrainResult(self.run_dir, self.history, results, stopped_early)

    def _finish(self, stopped_early: bool) -> dict[str, Any]:
        best_epoch = self.best["epoch"]
        results = {
            "val_acc": self.best["val_acc"],
            "val_top5": self.best.get("val_top5"),
            "val_loss": self.best.get("val_loss"),
            "best_epoch": best_epoch,
            "epochs": len(self.history),
            "final_val_acc": self.history[-1]["val_acc"] if self.history else None,
            "train_seconds": sum(r["seconds"] for r in self.history),
            # Median over epochs, so a slow first (warm-up) epoch does not skew it.
            "images_per_second": statistics.median(r["images_per_second"] for r in self.history)
            if self.history
            else None,
            "params": self.num_params,
            "stopped_early": stopped_early,
            "val_count": self.history[-1]["val_count"] if self.history else 0,
            "ema": self.config.train.ema,
            "lookahead": self.config.train.lookahead,
            "world_size": self.ctx.world_size,
            "recipe": self.config.name,
            "precision": self.precision.name,
            "precision_reason": self.precision.reason,
            "val_tta": self.config.train.val_tta,
            "wall_seconds": self.timer.elapsed,
            **self._compute_record(),
        }
        if self.budget is not None:
            results["budget"] = self.budget.results()
        if self.tuning is not None:
            results["tuning"] = self.tuning
        if self.net_choice is not None:
            results["net_choice"] = self.net_choice
        if self.init_info is not None:
            results["init_weights"] = self.init_info
        if self.ctx.is_main:
            best = self.checkpoints.load_best()
            weights = best.model_state
            if best.train_state.get("ema") is not None:
                weights = best.train_state["ema"]["module"]
            meta = self._weights_metadata({"epoch": best_epoch, "metrics": results})
            save_model_file(self.run_dir / "model.safetensors", self.spec, weights, meta)
            write_json(self.run_dir / "results.json", results)
            plot_curves_safely(self.run_dir, self.log)
            self.log.info(
                "best val_acc %.2f%% (epoch %s); weights: %s",
                100 * results["val_acc"],
                best_epoch,
                self.run_dir / "model.safetensors",
            )
        if self.ctx.enabled:
            import torch.distributed as dist

            dist.barrier()
        return results


def train(
    config: TrainConfig,
    *,
    out: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    resume_force: bool = False,
    quiet: bool = False,
    progress: bool = True,
    data=None,
    stop_after_epochs: int | None = None,
    started: float | None = None,
) -> TrainResult:
    """Train ``config`` into a run folder (``out``, or a fresh ``runs/<name>-<time>``), or
    continue the run in ``resume``. ``started`` is the :func:`resnetv2.engine.budget.now`
    time a ``--time`` budget counts from (default: when the trainer is made).
    ``stop_after_epochs`` pauses (checkpointed) after that
    many epochs of this session, for time-limited jobs (the result then has ``paused``).
    Raises :class:`TrainingInterrupted` after SIGTERM/SIGINT (a checkpoint is written
    first)."""
    trainer = Trainer(
        config,
        out=out,
        resume=resume,
        resume_force=resume_force,
        quiet=quiet,
        progress=progress,
        data=data,
        stop_after_epochs=stop_after_epochs,
        started=started,
    )
    return trainer.fit()


logging.getLogger("resnetv2.train").addHandler(logging.NullHandler())
