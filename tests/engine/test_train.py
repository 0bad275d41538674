"""End-to-end training on digits: the run folder, exact resume, NaN stop, refusals."""

import csv
import json

import pytest
import torch
from PIL import Image

from resnetv2.analysis import count_flops
from resnetv2.config import apply_overrides
from resnetv2.engine import (
    NonFiniteLossError,
    ResumeMismatchError,
    RunFolderError,
    Trainer,
    train,
)
from resnetv2.io import CheckpointManager, load_weights
from resnetv2.nn import ResNetV2
from resnetv2.spec import ResNetV2Spec

RUN_FILES = {
    "config.yaml",
    "spec.json",
    "metrics.csv",
    "results.json",
    "checkpoints",
    "model.safetensors",
    "train.log",
}


def test_training_writes_the_whole_run_folder(tmp_path, make_config):
    run = tmp_path / "run"
    result = train(make_config(**{"callbacks.tensorboard": True}), out=run, progress=False)
    assert {p.name for p in run.iterdir()} >= RUN_FILES
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    results = json.loads((run / "results.json").read_text())
    assert {"val_acc", "val_top5", "epochs", "train_seconds", "params", "best_epoch"} <= set(
        results
    )
    assert results["val_count"] == 359 and results["epochs"] == 2
    # training compute: every training image of both epochs through the spec's FLOPs
    assert results["train_images"] == 2 * 1438
    spec = ResNetV2Spec.from_dict(json.loads((run / "spec.json").read_text()))
    assert results["flops_per_image"] == count_flops(spec, (8, 8))
    assert results["train_pflop"] == results["flops_per_image"] * 6 * 2 * 1438 / 1e15
    assert results["val_acc"] == max(float(r["val_acc"]) for r in rows)
    # model.safetensors holds the best epoch's weights with the metadata contract.
    state, meta = load_weights(run / "model.safetensors")
    spec = ResNetV2Spec.from_dict(meta["spec"])
    assert spec.in_channels == 1 and meta["class_names"] == [str(i) for i in range(10)]
    assert meta["preprocessing"]["input_size"] == [8, 8] and meta["num_params"] == results["params"]
    model = ResNetV2(spec)
    model.load_state_dict(state)
    assert json.loads((run / "spec.json").read_text()) == meta["spec"]
    assert "epoch 2/2" in (run / "train.log").read_text()
    assert result.history[-1]["val_count"] == 359
    assert any((run / "tensorboard").iterdir())  # the tensorboard package is a dev dependency


def test_resume_at_an_epoch_boundary_is_bit_exact(tmp_path, make_config):
    # Dropout-like randomness (drop-path) and EMA make the RNG and EMA state part of the test.
    config = make_config(
        **{
            "train.epochs": 3,
            "train.ema": True,
            "model.options": {"widths": [4, 8, 16], "drop_path_rate": 0.2},
        }
    )
    straight = train(config, out=tmp_path / "a", progress=False, quiet=True)
    paused = train(config, out=tmp_path / "b", progress=False, quiet=True, stop_after_epochs=1)
    assert paused.paused and not (tmp_path / "b" / "model.safetensors").exists()
    resumed = train(config, resume=tmp_path / "b", progress=False, quiet=True)
    a = CheckpointManager(tmp_path / "a" / "checkpoints").load_latest()
    b = CheckpointManager(tmp_path / "b" / "checkpoints").load_latest()
    assert a.step == b.step == 3 * 23
    for key, tensor in a.model_state.items():
        assert torch.equal(tensor, b.model_state[key]), key
    assert straight.results["val_acc"] == resumed.results["val_acc"]
    assert [r["val_loss"] for r in straight.history] == [r["val_loss"] for r in resumed.history]


def test_a_trainer_holds_only_what_its_constructor_declares(tmp_path, make_config):
    config = make_config(**{"train.ema": True})
    run = tmp_path / "run"
    for kwargs in ({"out": run, "stop_after_epochs": 1}, {"resume": run}):
        trainer = Trainer(config, quiet=True, progress=False, **kwargs)
        declared = set(vars(trainer))
        with pytest.raises(RuntimeError, match="built when fit"):
            trainer.parts  # noqa: B018 - the parts exist once fit() builds them
        result = trainer.fit()
        assert set(vars(trainer)) == declared, set(vars(trainer)) ^ declared
        assert trainer.state.history == result.history
        assert trainer.state.global_step == 23 * len(result.history)
        assert trainer.parts.train_loader.epoch == len(result.history)
    assert not result.paused and len(result.history) == 2


