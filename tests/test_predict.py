"""Streaming prediction: lazy inputs, bounded batches, per-file errors, preprocessing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from resnetv2 import create_model
from resnetv2 import predict as predict_module
from resnetv2.errors import ResNetV2Error
from resnetv2.loading import save_model
from resnetv2.predict import Prediction, Predictor, Preprocessing, iter_image_paths

PREP = {
    "input_size": [16, 16],
    "in_channels": 3,
    "mean": [0.5, 0.4, 0.3],
    "std": [0.2, 0.25, 0.3],
    "interpolation": "bilinear",
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model(8, num_classes=3)
    path = tmp_path_factory.mktemp("w") / "model.safetensors"
    save_model(model, path, class_names=["cat", "dog", "fox"], preprocessing=PREP)
    return path


def write_image(path, size=(20, 24), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for i in range(3):
        write_image(tmp_path / "a" / f"{i}.png", seed=i)
    write_image(tmp_path / "a" / "deep" / "x.jpg", seed=9)
    (tmp_path / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "a" / "notes.txt").write_text("ignored: not an image extension")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"")
    return tmp_path / "a"


def test_folder_with_good_and_bad_files(weights, folder):
    predictor = Predictor.from_weights(weights, batch_size=2, top_k=2)
    rows = list(predictor.predict_iter([folder, folder / "missing.png"]))
    by_name = {r.source.rsplit("/", 1)[-1]: r for r in rows}
    assert set(by_name) == {"0.png", "1.png", "2.png", "x.jpg", "broken.jpg", "missing.png"}
    assert not by_name["broken.jpg"].ok and "corrupt" in by_name["broken.jpg"].error
    assert by_name["missing.png"].error == "no such file or folder"
    good = [r for r in rows if r.ok]
    assert len(good) == 4
    for row in good:
        assert row.labels[0] in {"cat", "dog", "fox"} and len(row.labels) == 2
        assert row.probabilities[0] >= row.probabilities[1]
        assert 0 < sum(row.probabilities) <= 1 + 1e-6


def test_results_equal_direct_model_output(weights, folder):
    from resnetv2.data.decode import decode_image
    from resnetv2.loading import load_model

    model = load_model(weights)
    path = folder / "1.png"
    image = decode_image(path, size=(16, 16)).float() / 255
    x = (image - torch.tensor(PREP["mean"]).view(3, 1, 1)) / torch.tensor(PREP["std"]).view(3, 1, 1)
    with torch.no_grad():
        expected = model(x[None]).softmax(1)[0]
    (row,) = Predictor.from_weights(weights, top_k=3).predict(path)
    assert row.indices[0] == int(expected.argmax())
    assert row.probabilities == pytest.approx(sorted(expected.tolist(), reverse=True), abs=1e-5)
    # The same image as PIL, uint8 tensor and file agree.
    pil = Image.open(path)
    tensor = torch.from_numpy(np.asarray(pil.convert("RGB")).transpose(2, 0, 1).copy())
    rows = Predictor.from_weights(weights, top_k=3).predict([pil, tensor, str(path)])
    for other in rows:
        assert other.probabilities == pytest.approx(row.probabilities, abs=1e-4)


def test_input_order_is_kept_with_workers(weights, folder):
    predictor = Predictor.from_weights(weights, batch_size=1)
    serial = [r.source for r in predictor.predict_iter([folder])]
    parallel = [r.source for r in predictor.predict_iter([folder], num_workers=2)]
    assert serial == parallel and len(serial) == 5


def test_stream_reads_at_most_one_batch_ahead(weights, folder, monkeypatch):
    # An endless input stream: listing it first would never return.
    consumed = []

    def endless():
        for i in itertools.count():
            consumed.append(i)
            yield folder / f"{i % 3}.png"

    decoded_per_batch = []
    real = predict_module.decode_batch

    def spy(batch, prep, options):
        decoded_per_batch.append(len(batch))
        return real(batch, prep, options)

    monkeypatch.setattr(predict_module, "decode_batch", spy)
    predictor = Predictor.from_weights(weights, batch_size=4)
    stream = predictor.predict_iter(endless())
    first = list(itertools.islice(stream, 5))
    assert all(r.ok for r in first)
    assert decoded_per_batch == [4, 4]  # two batches decoded to yield five rows
    assert len(consumed) == 8  # exactly the two batches needed, nothing listed ahead


def test_iter_image_paths_is_lazy_and_expands_globs(folder):
    paths = iter_image_paths([folder / "*.png", folder / "nothing*.png"])
    assert isinstance(paths, itertools.chain) or hasattr(paths, "__next__")
    rows = list(paths)
    assert {p for p, e in rows[:3]} == {str(folder / f"{i}.png") for i in range(3)}
    assert rows[3:] == [(str(folder / "nothing*.png"), "no files match this pattern")]


def test_preprocessing_variants(weights, folder):
    bicubic = Preprocessing.from_metadata({**PREP, "interpolation": "bicubic", "crop_pct": 0.875})
    assert bicubic.decode(str(folder / "0.png")).shape == (3, 16, 16)
    gray = Preprocessing.from_metadata({**PREP, "in_channels": 1, "mean": [0.5], "std": [0.5]})
    image = gray.decode(str(folder / "0.png"))
    assert image.shape == (1, 16, 16) and image.dtype == torch.uint8
    with pytest.raises(ResNetV2Error, match="interpolation"):
        Preprocessing.from_metadata({**PREP, "interpolation": "lanczos7"})


def test_prediction_dataclass_round_trip():
    row = Prediction("a.png", ["cat"], [0], [0.9])
    assert row.ok and row.label == "cat"
    assert row.to_dict() == {
        "source": "a.png",
        "labels": ["cat"],
        "indices": [0],
        "probabilities": [0.9],
        "error": None,
    }


def test_every_input_form_predicts_like_the_file(weights, tmp_path):
    """NumPy HWC (uint8, 0..1 and 0..255 floats, lists, NHWC batches), PIL, uint8 CHW/NCHW
    tensors and a preprocessed float batch all give the file's probabilities."""
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (18, 25, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    predictor = Predictor.from_weights(weights, top_k=3)
    (expected,) = predictor.predict(tmp_path / "x.png")
    chw = torch.from_numpy(pixels.transpose(2, 0, 1).copy())
    preprocessed = predictor.preprocessing.normalize(predictor.prepare(chw)[None])
    forms = [
        pixels,
        pixels / 255.0,
        pixels.astype(np.float32),
        [pixels, pixels],
        np.stack([pixels, pixels]),
        Image.fromarray(pixels),
        chw,
        chw[None],
        preprocessed,
    ]
    for form in forms:
        rows = predictor.predict(form)
        assert all(r.ok for r in rows), form
        for row in rows:
            assert row.indices == expected.indices
            assert row.probabilities == pytest.approx(expected.probabilities, abs=1e-6)


def test_grey_arrays_and_one_channel_models(tmp_path):
    torch.manual_seed(1)
    model = create_model(8, num_classes=2, in_channels=1)
    prep = {"input_size": [12, 12], "in_channels": 1, "mean": [0.4], "std": [0.3]}
    path = tmp_path / "grey.safetensors"
    save_model(model, path, class_names=["a", "b"], preprocessing=prep)
    predictor = Predictor.from_weights(path)
    grey = np.random.default_rng(5).integers(0, 256, (15, 13), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    (from_file,) = predictor.predict(tmp_path / "g.png")
    for form in (grey, grey[:, :, None], torch.from_numpy(grey)[None]):
        (row,) = predictor.predict(form)
        assert row.probabilities == pytest.approx(from_file.probabilities, abs=1e-6)


def test_wrong_shapes_are_errors_naming_the_expected_shape(weights):
    predictor = Predictor.from_weights(weights)
    with pytest.raises(ResNetV2Error, match=r"\[H, W, 3\]"):
        predictor.predict(np.zeros((3, 16, 16), np.uint8)[None])  # NCHW numpy is not NHWC
    with pytest.raises(ResNetV2Error, match=r"\[N, 3, 16, 16\]"):
        predictor.predict(torch.zeros(2, 3, 8, 8))  # a float batch of the wrong size
    with pytest.raises(ResNetV2Error, match=r"channels-first \[C, H, W\]"):
        predictor.predict(torch.zeros(16, 16, 3, dtype=torch.uint8))
    with pytest.raises(ResNetV2Error, match=r"\[C, H, W\] or a batch"):
        predictor.predict([torch.zeros(1, 1, 3, 16, 16)])
    with pytest.raises(ResNetV2Error, match="cannot predict a dict"):
        predictor.predict({"image": 1})


def test_flip_tta_in_the_python_api(weights):
    half = np.random.default_rng(6).integers(0, 256, (16, 8, 3), dtype=np.uint8)
    symmetric = np.concatenate([half, half[:, ::-1]], axis=1)
    plain = Predictor.from_weights(weights, top_k=3)
    flip = Predictor.from_weights(weights, top_k=3, tta="flip")
    (a,), (b,) = plain.predict(symmetric), flip.predict(symmetric)
    assert b.probabilities == pytest.approx(a.probabilities, abs=1e-6)
    asymmetric = np.concatenate([half, np.zeros_like(half)], axis=1)
    (c,), (d,) = plain.predict(asymmetric), flip.predict(asymmetric)
    (mirror,) = plain.predict(np.ascontiguousarray(asymmetric[:, ::-1]))
    assert d.probabilities != pytest.approx(c.probabilities, abs=1e-4)
    by_class = {i: p / 2 for i, p in zip(c.indices, c.probabilities)}
    for i, p in zip(mirror.indices, mirror.probabilities):
        by_class[i] += p / 2
    assert d.probabilities == pytest.approx([by_class[i] for i in d.indices], abs=1e-5)
    with pytest.raises(ResNetV2Error, match="valid: none, flip"):
        Predictor.from_weights(weights, tta="rotate")
