"""``.keras`` export (no custom objects) and the summary hook behind ``--framework keras``."""

import numpy as np
import pytest

import resnetv2
from resnetv2.errors import SpecError
from resnetv2.keras.export import export_keras
from resnetv2.keras.summary import keras_summary

keras = pytest.importorskip("keras")


def test_export_from_pytorch_round_trips(tmp_path, helpers):
    torch_model = resnetv2.create_model(11, drop_path_rate=0.1, width_multiplier=0.5)
    torch_model = helpers.randomize_torch(torch_model).eval()
    path = export_keras(torch_model, tmp_path / "model.keras")
    assert path == tmp_path / "model.keras" and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # no temp file left
    loaded = keras.saving.load_model(path)  # built-in layers only: no custom_objects
    x = np.random.RandomState(0).randn(2, 32, 32, 3).astype("float32")
    np.testing.assert_allclose(
        helpers.keras_out(loaded, x), helpers.torch_out(torch_model, x), atol=1e-4
    )
    # A loaded model has lost the in-memory spec; weights still go back with spec=.
    from resnetv2.keras.convert import keras_to_torch

    back = keras_to_torch(loaded, spec=torch_model.spec).eval()
    np.testing.assert_allclose(helpers.torch_out(back, x), helpers.torch_out(torch_model, x))


def test_export_from_spec_and_state(tmp_path, helpers):
    torch_model = helpers.randomize_torch(resnetv2.create_model("seed", depth=11)).eval()
    spec_dict = torch_model.spec.to_dict()
    path = export_keras((spec_dict, torch_model.state_dict()), tmp_path / "seed.keras")
    loaded = keras.saving.load_model(path)
    x = np.random.RandomState(1).randn(1, 32, 32, 3).astype("float32")
    np.testing.assert_allclose(
        helpers.keras_out(loaded, x), helpers.torch_out(torch_model, x), atol=1e-4
    )
    fresh = keras.saving.load_model(export_keras(torch_model.spec, tmp_path / "fresh.keras"))
    assert fresh.count_params() == loaded.count_params() == 1_445_706


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
