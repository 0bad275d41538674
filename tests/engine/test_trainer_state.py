"""LoopState and the training state a checkpoint holds: its layout, and restore."""

import logging

import torch

from resnetv2.engine import train
from resnetv2.engine.distributed import DistContext
from resnetv2.engine.setup import build_run
from resnetv2.engine.trainer_state import STATE_FORMAT, LoopState, restore, train_state
from resnetv2.io import CheckpointManager

LOG = logging.getLogger("test-trainer-state")

#: The training state's keys, in the order checkpoints have always written them.
STATE_KEYS = [
    "format",
    "optimizer",
    "lr",
    "ema",
    "rng_cpu",
    "rng_cuda",
    "loader",
    "global_step",
    "history",
    "best",
    "running",
    "early_stopping",
    "resume_key",
    "init_weights",
    "budget",
    "tuning",
]


def _row(epoch, val_acc):
    return {"epoch": epoch, "val_acc": val_acc, "val_top5": 1.0, "val_loss": 1.0 - val_acc}


def test_loop_state_keeps_the_best_epoch_and_resets_the_epoch_sums():
    loop = LoopState()
    loop.add_to_epoch(2.0, 3.0, 4.0, 0.5)
    loop.add_to_epoch(1.0, 1.0, 2.0, 0.25)
    assert loop.take_epoch_sums() == (3.0, 4.0, 6.0, 0.75)
    assert loop.running == [0.0, 0.0, 0.0, 0.0]
    assert loop.end_epoch(_row(1, 0.5)) is True
    assert loop.end_epoch(_row(2, 0.4)) is False
    assert loop.end_epoch(_row(3, 0.5)) is False  # a tie is not an improvement
    assert loop.best == {"val_acc": 0.5, "val_top5": 1.0, "val_loss": 0.5, "epoch": 1}
    assert [r["epoch"] for r in loop.history] == [1, 2, 3]


def test_loop_state_round_trips_through_its_state_dict():
    loop = LoopState(global_step=46)
    loop.end_epoch(_row(1, 0.5))
    loop.end_epoch(_row(2, 0.75))
    loop.add_to_epoch(1.5, 7.0, 9.0, 0.5)
    state = loop.state_dict()
    assert list(state) == ["global_step", "history", "best", "running"]
    again = LoopState()
    again.load_state_dict(state)
    assert again == loop
    again.history.append(_row(3, 0.1))
    again.running[0] += 1.0
    assert len(loop.history) == 2 and loop.running[0] == 1.5  # loaded as copies


def test_train_state_keeps_the_checkpoint_layout(tmp_path, make_config):
    parts = build_run(
        make_config(), device=torch.device("cpu"), ctx=DistContext(), run_dir=tmp_path, log=LOG
    )
    loop = LoopState(global_step=5)
    state = train_state(parts, loop)
    assert list(state) == STATE_KEYS and state["format"] == STATE_FORMAT
    assert state["global_step"] == 5 and state["resume_key"] == parts.resume_key
    assert state["loader"] == parts.train_loader.state_dict()


def test_averaging_turned_on_at_resume_starts_from_the_restored_weights(tmp_path, make_config):
    run = tmp_path / "run"
    train(make_config(), out=run, progress=False, quiet=True, stop_after_epochs=1)
    saved = CheckpointManager(run / "checkpoints").load_latest()
    assert saved.train_state["ema"] is None
    config = make_config(**{"train.ema": True})
    parts = build_run(
        config,
        device=torch.device("cpu"),
        ctx=DistContext(),
        run_dir=run,
        log=LOG,
        resuming=True,
    )
    loop = LoopState()
    resumed = restore(parts, loop, run_dir=run, force=False, log=LOG)
    assert resumed is not parts and resumed.ema is not parts.ema
    assert resumed.model is parts.model and resumed.optimizer is parts.optimizer
    assert resumed.ema.updates == 0
    averaged = resumed.ema.module.state_dict()
    for key, tensor in saved.model_state.items():
        assert torch.equal(averaged[key], tensor), key
    assert loop.global_step == saved.step == 23 and len(loop.history) == 1
    assert parts.train_loader.epoch == 1 and parts.train_loader.position == 0
    # The whole run, resumed with EMA on: the second epoch's steps were averaged.
    result = train(config, resume=run, progress=False, quiet=True)
    last = CheckpointManager(run / "checkpoints").load_latest().train_state
    assert last["ema"]["updates"] == 23 and result.results["ema"] is True
