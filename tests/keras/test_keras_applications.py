"""keras.applications ResNet50V2 compatibility: weights load into both twins, outputs equal."""

import numpy as np
import pytest

from resnetv2.errors import SpecError
from resnetv2.keras.convert import (
    from_keras_applications,
    keras_applications_names,
    load_keras_applications_weights,
    read_keras_weights,
)
from resnetv2.options import make_spec

keras = pytest.importorskip("keras")

SIZE = 64  # small enough to keep the test fast; the layout is size-independent

# keras_resnet50v2 as make_spec options, to check that a depth plus options gives the same map.
_K = {
    "layout": "imagenet",
    "strides": (2, 2, 2, 1),
    "stride_at": "last_unit",
    "stem_type": "conv7x7_zeropad_maxpool",
    "conv_bias": "keras",
}


def _reference(helpers):
    ka = keras.applications.ResNet50V2(
        weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None
    )
    helpers.randomize_keras(ka, seed=3)
    x = np.random.RandomState(3).randn(2, SIZE, SIZE, 3).astype("float32")
    return ka, x, helpers.keras_out(ka, x)


@pytest.mark.slow
def test_keras_applications_weights_load_into_both_twins(tmp_path, helpers):
    ka, x, expected = _reference(helpers)
    assert np.abs(expected).max() > 0.1

    ours = from_keras_applications(ka, "keras_resnet50v2", input_shape=(SIZE, SIZE, 3))
    np.testing.assert_allclose(helpers.keras_out(ours, x), expected, atol=1e-4)

    # Keras 3 .weights.h5 and legacy .h5 files -> the PyTorch twin.
    ka.save_weights(tmp_path / "resnet50v2.weights.h5")
    ka.save(tmp_path / "resnet50v2.h5")  # legacy HDF5 layout, as Keras' ImageNet files
    for name in ("resnet50v2.weights.h5", "resnet50v2.h5"):
        torch_model = load_keras_applications_weights(tmp_path / name, "keras_resnet50v2").eval()
        np.testing.assert_allclose(helpers.torch_out(torch_model, x), expected, atol=1e-4)
        assert torch_model.spec.name == "keras_resnet50v2"

    keras_model = load_keras_applications_weights(
        tmp_path / "resnet50v2.weights.h5", framework="keras"
    )
    assert tuple(keras_model.input.shape) == (None, 224, 224, 3)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras_model.get_layer("stem_conv").kernel),
        keras.ops.convert_to_numpy(ka.get_layer("conv1_conv").kernel),
    )


def test_notop_file_loads_as_backbone(tmp_path, helpers):
    ka = keras.applications.ResNet50V2(weights=None, include_top=False, input_shape=(32, 32, 3))
    helpers.randomize_keras(ka, seed=4)
    # Keras' downloadable ImageNet files are legacy HDF5 with the layers at the file's root.
    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    import h5py

    path = tmp_path / "resnet50v2_notop.h5"
    with h5py.File(path, "w") as f:
        legacy.save_weights_to_hdf5_group(f, ka)
    with pytest.raises(SpecError, match="num_classes=0"):
        load_keras_applications_weights(path, "keras_resnet50v2")
    torch_model = load_keras_applications_weights(path, "keras_resnet50v2", num_classes=0).eval()
    x = np.random.RandomState(4).randn(1, 32, 32, 3).astype("float32")
    import torch

    with torch.no_grad():
        features = torch_model.forward_features(torch.from_numpy(x).permute(0, 3, 1, 2))
    np.testing.assert_allclose(
        features.permute(0, 2, 3, 1).numpy(), helpers.keras_out(ka, x), atol=1e-4
    )


def test_name_map_covers_every_weighted_layer():
    names = keras_applications_names(make_spec("keras_resnet50v2"))
    ka_weighted = {
        layer.name
        for layer in keras.applications.ResNet50V2(weights=None, input_shape=(32, 32, 3)).layers
        if layer.weights
    }
    assert set(names) == ka_weighted
    assert names["conv2_block1_preact_bn"] == "stages.0.blocks.0.norm1"
    assert names["conv3_block4_2_conv"] == "stages.1.blocks.3.conv2"
    assert names["post_bn"] == "norm" and names["predictions"] == "head.fc"


def test_wrong_files_and_specs_are_refused(tmp_path, helpers):
    with pytest.raises(SpecError, match="stride_at"):
        keras_applications_names(make_spec("resnetv2_50"))
    ka = keras.applications.ResNet50V2(weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "r50.weights.h5"
    ka.save_weights(path)
    assert len(read_keras_weights(path)) == len(keras_applications_names(make_spec(50, **_K)))
    with pytest.raises(SpecError, match="lacks|different"):
        load_keras_applications_weights(path, "keras_resnet101v2")
    not_h5 = tmp_path / "x.h5"
    not_h5.write_bytes(b"not hdf5")
    from resnetv2.errors import ResNetV2Error

    with pytest.raises(ResNetV2Error, match="not an HDF5"):
        read_keras_weights(not_h5)
    with pytest.raises(FileNotFoundError):
        read_keras_weights(tmp_path / "missing.h5")
