"""``Weights``: the one object every way of loading weights goes through."""

import pytest
import torch

import resnetv2
from resnetv2.config import apply_overrides, load_recipe
from resnetv2.convert import load_init_weights, load_weights_source, weights_from_source
from resnetv2.engine.model_setup import load_pretrained
from resnetv2.errors import ResNetV2Error
from resnetv2.loading import Weights, load_model, save_model, save_pretrained
from resnetv2.model_metadata import ModelMetadata
from resnetv2.predict import Predictor
from resnetv2.preprocessing_spec import PreprocessingSpec

NAMES = ["ant", "bee", "cat"]
PRE = {
    "input_size": [12, 12],
    "in_channels": 3,
    "mean": [0.25, 0.5, 0.75],
    "std": [0.2, 0.3, 0.4],
    "interpolation": "bicubic",
}


def _random(model):
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = _random(resnetv2.create_model(8, widths=[4, 8, 16], num_classes=3))
    path = tmp_path_factory.mktemp("w") / "w.safetensors"
    save_model(model, path, class_names=NAMES, preprocessing=PRE, extra={"epoch": 4})
    return model, path


def _same_model(a, b):
    assert a.spec == b.spec
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert isinstance(a.metadata, ModelMetadata) and a.metadata.to_dict() == b.metadata.to_dict()
    assert not a.training and not b.training


def test_from_file_declares_what_the_file_holds(saved):
    model, path = saved
    weights = Weights.from_file(path)
    assert weights.spec == model.spec and weights.metadata.spec == model.spec
    assert weights.class_names == tuple(NAMES)
    assert weights.preprocessing == PreprocessingSpec.from_metadata(PRE)
    assert weights.metadata.num_params == sum(p.numel() for p in model.parameters())
    assert weights.metadata.extra["epoch"] == 4
    assert weights.source == str(path)
    own = model.state_dict()
    assert weights.state_dict.keys() == own.keys()
    assert all(torch.equal(weights.state_dict[k], own[k]) for k in own)


def test_build_gives_the_saved_network_carrying_the_metadata(saved):
    model, path = saved
    weights = Weights.from_file(path)
    built = weights.build()
    x = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))
    assert built.metadata is weights.metadata
    assert built.preprocessing == weights.preprocessing


def test_every_entry_point_builds_through_weights(saved, monkeypatch):
    _, path = saved
    reference = Weights.from_file(path).build()
    calls = []
    build = Weights.build

    def counting_build(self, **kwargs):
        calls.append(self.source)
        return build(self, **kwargs)

    monkeypatch.setattr(Weights, "build", counting_build)
    config = apply_overrides(load_recipe("digits"), {"model": {"init_weights": str(path)}})
    loaded = {
        "load": resnetv2.load(path),
        "load_model": load_model(path),
        "create_model": resnetv2.create_model(pretrained=path),
        "Predictor.from_weights": Predictor.from_weights(path, device="cpu").model,
        "load_weights_source": load_weights_source(path),
        "load_init_weights": load_init_weights(None, path)[0],
        "load_pretrained": load_pretrained(config)[0],
    }
    assert len(calls) == len(loaded)
    for model in loaded.values():
        _same_model(model, reference)


def test_entry_points_into_another_head_go_through_load_into(saved, monkeypatch):
    model, path = saved
    calls = []
    load_into = Weights.load_into

    def counting_load_into(self, target):
        calls.append(target.spec.num_classes)
        return load_into(self, target)

    monkeypatch.setattr(Weights, "load_into", counting_load_into)
    spec = model.spec.replace(num_classes=5)
    config = apply_overrides(
        load_recipe("digits"),
        {"model": {"init_weights": str(path), "depth": 8, "options": {"widths": [4, 8, 16]}}},
    )
    tuned = [
        resnetv2.create_model(spec, pretrained=path),
        load_init_weights(spec, path)[0],
        load_pretrained(config)[0],
    ]
    assert calls == [5, 5, 10]  # the digits recipe has ten classes
    for net in tuned:
        assert net.metadata.head_reinitialised is True and net.metadata.class_names is None
        assert net.metadata.preprocessing == PRE


def test_load_into_keeps_a_fitting_head_and_refuses_another_backbone(saved):
    model, path = saved
    weights = Weights.from_file(path)
    same = weights.load_into(resnetv2.create_model(model.spec))
    assert torch.equal(same.head.fc.weight, model.head.fc.weight)
    assert same.metadata.head_reinitialised is False and same.metadata.class_names == tuple(NAMES)
    fresh = resnetv2.create_model(model.spec.replace(num_classes=2))
    head = fresh.head.fc.weight.clone()
    tuned = weights.load_into(fresh)
    assert torch.equal(tuned.head.fc.weight, head)
    assert torch.equal(tuned.stem.conv.weight, model.stem.conv.weight)
    assert tuned.metadata.head_reinitialised is True and "class_names" not in tuned.metadata
    with pytest.raises(ResNetV2Error, match="different backbone"):
        weights.load_into(resnetv2.create_model(model.spec.replace(stem_width=8)))


def test_metadata_round_trips_through_save_and_load(saved, tmp_path):
    _, path = saved
    first = load_model(path)
    save_pretrained(first, tmp_path / "folder")
    again = Weights.from_file(tmp_path / "folder")
    assert again.class_names == tuple(NAMES)
    assert again.metadata.preprocessing == PRE
    assert again.metadata.spec == first.spec
    back = load_model(tmp_path / "folder")
    assert back.metadata["class_names"] == NAMES and back.metadata["preprocessing"] == PRE


def test_imported_checkpoints_become_weights(tmp_path):
    from resnetv2.convert import import_checkpoint
    from resnetv2.io import save_weights

    model = _random(resnetv2.create_model("resnetv2_18", num_classes=3))
    path = tmp_path / "timm_like.safetensors"
    save_weights(path, model.state_dict())  # timm's key names, no resnetv2 spec
    imported = import_checkpoint(path, library="timm")
    weights = weights_from_source(path, library="timm")
    assert isinstance(weights, Weights)
    assert weights.spec == imported.spec
    assert weights.metadata.imported_from == imported.source
    assert weights.class_names == tuple(imported.class_names)
    _same_model(imported.build_model(), weights.build())
