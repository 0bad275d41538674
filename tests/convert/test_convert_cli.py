"""``resnetv2 convert`` and ``load_init_weights``: imported weights become resnetv2 files."""

from __future__ import annotations

import pytest
import torch
from pytorchcv.model_provider import get_model

from resnetv2 import create_model
from resnetv2.cli import main
from resnetv2.convert import ConversionError, load_init_weights
from resnetv2.errors import ResNetV2Error
from resnetv2.loading import load_model


@pytest.fixture
def pth(tmp_path, randomized):
    net = randomized(get_model("preresnet20_cifar10", pretrained=False), seed=7)
    path = tmp_path / "preresnet20_cifar10.pth"
    torch.save(net.state_dict(), path)
    return net, path


def test_convert_then_load(pth, tmp_path, capsys, output_diff):
    net, path = pth
    out = tmp_path / "p20.safetensors"
    assert main(["convert", str(path), "--out", str(out)]) == 0
    assert "preresnet20_cifar10" in capsys.readouterr().out
    model = load_model(out)
    assert model.metadata["class_names"][0] == "airplane"
    assert model.metadata["preprocessing"]["input_size"] == [32, 32]
    assert model.metadata["imported_from"]["library"] == "pytorchcv"
    assert output_diff(net, model, torch.randn(2, 3, 32, 32)) <= 1e-4
    assert main(["convert", str(path), "--out", str(out)]) == 2  # no overwrite
    assert main(["convert", str(out)]) == 2  # already ours
    assert "already a resnetv2 weights file" in capsys.readouterr().err


def test_offline_timm_source_is_a_clean_cli_error(monkeypatch, tmp_path, capsys):
    import timm

    def offline(*args, **kwargs):
        raise OSError("no connection")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(timm, "create_model", offline)
    monkeypatch.chdir(tmp_path)
    assert main(["convert", "timm:resnetv2_50"]) == 2
    err = capsys.readouterr().err
    assert "pass the local file instead" in err and "Traceback" not in err


def test_load_init_weights_new_head(pth, output_diff):
    net, path = pth
    model, meta = load_init_weights(None, path)
    assert meta["spec"]["name"] == "preresnet20_cifar10"
    assert output_diff(net, model, torch.randn(2, 3, 32, 32)) <= 1e-4
    spec = model.spec.replace(num_classes=4)
    tuned, meta = load_init_weights(spec, path)
    assert meta["head_reinitialised"] is True and "class_names" not in meta
    assert meta["preprocessing"]["mean"][0] == pytest.approx(0.4914)
    for key, value in model.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(tuned.state_dict()[key], value), key
    assert tuned.head.fc.out_features == 4


def test_load_init_weights_backbone_mismatch(pth):
    _, path = pth
    with pytest.raises(ResNetV2Error, match="different backbone"):
        load_init_weights(create_model(20).spec, path)  # stride_at differs (first_1x1)


def test_load_init_weights_offline_timm(monkeypatch):
    import timm

    monkeypatch.setattr(timm, "create_model", lambda *a, **k: (_ for _ in ()).throw(OSError()))
    with pytest.raises(ConversionError, match="--init-weights resnetv2_18.safetensors"):
        load_init_weights(None, "timm:resnetv2_18")


def test_keras_h5_files_go_through_the_keras_converter(tmp_path, monkeypatch, capsys):
    keras_convert = pytest.importorskip("resnetv2.keras.convert")
    calls = []

    def fake_load(path, preset, **options):
        calls.append((path.name, preset, options))
        return create_model(preset, units=[1, 1, 1, 1], num_classes=1000)

    monkeypatch.setattr(keras_convert, "read_keras_weights", lambda path: {"predictions": []})
    monkeypatch.setattr(keras_convert, "load_keras_applications_weights", fake_load)
    source = tmp_path / "resnet101v2.h5"
    source.write_bytes(b"stand-in; the converter is replaced")
    out = tmp_path / "k.safetensors"
    code = main(["convert", str(source), "--name", "keras_resnet101v2", "--out", str(out)])
    assert code == 0
    assert calls == [("resnet101v2.h5", "keras_resnet101v2", {})]
    meta = load_model(out).metadata
    assert meta["imported_from"]["library"] == "keras.applications"
    assert meta["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    assert len(meta["class_names"]) == 1000