def test_lookahead_with_fast_bn_momentum_resumes_bit_exact_between_pull_backs(
    tmp_path, make_config
):
    # 23 steps per epoch and a pull-back every 5: the pause falls inside a lookahead cycle.
    config = make_config(**{"train.epochs": 2, "train.lookahead": True, "train.bn_momentum": 0.4})
    straight = train(config, out=tmp_path / "a", progress=False, quiet=True)
    paused = train(config, out=tmp_path / "b", progress=False, quiet=True, stop_after_epochs=1)
    assert paused.paused
    state = CheckpointManager(tmp_path / "b" / "checkpoints").load_latest().train_state
    assert state["ema"]["updates"] == 23  # the slow weights and the cycle position are saved
    resumed = train(config, resume=tmp_path / "b", progress=False, quiet=True)
    a = CheckpointManager(tmp_path / "a" / "checkpoints").load_latest()
    b = CheckpointManager(tmp_path / "b" / "checkpoints").load_latest()
    for key, tensor in a.model_state.items():
        assert torch.equal(tensor, b.model_state[key]), key
    for key, tensor in a.train_state["ema"]["module"].items():
        assert torch.equal(tensor, b.train_state["ema"]["module"][key]), key
    assert [r["val_loss"] for r in straight.history] == [r["val_loss"] for r in resumed.history]
    assert straight.results["lookahead"] and not straight.results["ema"]
    # the option acts: the same run without lookahead ends elsewhere
    plain = train(make_config(**{"train.epochs": 2, "train.bn_momentum": 0.4}), out=tmp_path / "c",
                  progress=False, quiet=True)  # fmt: skip
    assert plain.history[-1]["val_loss"] != straight.history[-1]["val_loss"]


def test_alternating_flip_is_part_of_the_resume_key_and_needs_a_flipping_preset(
    tmp_path, make_config
):
    from resnetv2.errors import DataError

    config = make_config(**{"train.epochs": 2, "data.flip": "alternate"})
    with pytest.raises(DataError, match="never mirrors"):  # digits: no flips
        train(config, out=tmp_path / "no", progress=False, quiet=True)
    config = apply_overrides(config, {"data.augment": "standard"})
    train(config, out=tmp_path / "r", progress=False, quiet=True, stop_after_epochs=1)
    state = CheckpointManager(tmp_path / "r" / "checkpoints").load_latest().train_state
    assert state["resume_key"]["data"]["flip"] == "alternate"
    assert state["loader"]["flip"] == "alternate"
    with pytest.raises(ResumeMismatchError, match="flip"):
        train(apply_overrides(config, {"data.flip": "random"}), resume=tmp_path / "r",
              progress=False, quiet=True)  # fmt: skip


def test_frozen_whitened_stem_stays_fitted_saves_and_resumes_bit_exact(tmp_path, make_config):
    from resnetv2.engine.data import load_training_data
    from resnetv2.nn.whitening import whitening_filters

    config = make_config(**{"train.epochs": 2, "model.whiten_stem": "frozen"})
    straight = train(config, out=tmp_path / "a", progress=False, quiet=True)
    assert "whitened stem (frozen): 9 filters" in (tmp_path / "a" / "train.log").read_text()
    # the stem holds the whitening filters of the training images (digits: 1 channel, 3x3)
    data = load_training_data(config.data, seed=0, progress=False)
    images, _ = next(iter(data.train_loader(data.num_train, "none", seed=0)))
    filters, _, _ = whitening_filters(images, (3, 3))
    state, _ = load_weights(tmp_path / "a" / "model.safetensors")
    assert torch.allclose(state["stem.conv.weight"][:9], filters.float(), atol=1e-6)
    # frozen: the best epoch's saved stem is the fitted one; resume continues exactly
    train(config, out=tmp_path / "b", progress=False, quiet=True, stop_after_epochs=1)
    resumed = train(config, resume=tmp_path / "b", progress=False, quiet=True)
    b_state, _ = load_weights(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(t, b_state[k]) for k, t in state.items())
    assert [r["val_loss"] for r in straight.history] == [r["val_loss"] for r in resumed.history]
    with pytest.raises(ResumeMismatchError, match="whiten_stem"):
        train(apply_overrides(config, {"model.whiten_stem": "trainable"}), resume=tmp_path / "b",
              progress=False, quiet=True)  # fmt: skip
    # trainable: fitted at the start, then trained on
    free = train(apply_overrides(config, {"model.whiten_stem": "trainable"}),
                 out=tmp_path / "c", progress=False, quiet=True)  # fmt: skip
    trained, _ = load_weights(free.run_dir / "model.safetensors")
    assert not torch.allclose(trained["stem.conv.weight"][:9], filters.float(), atol=1e-6)


