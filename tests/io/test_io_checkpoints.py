"""A checkpoint is either complete and verified, or ignored (docs/reliability.md, promises 1 and 7)."""

import errno
import json
import os
import warnings

import pytest
import torch
from safetensors import safe_open

import resnetv2.io.checkpoints as checkpoints_module
from resnetv2.io import (
    CheckpointManager,
    CheckpointWarning,
    CheckpointWriteError,
    CorruptCheckpointError,
    NonFiniteCheckpointError,
    NoValidCheckpointError,
    verify_checkpoint,
)


def model_state(step):
    return {
        "conv.weight": torch.full((2, 3), float(step)),
        "bn.num_batches_tracked": torch.tensor(step),
    }


def train_state(step):
    return {
        "step": step,
        "optimizer": {"state": {0: {"momentum_buffer": torch.ones(3) * step}}},
        "rng": torch.get_rng_state(),
    }


def save(manager, step, **kwargs):
    return manager.save(
        step,
        model_state=model_state(step),
        train_state=train_state(step),
        metadata={"spec": {"depth": 18}},
        **kwargs,
    )


def snapshot(directory):
    """Every file below ``directory`` with its bytes."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def visible_entries(directory):
    return sorted(p.name for p in directory.iterdir())


def test_layout_manifest_and_round_trip(tmp_path):
    manager = CheckpointManager(tmp_path / "run")
    path = save(manager, 7)
    assert path == tmp_path / "run" / "step-000000007"
    assert visible_entries(path) == ["manifest.json", "model.safetensors", "state.pt"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["step"] == 7
    for name in ("model.safetensors", "state.pt"):
        assert manifest["files"][name]["size"] == (path / name).stat().st_size
        assert len(manifest["files"][name]["sha256"]) == 64

    loaded = manager.load_latest()
    assert loaded.step == 7 and loaded.path == path
    assert loaded.metadata["spec"] == {"depth": 18} and loaded.metadata["step"] == 7
    assert torch.equal(loaded.model_state["conv.weight"], model_state(7)["conv.weight"])
    assert loaded.train_state["optimizer"]["state"][0]["momentum_buffer"].tolist() == [7.0] * 3
    assert torch.equal(loaded.train_state["rng"], train_state(7)["rng"])


def test_each_file_is_checksummed_once_by_the_manifest(tmp_path):
    path = save(CheckpointManager(tmp_path), 1)
    with safe_open(path / "model.safetensors", "pt") as handle:
        header = json.loads(handle.metadata()["resnetv2"])
    assert "tensors_sha256" not in header  # the manifest's sha256 covers the whole file
    assert header["step"] == 1 and header["spec"] == {"depth": 18}


def test_model_file_is_a_plain_weights_file_without_wrapper_prefixes(tmp_path):
    manager = CheckpointManager(tmp_path)
    state = {"module._orig_mod.fc.weight": torch.ones(2)}
    path = manager.save(1, model_state=state)
    with safe_open(path / "model.safetensors", "pt") as handle:
        assert list(handle.keys()) == ["fc.weight"]
    assert manager.load(1).model_state.keys() == {"fc.weight"}
    assert manager.load(1).train_state is None


def test_keeps_last_n_plus_best_and_records_best(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in range(1, 7):
        save(manager, step, is_best=step == 2)
    assert manager.steps() == [2, 5, 6]
    assert manager.best_step() == 2
    assert json.loads((tmp_path / "best.json").read_text())["step"] == 2
    assert manager.load_best().step == 2
    save(manager, 7, is_best=True)
    assert manager.steps() == [6, 7]
    assert manager.load_best().step == 7


def test_exception_part_way_through_a_save_leaves_everything_as_it_was(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path, keep_last=2)
    save(manager, 1)
    save(manager, 2, is_best=True)
    before = snapshot(tmp_path)
    real_write = os.write
    calls = []

    def fail_on_second_file(fd, data):
        calls.append(len(data))
        if len(calls) == 2:  # the model file went through; the state file dies mid-write
            real_write(fd, bytes(data[: len(data) // 2]))
            raise RuntimeError("simulated crash while writing")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", fail_on_second_file)
    with pytest.raises(RuntimeError, match="simulated crash"):
        save(manager, 3, is_best=True)
    monkeypatch.undo()

    assert snapshot(tmp_path) == before
    assert visible_entries(tmp_path) == ["best.json", "step-000000001", "step-000000002"]
    assert manager.load_latest().step == 2


@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_disk_full_gives_a_clear_error_and_deletes_nothing(tmp_path, monkeypatch, failing):
    manager = CheckpointManager(tmp_path, keep_last=1)
    save(manager, 1)
    save(manager, 2)
    before = snapshot(tmp_path)

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, no_space)
    with pytest.raises(CheckpointWriteError) as info:
        save(manager, 3)
    monkeypatch.undo()

    error = info.value
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert "step-000000003" in str(error) and "No space left" in str(error)
    assert "intact" in str(error)
    assert snapshot(tmp_path) == before
    assert manager.latest_valid().step == 2


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-7])


def _flip_byte(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("target", "damage"),
    [
        ("model.safetensors", _truncate),
        ("model.safetensors", _flip_byte),
        ("state.pt", _truncate),
        ("state.pt", _flip_byte),
        ("manifest.json", os.remove),
        ("manifest.json", _truncate),
        ("model.safetensors", os.remove),
    ],
)
def test_damaged_checkpoint_is_detected_and_the_previous_one_used(tmp_path, target, damage):
    manager = CheckpointManager(tmp_path, keep_last=3)
    for step in (1, 2, 3):
        save(manager, step)
    damage(tmp_path / "step-000000003" / target)

    with pytest.warns(CheckpointWarning, match="step-000000003"):
        assert manager.latest_valid().step == 2
    with pytest.warns(CheckpointWarning, match="step-000000003"):
        loaded = manager.load_latest()
    assert loaded.step == 2
    assert loaded.model_state["conv.weight"][0, 0].item() == 2.0
    with pytest.raises(CorruptCheckpointError, match="step-000000003"):
        manager.load(3)  # an explicit request never silently falls back


def test_steps_9_10_100_and_a_corrupt_101_resume_from_100(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=None)
    for step in (9, 10, 100, 101):
        save(manager, step)
    _flip_byte(tmp_path / "step-000000101" / "model.safetensors")
    with pytest.warns(CheckpointWarning):
        loaded = manager.load_latest()
    assert loaded.step == 100
    assert loaded.train_state["step"] == 100


def test_order_is_by_step_number_not_by_name(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=None)
    save(manager, 999_999_999)
    save(manager, 1_000_000_000)
    # "step-1000000000" sorts before "step-999999999" as text
    assert sorted(visible_entries(tmp_path))[0] == "step-1000000000"
    assert manager.latest_valid().step == 1_000_000_000
    assert manager.steps() == [999_999_999, 1_000_000_000]


def test_nan_model_state_is_refused_and_nothing_committed(tmp_path):
    manager = CheckpointManager(tmp_path)
    save(manager, 1)
    before = snapshot(tmp_path)
    poisoned = model_state(2)
    poisoned["conv.weight"][1, 1] = float("nan")
    with pytest.raises(NonFiniteCheckpointError, match=r"conv\.weight") as info:
        manager.save(2, model_state=poisoned, train_state=train_state(2))
    assert "nothing was written" in str(info.value)
    poisoned["conv.weight"][1, 1] = float("-inf")
    with pytest.raises(NonFiniteCheckpointError):
        manager.save(2, model_state=poisoned, is_best=True)
    assert snapshot(tmp_path) == before
    assert manager.latest_valid().step == 1


def test_no_checkpoints_means_none_but_all_corrupt_is_an_error(tmp_path):
    manager = CheckpointManager(tmp_path / "fresh")
    assert manager.latest_valid() is None
    assert manager.load_latest() is None
    assert not (tmp_path / "fresh").exists()  # reading creates nothing

    save(manager, 5)
    os.remove(tmp_path / "fresh" / "step-000000005" / "manifest.json")
    with pytest.warns(CheckpointWarning):
        assert manager.latest_valid() is None
    with (
        pytest.warns(CheckpointWarning),
        pytest.raises(NoValidCheckpointError, match="none of the 1"),
    ):
        manager.load_latest()


def test_missing_step_and_missing_best_are_clear_errors(tmp_path):
    manager = CheckpointManager(tmp_path)
    save(manager, 3)
    with pytest.raises(NoValidCheckpointError, match="no checkpoint for step 4"):
        manager.load(4)
    with pytest.raises(NoValidCheckpointError, match="is_best=True"):
        manager.load_best()


def test_leftovers_of_a_killed_save_are_ignored_then_cleaned(tmp_path):
    manager = CheckpointManager(tmp_path)
    save(manager, 1)
    stale_dir = tmp_path / ".tmp-step-000000002-999-deadbeef"
    stale_dir.mkdir()
    (stale_dir / "model.safetensors").write_bytes(b"half")
    (tmp_path / ".best.tmp-999-deadbeef.json").write_text("{")
    (tmp_path / ".trash-step-000000000-cafe").mkdir()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # leftovers are not even worth a warning
        assert manager.latest_valid().step == 1
        assert manager.steps() == [1]
    save(manager, 2)
    assert visible_entries(tmp_path) == ["step-000000001", "step-000000002"]


def test_saving_an_existing_step_replaces_it(tmp_path):
    manager = CheckpointManager(tmp_path)
    save(manager, 4)
    manager.save(4, model_state={"conv.weight": torch.zeros(1)})
    assert manager.load(4).model_state["conv.weight"].tolist() == [0.0]
    assert visible_entries(tmp_path) == ["step-000000004"]


def test_later_checkpoints_from_an_abandoned_run_are_warned_about_not_pruned(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=1)
    save(manager, 50)
    with pytest.warns(CheckpointWarning, match="later checkpoints"):
        save(manager, 10)
    with pytest.warns(CheckpointWarning):
        save(manager, 11)
    assert manager.steps() == [11, 50]


def test_manifest_cannot_point_outside_its_directory(tmp_path):
    manager = CheckpointManager(tmp_path)
    path = save(manager, 1)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["../secret"] = {"size": 0, "sha256": ""}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptCheckpointError, match="invalid file name"):
        verify_checkpoint(path)


def test_manifest_for_another_step_is_rejected(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=None)
    save(manager, 1)
    save(manager, 2)
    os.rename(tmp_path / "step-000000001", tmp_path / "step-000000003")  # copied by hand
    with pytest.warns(CheckpointWarning, match="manifest is for step 1"):
        assert manager.latest_valid().step == 2


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="keep_last"):
        CheckpointManager(tmp_path, keep_last=0)
    manager = CheckpointManager(tmp_path)
    with pytest.raises(ValueError, match="non-negative int"):
        manager.save(-1, model_state={})
    with pytest.raises(TypeError, match="JSON-serialisable"):
        manager.save(1, model_state={}, metadata={"spec": object()})
    with pytest.raises(TypeError, match="cannot store"):
        manager.save(1, model_state={}, train_state={"fn": print})
    assert manager.steps() == [] and [p for p in tmp_path.iterdir()] == []


def test_save_is_serialised_by_a_lock(tmp_path, monkeypatch):
    if checkpoints_module.fcntl is None:
        pytest.skip("no advisory locking on this platform")
    calls = []
    real_flock = checkpoints_module.fcntl.flock
    monkeypatch.setattr(
        checkpoints_module.fcntl, "flock", lambda fd, op: calls.append(op) or real_flock(fd, op)
    )
    save(CheckpointManager(tmp_path), 1)
    assert calls == [checkpoints_module.fcntl.LOCK_EX]
