"""docs/keras.md's loading block, run as written in a fresh process that has only Keras,
NumPy and Pillow, gives ``resnetv2 predict``'s probabilities on EXIF-rotated, non-square
JPEGs (issue 23, R9; issue 21: it squashed instead of cover + centre-crop, ignored EXIF
orientation and called ``np.asarray`` on a torch tensor)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import resnetv2

keras = pytest.importorskip("keras")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "keras.md"

RUNNER = """
import json, shutil, sys
from pathlib import Path

code = Path(sys.argv[1]).read_text(encoding="utf-8")
rows = []
for photo in sys.argv[2:]:
    shutil.copy(photo, "photo.jpg")
    namespace = {}
    exec(compile(code, "docs/keras.md", "exec"), namespace)
    rows.append([float(p) for p in namespace["probs"]])
imported = sorted(m for m in sys.modules if m.startswith("resnetv2"))
print(json.dumps({"probs": rows, "imported": imported}))
"""


def _docs_block() -> str:
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("<!-- example: keras-load -->", 1)[1]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


def _photo(path: Path, size: tuple[int, int], orientation: int, seed: int) -> Path:
    """A smooth random JPEG of ``size`` (width, height) carrying an EXIF orientation."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    picture = small.resize(size, Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = orientation
    picture.save(path, quality=92, exif=exif)
    return path


@pytest.mark.slow
def test_the_documented_loading_block_matches_predict(tmp_path, helpers, capsys):
    from resnetv2.cli import main
    from resnetv2.predict import Predictor

    model = helpers.randomize_torch(resnetv2.create_model(8, num_classes=4), seed=3).eval()
    pre = {"input_size": [16, 20], "in_channels": 3, "mean": [0.4, 0.5, 0.6], "std": [0.2] * 3}
    run = tmp_path / "runs" / "RUN"
    run.mkdir(parents=True)
    resnetv2.save_model(
        model, run / "model.safetensors", class_names=list("wxyz"), preprocessing=pre
    )
    assert main(["export", str(run), "--format", "keras"]) == 0
    out = capsys.readouterr().out
    assert "KERAS_BACKEND=torch" in out and "keras.saving.load_model" in out  # how to load it
    photos = [
        _photo(tmp_path / "rotated90.jpg", (61, 40), 6, 0),  # rotate 90° to be upright
        _photo(tmp_path / "rotated270.jpg", (45, 70), 8, 1),
        _photo(tmp_path / "flipped.jpg", (50, 33), 3, 2),  # 180°
        _photo(tmp_path / "large.jpg", (260, 170), 6, 3),  # > 2× the size: reduced decode
    ]
    expected = np.zeros((len(photos), 4))
    for row, pred in enumerate(Predictor.from_weights(run, top_k=4).predict(photos)):
        expected[row, pred.indices] = pred.probabilities
    (tmp_path / "block.py").write_text(_docs_block(), encoding="utf-8")
    data = helpers.plain_keras(RUNNER, tmp_path / "block.py", *photos, cwd=tmp_path)
    assert data["imported"] == []  # plain Keras: resnetv2 was never imported
    np.testing.assert_allclose(data["probs"], expected, atol=1e-4)
