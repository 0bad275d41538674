"""Atomic writes: the target is always either its old bytes or the complete new bytes."""

import errno
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from resnetv2.io import (
    CheckpointWriteError,
    atomic_open,
    atomic_write_bytes,
    atomic_write_text,
    atomic_write_with,
)
from resnetv2.io.atomic import is_temp_name, temp_path_for


def _entries(directory):
    return sorted(p.name for p in directory.iterdir())


def test_write_creates_and_replaces(tmp_path):
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert _entries(tmp_path) == ["data.bin"]


def test_partial_write_then_failure_keeps_old_bytes(tmp_path, monkeypatch):
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"old content")
    real_write = os.write

    def write_half_then_fail(fd, data):
        if len(data) > 4:
            real_write(fd, bytes(data[:4]))
            raise RuntimeError("simulated crash in the middle of a write")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write_half_then_fail)
    with pytest.raises(RuntimeError, match="simulated crash"):
        atomic_write_bytes(target, b"new content that never lands")
    monkeypatch.undo()
    assert target.read_bytes() == b"old content"
    assert _entries(tmp_path) == ["data.bin"]


def test_enospc_becomes_clear_oserror_naming_the_path(tmp_path, monkeypatch):
    target = tmp_path / "weights.safetensors"
    atomic_write_bytes(target, b"old")

    def full_disk(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(CheckpointWriteError) as info:
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    error = info.value
    assert isinstance(error, OSError)
    assert error.errno == errno.ENOSPC
    assert error.filename == str(target)
    assert str(target) in str(error) and "No space left" in str(error)
    assert isinstance(error.__cause__, OSError)
    assert target.read_bytes() == b"old"
    assert _entries(tmp_path) == ["weights.safetensors"]


def test_enospc_at_fsync_is_also_reported(tmp_path, monkeypatch):
    # Delayed allocation often reports a full disk only when data is flushed.
    target = tmp_path / "x.json"

    def fsync_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync_full)
    with pytest.raises(CheckpointWriteError, match="x.json"):
        atomic_write_text(target, "{}")
    monkeypatch.undo()
    assert _entries(tmp_path) == []


def test_writer_variant_for_libraries_that_want_a_filename(tmp_path):
    target = tmp_path / "model.safetensors"
    seen = []

    def writer(tmp):
        seen.append(tmp)
        save_file({"w": torch.arange(4.0)}, tmp)

    atomic_write_with(target, writer)
    assert seen[0].parent == tmp_path
    assert seen[0].suffix == ".safetensors"  # libraries that look at the extension still work
    assert torch.equal(load_file(target)["w"], torch.arange(4.0))
    assert _entries(tmp_path) == ["model.safetensors"]


def test_writer_variant_cleans_up_on_failure(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")

    def writer(tmp):
        tmp.write_bytes(b"partial")
        raise ValueError("exporter failed")

    with pytest.raises(ValueError, match="exporter failed"):
        atomic_write_with(target, writer)
    assert target.read_bytes() == b"previous"
    assert _entries(tmp_path) == ["model.onnx"]


def test_writer_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="did not create"):
        atomic_write_with(tmp_path / "out.bin", lambda tmp: None)
    assert _entries(tmp_path) == []


def test_context_manager_commits_on_success(tmp_path):
    target = tmp_path / "notes.txt"
    with atomic_open(target, "w") as handle:
        handle.write("héllo")
        assert not target.exists()  # nothing visible until the block succeeds
    assert target.read_text(encoding="utf-8") == "héllo"


@pytest.mark.parametrize("exc_type", [ValueError, KeyboardInterrupt])
def test_context_manager_rolls_back_on_any_exception(tmp_path, exc_type):
    target = tmp_path / "notes.bin"
    target.write_bytes(b"keep me")
    with pytest.raises(exc_type), atomic_open(target) as handle:
        handle.write(b"garbage")
        raise exc_type()
    assert target.read_bytes() == b"keep me"
    assert _entries(tmp_path) == ["notes.bin"]


def test_temp_names_are_hidden_recognisable_and_unique(tmp_path):
    first, second = temp_path_for(tmp_path / "a.json"), temp_path_for(tmp_path / "a.json")
    assert first != second
    assert first.name.startswith(".") and is_temp_name(first.name)
    assert not is_temp_name("a.json") and not is_temp_name("step-000000001")
