"""``Preprocessing``: the one description of input size, resize rule, channels and mean/std."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from resnetv2.data import load_data
from resnetv2.data.channels import convert_channels
from resnetv2.data.decode import decode_image
from resnetv2.data.preprocessing import Preprocessing, PreprocessingError, pixels_uint8
from resnetv2.data.resize import covering_size, resize_uint8_batch, scaled_target

PREP = Preprocessing((16, 16), 3, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))


def test_metadata_round_trip_and_defaults():
    block = PREP.to_metadata()
    assert block == {
        "input_size": [16, 16],
        "in_channels": 3,
        "mean": [0.5, 0.4, 0.3],
        "std": [0.2, 0.25, 0.3],
        "interpolation": "bilinear",
        "crop_pct": 1.0,
    }
    assert Preprocessing.from_metadata(block) == PREP
    # Older files carry only some keys; unknown keys are ignored.
    minimal = Preprocessing.from_metadata({"input_size": [8, 8], "extra": 1})
    assert minimal == Preprocessing((8, 8))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"interpolation": "lanczos7"}, "interpolation"),
        ({"mean": [0.5]}, "3 value"),
        ({"std": [0.1, 0.0, 0.1]}, "std > 0"),
        ({"crop_pct": 1.5}, "crop_pct"),
        ({"in_channels": 2, "mean": [0.5] * 2, "std": [0.5] * 2}, "1 or 3"),
        ({"input_size": [0, 4]}, "input_size"),
        ({"input_size": None}, "invalid preprocessing"),
    ],
)
def test_invalid_blocks_are_clear_errors(change, match):
    with pytest.raises(PreprocessingError, match=match):
        Preprocessing.from_metadata({**PREP.to_metadata(), **change})


def test_from_bundle_is_what_training_saves():
    bundle = load_data("digits")
    prep = Preprocessing.from_bundle(bundle)
    assert prep.input_size == (8, 8) and prep.in_channels == 1
    assert prep.mean == bundle.mean and prep.std == bundle.std


def test_resize_rounding_is_the_documented_rule():
    # scale = max(16/20, 16/24) = 0.8: 20x24 -> 16 x ceil(19.2) = 16x20, crop from column 2.
    assert covering_size(20, 24, (16, 16)) == (16, 20)
    assert covering_size(7, 9, (4, 4)) == (4, 6)  # 9 * 4/7 = 5.14 rounds up, never down
    assert scaled_target((224, 224), 0.875) == (256, 256)
    assert scaled_target((224, 224), 0.95) == (235, 235)  # floor, as timm
    picture = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    resized = np.asarray(Image.fromarray(picture).resize((20, 16), Image.Resampling.BILINEAR))
    expected = torch.from_numpy(resized[:, 2:18].transpose(2, 0, 1).copy())
    assert torch.equal(PREP.from_array(picture), expected)


def test_grey_is_pillow_luma_after_the_resize(tmp_path):
    picture = np.random.default_rng(1).integers(0, 256, (21, 30, 3), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "x.png")
    grey = Preprocessing((12, 12), 1, (0.5,), (0.5,))
    got = grey.decode(tmp_path / "x.png")
    rgb = decode_image(tmp_path / "x.png", size=(12, 12))
    pillow = np.asarray(Image.fromarray(rgb.permute(1, 2, 0).numpy()).convert("L"))
    assert got.shape == (1, 12, 12) and np.array_equal(got[0].numpy(), pillow)
    # The data layer's conversion is the same function.
    assert torch.equal(convert_channels(rgb[None], 1)[0], got)


def test_every_input_form_gives_the_same_pixels(tmp_path):
    picture = np.random.default_rng(2).integers(0, 256, (19, 27, 3), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "x.png")
    from_file = PREP.decode(tmp_path / "x.png")
    assert torch.equal(PREP.from_pil(Image.fromarray(picture)), from_file)
    assert torch.equal(PREP.from_array(picture), from_file)
    assert torch.equal(PREP.from_array(picture / 255.0), from_file)  # 0..1 floats
    assert torch.equal(PREP.from_array(picture.astype(np.float32)), from_file)  # 0..255 floats
    # A built-in dataset's in-memory tensor is resized by the same rule as its PNG.
    tensor = torch.from_numpy(picture.transpose(2, 0, 1).copy())[None]
    assert torch.equal(resize_uint8_batch(tensor, (16, 16))[0], from_file)


def test_float_rule_and_shape_errors():
    assert pixels_uint8(np.full((2, 2), 0.5)).tolist() == [[128, 128], [128, 128]]
    assert pixels_uint8(np.full((2, 2), 2.0)).tolist() == [[2, 2], [2, 2]]  # max > 1: 0..255
    assert pixels_uint8(np.zeros((2, 2, 1), np.int64)).shape == (2, 2)
    with pytest.raises(PreprocessingError, match=r"\[H, W, 3\]"):
        pixels_uint8(np.zeros((3, 8, 8), np.uint8))  # CHW is not HWC
    with pytest.raises(PreprocessingError, match="0..1 or 0..255"):
        pixels_uint8(np.full((2, 2, 3), -0.5))  # already normalised
    with pytest.raises(PreprocessingError, match="0..255"):
        pixels_uint8(np.full((2, 2), 300))


def test_normalize_is_x_over_255_standardised():
    batch = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    mean = torch.tensor(PREP.mean).view(1, 3, 1, 1)
    std = torch.tensor(PREP.std).view(1, 3, 1, 1)
    expected = (batch.float() / 255 - mean) / std
    assert torch.allclose(PREP.normalize(batch), expected, atol=1e-6)


def _docs_example() -> str:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "data.md").read_text(encoding="utf-8")
    block = text.split("<!-- example: preprocessing-onnx -->", 1)[1]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(
    ("channels", "interpolation", "crop_pct"), [(3, "bilinear", 1.0), (1, "bicubic", 0.875)]
)
def test_docs_example_reproduces_predict(tmp_path, monkeypatch, channels, interpolation, crop_pct):
    """The Pillow + NumPy + onnxruntime block of docs/data.md gives predict's probabilities."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from resnetv2 import create_model
    from resnetv2.export import export_model
    from resnetv2.loading import load_model, save_model
    from resnetv2.predict import Predictor

    torch.manual_seed(channels)
    prep = Preprocessing((16, 20), channels, (0.45,) * channels, (0.27,) * channels)
    prep = dataclasses.replace(prep, interpolation=interpolation, crop_pct=crop_pct)
    weights = tmp_path / "m.safetensors"
    save_model(
        create_model(8, num_classes=4, in_channels=channels),
        weights,
        class_names=list("abcd"),
        preprocessing=prep.to_metadata(),
    )
    export_model(load_model(weights), tmp_path / "model.onnx", "onnx", dynamic_batch=True)
    predictor = Predictor.from_weights(weights, top_k=4, engine="torch")
    rng = np.random.default_rng(7)
    code = _docs_example()
    monkeypatch.chdir(tmp_path)
    for i, (height, width, mode) in enumerate([(41, 29, "RGB"), (23, 64, "L"), (70, 90, "RGB")]):
        picture = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        picture.convert(mode).save(tmp_path / "photo.jpg", quality=92)
        namespace: dict = {}
        exec(compile(code, "docs/data.md", "exec"), namespace)
        (row,) = predictor.predict(tmp_path / "photo.jpg")
        expected = np.zeros(4)
        expected[row.indices] = row.probabilities
        assert namespace["p"][0] == pytest.approx(expected, abs=1e-5), (i, mode)
