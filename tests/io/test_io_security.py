"""Nothing executes pickled code from a file (docs/reliability.md, promise 2)."""

import os
import pickle
import re
from pathlib import Path

import pytest
import torch

import resnetv2
from resnetv2.io import (
    CorruptWeightsError,
    UnsafeCheckpointError,
    load_weights,
    safe_torch_load,
)


class _CreatesSentinel:
    """Unpickling this object (unsafely) would create the sentinel file."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


def _evil_zip(path, sentinel):
    torch.save({"conv.weight": torch.zeros(2), "payload": _CreatesSentinel(sentinel)}, path)


def _evil_legacy_pickle(path, sentinel):
    with open(path, "wb") as handle:
        pickle.dump(_CreatesSentinel(sentinel), handle, protocol=2)


@pytest.mark.parametrize("make", [_evil_zip, _evil_legacy_pickle], ids=["zip", "raw-pickle"])
@pytest.mark.parametrize("suffix", [".pt", ".bin"])
def test_pickle_that_would_run_code_is_refused(tmp_path, make, suffix):
    sentinel = tmp_path / "sentinel"
    path = tmp_path / f"evil{suffix}"
    make(path, sentinel)
    assert not sentinel.exists()

    with pytest.raises(UnsafeCheckpointError) as info:
        load_weights(path)

    assert not sentinel.exists(), "the pickle's code ran"
    message = str(info.value)
    assert str(path) in message
    assert "pickled code" in message and "safetensors" in message
    # PyTorch's own message explains how to load unsafely; that advice must not be relayed.
    assert "weights_only` set to `False`" not in message
    assert "add_safe_globals" not in message


def test_environment_cannot_force_an_unsafe_load(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    sentinel = tmp_path / "sentinel"
    _evil_zip(tmp_path / "evil.pt", sentinel)
    with pytest.raises(UnsafeCheckpointError):
        safe_torch_load(tmp_path / "evil.pt")
    assert not sentinel.exists()


def test_plain_state_dict_from_another_library_loads(tmp_path):
    state = {"module.fc.weight": torch.randn(3, 2), "module.fc.bias": torch.randn(3)}
    torch.save({"epoch": 3, "state_dict": state}, tmp_path / "other.pth")
    loaded, metadata = load_weights(tmp_path / "other.pth")
    assert metadata == {}
    assert sorted(loaded) == ["fc.bias", "fc.weight"]
    assert torch.equal(loaded["fc.weight"], state["module.fc.weight"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"hello, not a checkpoint", "not a PyTorch file"), (None, "truncated or damaged")],
)
def test_garbage_or_truncated_torch_file_is_a_typed_error(tmp_path, content, expected):
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save({"w": torch.zeros(100)}, path)
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(CorruptWeightsError, match=expected):
        load_weights(path)


def test_a_pt_file_that_is_not_a_state_dict_is_rejected(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(CorruptWeightsError, match="not a state dict"):
        load_weights(tmp_path / "list.pt")


def test_torch_load_lives_in_exactly_one_module_and_is_always_weights_only():
    package = Path(resnetv2.__file__).parent
    callers = {}
    for source in package.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert not re.search(r"weights_only\s*=\s*False", text), source
        assert not re.search(r"\b(pickle|cPickle|dill|joblib)\.loads?\(", text), source
        calls = re.findall(r"torch\.load\(([^)]*)\)", text)
        if calls or re.search(r"from\s+torch\s+import\s+[^\n]*\bload\b", text):
            callers[source.relative_to(package).as_posix()] = calls
    assert list(callers) == ["io/safe_load.py"]
    assert callers["io/safe_load.py"], "the safe loader no longer calls torch.load"
    assert all("weights_only=True" in call for call in callers["io/safe_load.py"])


def test_sentinel_helper_really_would_create_the_file(tmp_path):
    # Guards the tests above: an unsafe load of the same bytes does run the payload.
    sentinel = tmp_path / "sentinel"
    _evil_legacy_pickle(tmp_path / "evil.pkl", sentinel)
    with open(tmp_path / "evil.pkl", "rb") as handle:
        pickle.load(handle).close()
    assert os.path.exists(sentinel)
