"""examples/keras_fit_digits.py trains the Keras twin with model.fit (one epoch here)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keras_fit_digits.py"


@pytest.mark.slow
def test_fit_digits_one_epoch(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("keras_fit_digits", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "digits.keras"
    result = example.main(["--epochs", "1", "--depth", "8", "--save", str(out)])
    history = result["history"]
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    # One epoch on real digits already beats chance (10 classes) by far.
    assert result["val_acc"] > 0.3
    loaded = keras.saving.load_model(out)
    assert tuple(loaded.input.shape) == (None, 8, 8, 1)
    assert "validation accuracy" in capsys.readouterr().out
