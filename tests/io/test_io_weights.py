"""Model weights: strict loading lists every mismatch; wrapper prefixes never survive."""

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from resnetv2.io import (
    NonFiniteCheckpointError,
    WeightsMismatchError,
    load_state_dict_strict,
    load_weights,
    read_weights_metadata,
    save_weights,
    strip_prefixes,
)


def _tiny_model(classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, classes))


def _file_keys(path):
    with safe_open(path, "pt") as handle:
        return sorted(handle.keys())


def test_save_load_round_trip_with_spec_metadata(tmp_path):
    model = _tiny_model()
    spec = {"depth": 20, "block": "basic", "widths": [16, 32, 64], "bias": None}
    save_weights(tmp_path / "m.safetensors", model.state_dict(), {"spec": spec})
    state, metadata = load_weights(tmp_path / "m.safetensors")
    assert metadata["spec"] == spec
    fresh = _tiny_model(classes=3)
    nn.init.zeros_(fresh[3].weight)
    load_state_dict_strict(fresh, state)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert read_weights_metadata(tmp_path / "m.safetensors")["spec"] == spec


def test_reserved_metadata_keys_are_overwritten_not_trusted(tmp_path):
    save_weights(tmp_path / "m.safetensors", {"w": torch.ones(2)}, {"tensors_sha256": "bogus"})
    _, metadata = load_weights(tmp_path / "m.safetensors")  # verifies with the real digest
    assert metadata["tensors_sha256"] != "bogus"


@pytest.mark.parametrize(
    "prefix", ["module.", "_orig_mod.", "module._orig_mod.", "_orig_mod.module."]
)
def test_wrapper_prefixes_are_never_written(tmp_path, prefix):
    model = _tiny_model()
    wrapped = {prefix + k: v for k, v in model.state_dict().items()}
    save_weights(tmp_path / "m.safetensors", wrapped)
    assert _file_keys(tmp_path / "m.safetensors") == sorted(model.state_dict())


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_wrapper_prefixes_are_removed_on_load(tmp_path, prefix):
    model = _tiny_model()
    save_file(
        {prefix + k: v.contiguous() for k, v in model.state_dict().items()},
        tmp_path / "w.safetensors",
    )
    torch.save({prefix + k: v for k, v in model.state_dict().items()}, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        state, _ = load_weights(tmp_path / name)
        assert sorted(state) == sorted(model.state_dict()), name


def test_compiled_model_saves_clean_keys_and_loads_strictly(tmp_path):
    model = _tiny_model()
    compiled = torch.compile(model)  # only wraps; nothing is compiled until called
    assert all(k.startswith("_orig_mod.") for k in compiled.state_dict())
    save_weights(tmp_path / "m.safetensors", compiled.state_dict())
    assert _file_keys(tmp_path / "m.safetensors") == sorted(model.state_dict())
    state, _ = load_weights(tmp_path / "m.safetensors")
    target = torch.compile(_tiny_model())
    load_state_dict_strict(target, state)
    assert torch.equal(target._orig_mod[3].weight, model[3].weight)


def test_prefix_collision_is_an_error_not_a_silent_drop():
    with pytest.raises(WeightsMismatchError, match="both become 'fc.weight'"):
        strip_prefixes({"fc.weight": torch.zeros(1), "module.fc.weight": torch.ones(1)})


def test_strict_load_lists_missing_unexpected_and_shape_mismatches():
    model = _tiny_model(classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = dict(_tiny_model(classes=10).state_dict())
    del state["1.running_mean"]
    state["head.extra"] = torch.zeros(1)
    with pytest.raises(WeightsMismatchError) as info:
        load_state_dict_strict(model, state, source="imagenet.safetensors")
    error = info.value
    message = str(error)
    assert "imagenet.safetensors" in message
    assert "missing keys (1): 1.running_mean" in message
    assert "unexpected keys (1): head.extra" in message
    assert "3.weight: model expects (3, 2), got (10, 2)" in message
    assert "3.bias: model expects (3,), got (10,)" in message
    assert error.missing == ["1.running_mean"]
    assert error.unexpected == ["head.extra"]
    assert ("3.weight", (3, 2), (10, 2)) in error.shape_mismatches
    assert isinstance(error, RuntimeError)
    for key, value in model.state_dict().items():  # nothing was half-loaded
        assert torch.equal(value, before[key]), key


def test_long_key_lists_are_truncated():
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(40)])
    with pytest.raises(WeightsMismatchError) as info:
        load_state_dict_strict(model, {})
    message = str(info.value)
    assert "missing keys (80)" in message
    assert "... and 60 more" in message
    assert len(info.value.missing) == 80
    assert len(message) < 2000


def test_nan_weights_are_refused_and_nothing_is_written(tmp_path):
    state = {
        "ok": torch.ones(2),
        "bad": torch.tensor([1.0, float("nan")]),
        "inf": torch.tensor([float("inf")]),
    }
    with pytest.raises(NonFiniteCheckpointError, match="bad, inf"):
        save_weights(tmp_path / "m.safetensors", state)
    assert list(tmp_path.iterdir()) == []
    save_weights(tmp_path / "m.safetensors", state, allow_non_finite=True)  # explicit opt-in
    assert torch.isnan(load_weights(tmp_path / "m.safetensors")[0]["bad"][1])


def test_unknown_extension_is_rejected_with_the_supported_list(tmp_path):
    (tmp_path / "w.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        load_weights(tmp_path / "w.h5")


def test_non_tensor_values_are_refused(tmp_path):
    with pytest.raises(TypeError, match="'step' has type int"):
        save_weights(tmp_path / "m.safetensors", {"step": 3})
