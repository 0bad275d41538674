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
from resnetv2.engine.setup import RunParts, build_run, log_run_start
from resnetv2.engine.trainer_state import LoopState, restore, save_checkpoint, weights_metadata
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


class Trainer:
    """One training run. Use :func:`train`; the class exists to keep the loop readable.

    What a trainer holds is declared in :meth:`__init__`: the session's settings and run
    folder, :attr:`parts` (the :class:`~resnetv2.engine.setup.RunParts` that
    :func:`~resnetv2.engine.setup.build_run` makes, once, when :meth:`fit` starts),
    :attr:`state` (the :class:`~resnetv2.engine.trainer_state.LoopState` the loop counts in)
    and this session's timer and TensorBoard writer.
    """

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
        #: The config as given; :attr:`parts` holds the resolved one the run trains.
        self.requested_config = config
        #: A loaded data bundle to train on instead of the config's data source.
        self.given_data = data
        self.started = time.perf_counter()
        #: Where a --time budget's clock starts (the CLI passes the process start).
        self.clock_started = budgets.now() if started is None else started
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
        self._parts: RunParts | None = None
        self.state = LoopState()
        # This session's: made when the loop starts.
        self.timer: RunTimer | None = None
        self.tensorboard: TensorBoardLogger | None = None
        #: A first budget plan may set the schedule's length outright (see :meth:`_fit`).
        self.budget_from_start = False

    # ------------------------------------------------------------------ set-up
    @property
    def parts(self) -> RunParts:
        """What the run trains with (:func:`~resnetv2.engine.setup.build_run`)."""
        if self._parts is None:
            raise RuntimeError("the trainer's parts are built when fit() starts")
        return self._parts

    def _build(self) -> RunParts:
        """Build the run's parts (:mod:`.setup`), once."""
        if self._parts is None:
            self._parts = build_run(
                self.requested_config,
                device=self.device,
                ctx=self.ctx,
                run_dir=self.run_dir,
                log=self.log,
                resuming=self.resuming,
                resume_force=self.resume_force,
                data=self.given_data,
                progress=self.progress,
                clock_started=self.clock_started,
            )
        return self._parts

    # ------------------------------------------------------------------ loop
    def _train_epoch(self, epoch: int, stop: StopSignals) -> bool:
        """Run the rest of ``epoch``; return False when a stop signal cut it short."""
        p, state = self.parts, self.state
        t = p.config.train
        model = p.forward_model
        model.train()
        params = [w for w in p.model.parameters() if w.requires_grad]
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        started = time.perf_counter()
        check_every = 1 if self.device.type == "cpu" else 25
        bar = EpochProgress(
            epoch,
            self._bar_epochs(),
            p.steps_per_epoch,
            p.train_loader.position,
            enabled=self.progress and self.ctx.is_main,
        )
        lr = p.lr.lr_at(state.global_step)
        completed = True
        try:
            for images, labels in p.train_loader:
                images = ddp.local_slice(images, self.ctx)
                labels = ddp.local_slice(labels, self.ctx)
                if p.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                lr = p.lr.apply(p.optimizer, state.global_step)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=p.amp):
                    logits = model(images)
                loss = F.cross_entropy(
                    logits.float(),
                    labels,
                    weight=p.class_weights,
                    label_smoothing=t.label_smoothing,
                )
                if state.global_step % check_every == 0 or self.ctx.enabled:
                    self._check_loss(loss, epoch, lr)
                p.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if t.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
                p.optimizer.step()
                if p.ema is not None:
                    p.ema.update(p.model)
                state.global_step += 1
                message = self.timer.step()
                if message is not None and p.budget is None:
                    self.log.info(message)
                n = labels.shape[0]
                loss_sum += loss.detach().double() * n
                correct += (logits.detach().argmax(1) == labels).sum()
                count += n
                bar.update(loss_sum, correct, count, lr, started)
                # The budget counts this step first: a stop request during the plan's last
                # step still ends the epoch normally (validated, then the stop is handled).
                done = p.budget is not None and self._budget_step()
                if p.budget is not None:
                    bar.set_epochs(self._bar_epochs())
                if done:
                    break  # the budget's last step: this epoch ends here and is validated
                if ddp.broadcast_flag(stop.signum is not None, self.ctx, self.device):
                    completed = False
                    break
        finally:
            bar.close()
        self._check_loss(loss_sum / max(count, 1), epoch, lr)
        sums = ddp.all_reduce_sums([float(loss_sum), float(correct), count], self.ctx, self.device)
        state.add_to_epoch(sums[0], sums[1], sums[2], time.perf_counter() - started)
        return completed

    # ------------------------------------------------------------------ budget
    def _epochs_label(self) -> int:
        """The epoch count shown in progress lines: planned under a budget, else the config's."""
        p = self.parts
        if p.budget is not None and p.budget.planned_steps is not None:
            return max(1, math.ceil(p.budget.planned_epochs))
        return p.config.train.epochs

    def _bar_epochs(self) -> int | None:
        """The epoch count of the progress bar: unknown (``None``) before a budget's first
        plan, where the config's epochs are only a cap."""
        p = self.parts
        if p.budget is not None and p.budget.planned_steps is None:
            return None
        return self._epochs_label()

    def _budget_done(self) -> bool:
        budget = self.parts.budget
        planned = budget.planned_steps if budget is not None else None
        return planned is not None and self.state.global_step >= planned

    def _budget_step(self) -> bool:
        """Count a step against the budget (the first plan comes after a warm-up); True when
        the plan's last step is done."""
        p = self.parts
        before = p.budget.planned_steps
        if p.budget.after_step(self.state.global_step):
            self._agree_on_plan()
            first = before is None and self.budget_from_start
            p.lr.schedule.replan(self.state.global_step, p.budget.planned_steps, first=first)
            planned = p.budget.planned_steps
            if before is None or abs(planned - before) > 0.02 * max(before, 1):
                self.log.info("%s", p.budget.describe())
            self.timer.epochs = self._epochs_label()
        return self._budget_done()

    def _agree_on_plan(self) -> None:
        """Every process adopts the shortest plan, so all stop at the same step."""
        if self.ctx.enabled:
            budget = self.parts.budget
            budget.planned_steps = ddp.agree_min(budget.planned_steps, self.ctx, self.device)

    def _budget_replan(self, epoch: int) -> None:
        """Re-plan at an epoch end from this epoch's measured times (rest of schedule only)."""
        p = self.parts
        first = p.budget.planned_steps is None and self.budget_from_start
        p.budget.end_epoch(self.state.global_step)
        self._agree_on_plan()
        p.lr.schedule.replan(self.state.global_step, p.budget.planned_steps, first=first)
        self.log.info(
            "%s after epoch %d: %s",
            "plan" if first else "re-plan",
            epoch + 1,
            p.budget.describe(),
        )
        self.timer.epochs = self._epochs_label()

    def _check_loss(self, loss: torch.Tensor, epoch: int, lr: float) -> None:
        value = float(loss.detach())
        if self.ctx.enabled:
            bad = ddp.broadcast_flag(not math.isfinite(value), self.ctx, self.device)
            value = float("nan") if bad else value
        check_finite_loss(value, epoch + 1, self.state.global_step, lr)

    def _evaluate(self) -> dict[str, float]:
        p = self.parts
        model = p.ema.module if p.ema is not None else p.model
        return validate(
            model,
            p.val_loader,
            p.spec.num_classes,
            autocast=p.amp,
            channels_last=p.channels_last,
            tta=p.config.train.val_tta,
        )

    def _end_epoch(self, epoch: int) -> bool:
        """Metrics, callbacks and checkpoint after a complete epoch; True means stop."""
        p, state = self.parts, self.state
        loss_sum, correct, count, seconds = state.take_epoch_sums()
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(count, 1),
            "train_acc": correct / max(count, 1),
        }
        if p.budget is not None:
            p.budget.begin_validation()
        row.update(self._evaluate())
        row["lr"] = p.lr.lr_at(max(state.global_step - 1, 0))
        if p.budget is not None:
            p.budget.end_validation()
            if not self._budget_done():
                self._budget_replan(epoch)
        row["seconds"] = seconds
        row["images_per_second"] = count / seconds if seconds > 0 else 0.0
        row["train_images"] = int(count)  # for results.json's train_pflop
        row["elapsed"] = self.timer.elapsed
        reduced = p.lr.end_epoch(row, state.global_step)
        is_best = state.end_epoch(row)
        stop = False
        if p.early_stopping is not None and p.early_stopping.step(row):
            stop = True
        if p.budget is not None:
            p.budget.begin_checkpoint()
        save_checkpoint(p, state, is_best=is_best)
        if p.budget is not None:
            p.budget.end_checkpoint()
        if self.ctx.is_main:
            CSVLogger(self.run_dir / "metrics.csv").write_all(state.history)
            if self.tensorboard is not None:
                self.tensorboard.log_epoch(row)
        eta = self.timer.end_epoch(epoch + 1)
        if p.budget is not None:
            eta = max(p.budget.left - p.budget.finish_seconds, 0.0)
        self.log.info(format_summary(row, self._epochs_label(), is_best, eta))
        if reduced:
            self.log.info(
                "reduce-on-plateau: learning rate now %.3g", p.lr.lr_at(state.global_step)
            )
        if stop:
            es = p.config.callbacks.early_stopping
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

        p = self.parts
        # Rows of runs resumed from before this was recorded: one pass over the training set.
        images = sum(int(r.get("train_images", p.data.num_train)) for r in self.state.history)
        size = tuple(p.data.image_size)
        return {
            "train_images": images,
            "flops_per_image": count_flops(p.spec, size),
            "train_pflop": training_pflop(p.spec, size, images),
        }

    def fit(self) -> TrainResult:
        cfg = self.requested_config
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

    def _start_timer(self) -> None:
        """The session's time estimates, from where the loaders and history stand."""
        p, state = self.parts, self.state
        self.timer = RunTimer(
            epochs=p.config.train.epochs,
            steps_per_epoch=p.steps_per_epoch,
            start_epoch=p.train_loader.epoch,
            start_position=p.train_loader.position,
            batch_size=p.config.data.batch_size,
            num_val=p.data.num_val,
            elapsed_before=state.history[-1].get("elapsed", 0.0) if state.history else 0.0,
            session_started=self.started,
        )

    def _fit(self) -> TrainResult:
        p = self._build()
        state = self.state
        cfg = p.config  # with fine-tuning, build_run fills data defaults from the weights
        if self.resuming:
            # A refused resume raises here, before the run is touched.
            p = self._parts = restore(
                p, state, run_dir=self.run_dir, force=self.resume_force, log=self.log
            )
            commit_log_file(self.log)
        if self.ctx.is_main:
            write_text(self.run_dir / "config.yaml", dump_yaml(cfg))
            write_json(self.run_dir / "spec.json", p.spec.to_dict())
            if cfg.callbacks.tensorboard:
                self.tensorboard = TensorBoardLogger(self.run_dir, self.log)
        if p.precision.warning:
            self.log.warning("%s", p.precision.warning)
        self.log.info("precision: %s", p.precision.describe())
        self._start_timer()
        if not self.resuming:
            log_run_start(p, run_dir=self.run_dir, log=self.log)
        if p.budget is not None:
            # A first plan may set the schedule's length outright only when the run started
            # from step 0 under this budget; a budget added on resume stretches what is left
            # of the schedule instead, from where the run is.
            self.budget_from_start = state.global_step == 0 or p.budget.plans > 0
            p.budget.begin_session(state.global_step)
        stopped_early = False
        session_epochs = 0
        try:
            with StopSignals() as stop:
                while (
                    p.train_loader.epoch < cfg.train.epochs
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
                        return TrainResult(self.run_dir, state.history, {}, paused=True)
                    session_epochs += 1
                    epoch = p.train_loader.epoch
                    if not self._train_epoch(epoch, stop):
                        path = save_checkpoint(p, state, is_best=False)
                        raise TrainingInterrupted(stop.signum, path)
                    stopped_early = self._end_epoch(epoch)
                    if ddp.broadcast_flag(stop.signum is not None, self.ctx, self.device):
                        raise TrainingInterrupted(stop.signum or signal.SIGTERM, self.run_dir)
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
        results = self._finish(stopped_early)
        return TrainResult(self.run_dir, state.history, results, stopped_early)

    def _finish(self, stopped_early: bool) -> dict[str, Any]:
        p, state = self.parts, self.state
        best_epoch = state.best["epoch"]
        results = {
            "val_acc": state.best["val_acc"],
            "val_top5": state.best.get("val_top5"),
            "val_loss": state.best.get("val_loss"),
            "best_epoch": best_epoch,
            "epochs": len(state.history),
            "final_val_acc": state.history[-1]["val_acc"] if state.history else None,
            "train_seconds": sum(r["seconds"] for r in state.history),
            # Median over epochs, so a slow first (warm-up) epoch does not skew it.
            "images_per_second": statistics.median(r["images_per_second"] for r in state.history)
            if state.history
            else None,
            "params": p.num_params,
            "stopped_early": stopped_early,
            "val_count": state.history[-1]["val_count"] if state.history else 0,
            "ema": p.config.train.ema,
            "lookahead": p.config.train.lookahead,
            "world_size": self.ctx.world_size,
            "recipe": p.config.name,
            "precision": p.precision.name,
            "precision_reason": p.precision.reason,
            "val_tta": p.config.train.val_tta,
            "wall_seconds": self.timer.elapsed,
            **self._compute_record(),
        }
        if p.budget is not None:
            results["budget"] = p.budget.results()
        if p.tuning is not None:
            results["tuning"] = p.tuning
        if p.net_choice is not None:
            results["net_choice"] = p.net_choice
        if p.init_info is not None:
            results["init_weights"] = p.init_info
        if self.ctx.is_main:
            best = p.checkpoints.load_best()
            weights = best.model_state
            if best.train_state.get("ema") is not None:
                weights = best.train_state["ema"]["module"]
            meta = weights_metadata(p, {"epoch": best_epoch, "metrics": results})
            save_model_file(self.run_dir / "model.safetensors", p.spec, weights, meta)
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