def test_resume_with_a_changed_batch_size_is_refused_with_the_diff(tmp_path, make_config):
    config = make_config(**{"train.epochs": 2})
    train(config, out=tmp_path / "r", progress=False, quiet=True, stop_after_epochs=1)
    changed = apply_overrides(
        config, {"data.batch_size": 32, "model.options": {"widths": [4, 8, 8]}}
    )
    with pytest.raises(ResumeMismatchError) as info:
        train(changed, resume=tmp_path / "r", progress=False, quiet=True)
    message = str(info.value)
    assert "batch_size: 64 -> 32" in message and "--resume-force" in message
    assert "spec.stages" in message


def test_nan_loss_stops_without_committing_nan_weights(tmp_path, make_config):
    config = make_config(**{"optim.lr": 1e30, "schedule.name": "constant"})
    with pytest.raises(NonFiniteLossError, match="training loss is nan|training loss is inf"):
        train(config, out=tmp_path / "nan", progress=False, quiet=True)
    manager = CheckpointManager(tmp_path / "nan" / "checkpoints")
    assert manager.steps() == []
    assert not (tmp_path / "nan" / "model.safetensors").exists()


def test_existing_run_folder_is_never_overwritten(tmp_path, make_config):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("x")
    with pytest.raises(RunFolderError, match="other files in it"):
        train(make_config(), out=tmp_path / "taken", progress=False)
    assert (tmp_path / "taken" / "keep.txt").read_text() == "x"


def test_early_stopping_and_plateau_act_during_training(tmp_path, make_config):
    # lr 1e-7 cannot move val_acc by 5 points: early stopping fires after patience epochs,
    # and reduce-on-plateau halves the lr after each stalled epoch (the first sets the best).
    config = make_config(
        **{
            "train.epochs": 6,
            "optim.lr": 1e-7,
            "schedule.name": "plateau",
            "schedule.plateau": {
                "monitor": "val_acc",
                "patience": 1,
                "factor": 0.5,
                "min_delta": 0.05,
            },
            "callbacks.early_stopping": {"monitor": "val_acc", "patience": 2, "min_delta": 0.05},
        }
    )
    result = train(config, out=tmp_path / "es", progress=False, quiet=True)
    assert result.stopped_early and len(result.history) == 3
    lrs = [row["lr"] for row in result.history]
    assert lrs[:2] == [pytest.approx(1e-7)] * 2 and lrs[2] == pytest.approx(0.5e-7)


def _write_folder(root, classes=("a", "b"), per_class=8, size=8):
    generator = torch.Generator().manual_seed(0)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            base = 40 + 160 * label
            pixels = (torch.rand(size, size, 3, generator=generator) * 40 + base).byte()
            Image.fromarray(pixels.numpy()).save(root / name / f"{i}.png")


def test_folder_dataset_with_a_split_and_with_separate_folders(tmp_path, make_config):
    _write_folder(tmp_path / "train")
    _write_folder(tmp_path / "val", per_class=3)
    split = make_config(
        **{
            "data.source": str(tmp_path / "train"),
            "data.val_split": 0.25,
            "data.augment": "standard",
            "data.batch_size": 4,
        }
    )
    result = train(split, out=tmp_path / "r1", progress=False, quiet=True)
    assert result.results["val_count"] == 4
    separate = make_config(
        **{
            "data.source": str(tmp_path / "train"),
            "data.val_data": str(tmp_path / "val"),
            "data.batch_size": 4,
        }
    )
    result = train(separate, out=tmp_path / "r2", progress=False, quiet=True)
    assert result.results["val_count"] == 6
    _, meta = load_weights(tmp_path / "r2" / "model.safetensors")
    assert meta["class_names"] == ["a", "b"] and meta["spec"]["num_classes"] == 2
    assert meta["preprocessing"]["in_channels"] == 3
