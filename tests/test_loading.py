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


def test_save_pretrained_writes_the_hub_layout_and_reads_back(tmp_path):
    import json

    model = resnetv2.create_model(8, num_classes=2).eval()
    pre = {"input_size": [24, 24], "in_channels": 3, "mean": [0.2] * 3, "std": [0.3] * 3}
    folder = resnetv2.save_pretrained(
        model, tmp_path / "hub", class_names=["no", "yes"], preprocessing=pre
    )
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["spec"] == model.spec.to_dict() and config["class_names"] == ["no", "yes"]
    assert config["label_names"] == ["no", "yes"] and config["preprocessing"]["input_size"] == [
        24,
        24,
    ]
    assert config["pretrained_cfg"]["input_size"] == [3, 24, 24]
    x = torch.randn(2, 3, 24, 24)
    for loaded in (resnetv2.load(folder), resnetv2.create_model(pretrained=folder)):
        assert loaded.metadata["class_names"] == ["no", "yes"]
        assert loaded.pretrained_cfg["mean"] == (0.2, 0.2, 0.2)
        with torch.no_grad():
            assert torch.equal(loaded.eval()(x), model(x))
    # a new head for other classes, the backbone from the folder (fine-tuning)
    five = resnetv2.create_model(8, pretrained=folder, num_classes=5)
    assert five.num_classes == 5 and torch.equal(five.stem.conv.weight, model.stem.conv.weight)


def test_config_json_is_what_people_edit(tmp_path):
    import json

    model = resnetv2.create_model(8, num_classes=2)
    folder = resnetv2.save_pretrained(model, tmp_path / "hub", class_names=["a", "b"])
    config = json.loads((folder / "config.json").read_text())
    config["class_names"] = ["cat", "dog"]
    (folder / "config.json").write_text(json.dumps(config))
    assert resnetv2.load(folder).metadata["class_names"] == ["cat", "dog"]
    # saving a loaded model again keeps its names and preprocessing
    again = resnetv2.save_pretrained(resnetv2.load(folder), tmp_path / "again")
    assert json.loads((again / "config.json").read_text())["class_names"] == ["cat", "dog"]


def test_foreign_or_broken_config_json_is_explained(tmp_path):
    model = resnetv2.create_model(8, num_classes=2)
    folder = resnetv2.save_pretrained(model, tmp_path / "hub")
    (folder / "config.json").write_text('{"architecture": "resnet50", "num_classes": 2}')
    with pytest.raises(WeightsFileError, match="no resnetv2 'spec'"):
        resnetv2.load(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(WeightsFileError, match="not valid JSON"):
        resnetv2.load(folder)
    with pytest.raises(NotADirectoryError):
        resnetv2.save_pretrained(model, folder / "config.json")
