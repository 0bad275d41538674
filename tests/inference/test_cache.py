"""The export cache: where it lives, reuse, invalidation on changed weights, corrupt entries.

The exporter is replaced by a fake that writes a small file and counts its calls, so these
tests check the cache's decisions without paying for real exports (test_runner.py does one).
"""

import json
from pathlib import Path

import pytest
import torch

import resnetv2.export
from resnetv2 import create_model
from resnetv2.errors import ResNetV2Error
from resnetv2.inference import cache
from resnetv2.inference.cache import cache_root, cached_onnx


@pytest.fixture
def exports(monkeypatch):
    """Calls of the (fake) exporter; each writes different bytes, like a real export."""
    calls: list[Path] = []

    def fake_export_onnx(model, path, **kwargs):
        calls.append(Path(path))
        Path(path).write_bytes(f"onnx #{len(calls)} {kwargs['input_shape']}".encode())

    monkeypatch.setattr(resnetv2.export, "export_onnx", fake_export_onnx)
    return calls


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model(8, num_classes=3).eval()


def test_cache_root_follows_xdg_and_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "resnetv2"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "resnetv2"
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"


def test_export_goes_to_the_cache_never_beside_the_weights(exports, model, tmp_path):
    path = cached_onnx(model, cache_dir=tmp_path / "cache")
    assert path.parent == tmp_path / "cache" / "onnx"
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["weights_sha256"] == cache.weights_checksum(model)
    assert record["input_shape"] == [3, 32, 32]


def test_second_call_reuses_the_export(exports, model, tmp_path):
    first = cached_onnx(model, cache_dir=tmp_path)
    second = cached_onnx(model, cache_dir=tmp_path)
    assert first == second and len(exports) == 1


def test_equal_weights_in_another_model_object_reuse_it(exports, model, tmp_path):
    cached_onnx(model, cache_dir=tmp_path)
    twin = create_model(8, num_classes=3).eval()
    twin.load_state_dict(model.state_dict())
    cached_onnx(twin, cache_dir=tmp_path)
    assert len(exports) == 1


def test_changed_weights_are_exported_again(exports, model, tmp_path):
    first = cached_onnx(model, cache_dir=tmp_path)
    with torch.no_grad():
        model.head.fc.weight[0, 0] += 1.0  # one number changes
    second = cached_onnx(model, cache_dir=tmp_path)
    assert second != first and len(exports) == 2


def test_a_different_input_size_is_a_different_export(exports, model, tmp_path):
    cached_onnx(model, cache_dir=tmp_path)
    cached_onnx(model, cache_dir=tmp_path, input_shape=(3, 48, 48))
    assert len(exports) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[:-3]),  # truncated
        lambda p: p.write_bytes(b"X" + p.read_bytes()[1:]),  # overwritten, same size
        lambda p: p.unlink(),  # the file is gone
        lambda p: p.with_suffix(".json").unlink(),  # the record is gone
        lambda p: p.with_suffix(".json").write_text("{not json"),  # the record is garbage
        lambda p: p.with_suffix(".json").write_text('{"key": "someone else"}'),
    ],
    ids=["truncated", "overwritten", "no-file", "no-record", "bad-record", "other-key"],
)
def test_a_broken_entry_is_rebuilt_never_used(exports, model, tmp_path, damage):
    path = cached_onnx(model, cache_dir=tmp_path)
    damage(path)
    again = cached_onnx(model, cache_dir=tmp_path)
    assert again == path and len(exports) == 2
    assert again.read_bytes().startswith(b"onnx #2")
    assert cache.CacheEntry(path.parent, path.stem).is_valid()


def test_prune_keeps_the_most_recently_used(exports, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 2)
    paths = []
    for seed in range(3):
        torch.manual_seed(seed)
        paths.append(cached_onnx(create_model(8, num_classes=3).eval(), cache_dir=tmp_path))
    left = sorted(p.name for p in (tmp_path / "onnx").glob("*.onnx"))
    assert left == sorted(p.name for p in paths[1:])
    assert not paths[0].with_suffix(".json").exists()


def test_an_unusable_cache_folder_is_a_clear_error(exports, model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ResNetV2Error, match="RESNETV2_CACHE_DIR"):
        cached_onnx(model, cache_dir=blocker)
