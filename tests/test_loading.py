import pytest
import torch

import resnetv2
from resnetv2.io import WeightsMismatchError, load_weights, save_weights
from resnetv2.loading import WeightsFileError, load_model, save_model


def test_round_trip_rebuilds_model_from_file_alone(tmp_path):
    model = resnetv2.create_model("seed", depth=11, num_classes=3).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
    names = ["cat", "dog", "émeu"]
    path = save_model(model, tmp_path / "w.safetensors", class_names=names)
    loaded = resnetv2.load(path)
    assert loaded.spec == model.spec
    assert loaded.metadata["class_names"] == names
    assert loaded.metadata["num_params"] == sum(p.numel() for p in model.parameters())
    assert loaded.metadata["preprocessing"]["input_size"] == [32, 32]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert not loaded.training


def test_run_folder_resolves_to_model_file(tmp_path):
    model = resnetv2.create_model(8, block="basic")
    save_model(model, tmp_path / "model.safetensors")
    assert load_model(tmp_path).spec == model.spec
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsFileError, match="model.safetensors"):
        load_model(empty)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")


def test_file_without_spec_is_explained(tmp_path):
    model = resnetv2.create_model(8, block="basic")
    save_weights(tmp_path / "plain.safetensors", model.state_dict(), {"note": "no spec"})
    with pytest.raises(WeightsFileError, match="resnetv2 convert"):
        load_model(tmp_path / "plain.safetensors")


def test_loading_is_strict(tmp_path):
    model = resnetv2.create_model(8, block="basic")
    path = save_model(model, tmp_path / "w.safetensors")
    state, metadata = load_weights(path)
    state.pop("head.fc.bias")
    save_weights(path, state, metadata)
    with pytest.raises(WeightsMismatchError, match="head.fc.bias"):
        load_model(path)


def test_class_name_count_checked(tmp_path):
    model = resnetv2.create_model(8, block="basic", num_classes=3)
    with pytest.raises(WeightsFileError, match="2 class names"):
        save_model(model, tmp_path / "w.safetensors", class_names=["a", "b"])
