"""A ``resnetv2 export --format keras`` file used by someone who has only Keras.

The check runs in a fresh Python process that never imports resnetv2: plain
``keras.saving.load_model``, raw pixels read with Pillow, and the probabilities must equal
``resnetv2 predict``'s (the :class:`~resnetv2.predict.Predictor` it runs) on the same files.
"""

from __future__ import annotations

import numpy as np
import pytest

import resnetv2

keras = pytest.importorskip("keras")

PLAIN_KERAS = """
import json, sys
import keras, numpy as np
from PIL import Image

model = keras.saving.load_model(sys.argv[1])
x = np.stack([np.asarray(Image.open(p).convert("RGB"), "float32") for p in sys.argv[2:]])
probs = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))
print(json.dumps({"probs": probs.tolist(), "imported": sorted(m for m in sys.modules if m.startswith("resnetv2"))}))
"""


def test_plain_keras_in_a_fresh_process_matches_predict(tmp_path, helpers, capsys):
    from PIL import Image

    from resnetv2.cli import main
    from resnetv2.predict import Predictor

    model = helpers.randomize_torch(resnetv2.create_model(8, num_classes=4)).eval()
    pre = {
        "input_size": [16, 16],
        "in_channels": 3,
        "mean": [0.4, 0.5, 0.6],
        "std": [0.2, 0.25, 0.3],
    }
    run = tmp_path / "run"
    run.mkdir()
    resnetv2.save_model(
        model, run / "model.safetensors", class_names=list("wxyz"), preprocessing=pre
    )
    rng = np.random.RandomState(0)
    files = []
    for i in range(3):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.randint(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        files.append(str(path))

    assert main(["export", str(run), "--format", "keras"]) == 0
    assert "parity passed" in capsys.readouterr().out  # the export prints its check
    expected = np.zeros((len(files), 4))
    for row, pred in enumerate(Predictor.from_weights(run).predict(files, top_k=4)):
        expected[row, pred.indices] = pred.probabilities  # top-k order → class order

    result = helpers.plain_keras(PLAIN_KERAS, run / "model.keras", *files, cwd=tmp_path)
    assert result["imported"] == []  # plain Keras: resnetv2 was never imported
    np.testing.assert_allclose(result["probs"], expected, atol=1e-4)
