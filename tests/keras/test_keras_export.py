"""``.keras`` export (no custom objects) and the summary hook behind ``--framework keras``."""

import numpy as np
import pytest

import resnetv2
from resnetv2.errors import SpecError
from resnetv2.keras.export import export_keras
from resnetv2.keras.summary import keras_summary

keras = pytest.importorskip("keras")


def _pixels(shape, seed=0):
    return np.random.RandomState(seed).randint(0, 256, size=shape).astype("float32")


def _torch_probs(model, pixels_nhwc, mean=0.5, std=0.5):
    import torch

    with torch.no_grad():
        x = torch.from_numpy(pixels_nhwc / 255.0).permute(0, 3, 1, 2).float()
        return model((x - mean) / std).softmax(-1).numpy()


def test_export_from_pytorch_stands_alone_and_round_trips(tmp_path, helpers):
    torch_model = resnetv2.create_model(11, drop_path_rate=0.1, width_multiplier=0.5)
    torch_model = helpers.randomize_torch(torch_model).eval()
    path = export_keras(torch_model, tmp_path / "model.keras")
    assert path == tmp_path / "model.keras" and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # no temp file left
    loaded = keras.saving.load_model(path)  # built-in layers only: no custom_objects
    pixels = _pixels((2, 32, 32, 3))  # raw 0-255 pixels in, probabilities out
    probs = helpers.keras_out(loaded, pixels)
    np.testing.assert_allclose(probs, _torch_probs(torch_model, pixels), atol=1e-5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # The file carries its spec: a reloaded export converts back with no spec= argument.
    from resnetv2.keras.convert import keras_to_torch

    back = keras_to_torch(loaded).eval()
    assert back.spec == torch_model.spec and back.metadata["preprocessing"]["input_size"] == [
        32,
        32,
    ]
    np.testing.assert_allclose(
        _torch_probs(back, pixels), _torch_probs(torch_model, pixels), atol=1e-6
    )


def test_export_keeps_class_names_and_can_return_logits(tmp_path, helpers):
    from resnetv2.keras.export import export_keras_checked
    from resnetv2.keras.standalone import read_metadata

    torch_model = helpers.randomize_torch(resnetv2.create_model("seed", depth=11, num_classes=3))
    pre = {
        "input_size": [16, 24],
        "in_channels": 3,
        "mean": [0.2, 0.3, 0.4],
        "std": [0.5, 0.6, 0.7],
    }
    torch_model.metadata = {"class_names": ["a/b", "ç", "c"], "preprocessing": pre}
    result = export_keras_checked(torch_model.eval(), tmp_path / "l.keras", logits=True)
    assert result.passed and "parity passed" in result.summary()
    loaded = keras.saving.load_model(tmp_path / "l.keras")
    meta = read_metadata(loaded)
    assert meta["class_names"] == ["a/b", "ç", "c"] and meta["output"] == "logits"
    pixels = _pixels((1, 16, 24, 3), seed=2)
    import torch

    with torch.no_grad():
        x = torch.from_numpy(pixels / 255.0).permute(0, 3, 1, 2).float()
        mean, std = (
            torch.tensor(pre["mean"]).view(1, 3, 1, 1),
            torch.tensor(pre["std"]).view(1, 3, 1, 1),
        )
        expected = torch_model((x - mean) / std).numpy()
    np.testing.assert_allclose(helpers.keras_out(loaded, pixels), expected, atol=1e-4)


def test_export_from_spec_and_state(tmp_path, helpers):
    torch_model = helpers.randomize_torch(resnetv2.create_model("seed", depth=11)).eval()
    spec_dict = torch_model.spec.to_dict()
    path = export_keras((spec_dict, torch_model.state_dict()), tmp_path / "seed.keras")
    loaded = keras.saving.load_model(path)
    pixels = _pixels((1, 32, 32, 3), seed=1)
    np.testing.assert_allclose(
        helpers.keras_out(loaded, pixels), _torch_probs(torch_model, pixels), atol=1e-5
    )
    fresh = keras.saving.load_model(export_keras(torch_model.spec, tmp_path / "fresh.keras"))
    assert fresh.count_params() == 1_445_706


def test_input_shape_sets_the_channels_and_presets_default_to_softmax():
    from resnetv2.keras import create_model

    model = create_model("seed", depth=11, input_shape=(8, 8, 1))
    assert tuple(model.input.shape) == (None, 8, 8, 1) and model._resnetv2_spec.in_channels == 1
    assert model.get_layer("head_fc").activation.__name__ == "softmax"  # as the tutorial's
    assert create_model(8).get_layer("head_fc").activation.__name__ == "linear"  # logits
    logits = create_model("seed", depth=11, classifier_activation=None)
    assert logits.get_layer("head_fc").activation.__name__ == "linear"
    from resnetv2.keras.builder import SOFTMAX_PRESETS

    assert set(SOFTMAX_PRESETS) == {"seed"} | {
        p for p in resnetv2.list_presets() if p.startswith("keras_")
    }
    with pytest.raises(SpecError, match="in_channels=1"):
        create_model(resnetv2.make_spec(8), input_shape=(8, 8, 1))


def test_export_errors(tmp_path):
    with pytest.raises(SpecError, match=r"\.keras"):
        export_keras(resnetv2.make_spec(8), tmp_path / "model.h5")
    with pytest.raises(FileNotFoundError):
        export_keras(resnetv2.make_spec(8), tmp_path / "missing" / "model.keras")
    with pytest.raises(SpecError, match="needs a keras.Model"):
        export_keras("resnet", tmp_path / "model.keras")


def test_keras_summary_counts_match_the_spec():
    spec = resnetv2.make_spec("seed")
    info = keras_summary(spec, input_size=32)
    assert info["params_total"] == 6_900_746
    assert info["params_trainable"] == 6_878_922 == resnetv2.count_params(spec)
    assert info["params_non_trainable"] == 21_824
    assert info["layers"] > 100 and info["output_shape"] == [None, 10]
    assert "6,900,746" in info["text"]
    assert keras_summary(resnetv2.make_spec("resnetv2_18"))["input_shape"] == [224, 224, 3]


def test_cli_summary_framework_keras(capsys):
    import json

    from resnetv2.cli import main

    assert (
        main(["summary", "--preset", "seed", "--depth", "20", "--framework", "keras", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["keras"]["params_total"] == 2_536_714
    assert data["keras"]["params_trainable"] == data["params"]


def test_missing_keras_gives_an_install_hint():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['keras'] = None\n"  # as if the extra were not installed
        "from resnetv2.cli import main\n"
        "sys.exit(main(['summary', '--depth', '20', '--framework', 'keras']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2
    assert "pip install 'resnetv2[keras]'" in out.stderr
    assert "Traceback" not in out.stderr
