"""Weight transfer PyTorch ↔ Keras: outputs equal within 1e-4 in inference mode."""

import numpy as np
import pytest

import resnetv2
from resnetv2.errors import SpecError
from resnetv2.keras import create_model
from resnetv2.keras.convert import keras_to_torch, torch_to_keras

keras = pytest.importorskip("keras")

# Small nets covering every unit and stem variant the builder supports.
CASES = [
    ("basic", 8, {"block": "basic"}),
    ("bottleneck first_1x1", 11, {}),
    ("bottleneck first_3x3", 11, {"stride_at": "first_3x3"}),
    ("bottleneck last_unit", 20, {"stride_at": "last_unit"}),
    ("basic last_unit", 14, {"block": "basic", "stride_at": "last_unit"}),
    ("raw shortcut, all biases", 11, {"shortcut_input": "raw", "conv_bias": "all"}),
    ("keras biases", 11, {"conv_bias": "keras"}),
    ("seed (dense head, bn stem)", "seed", {"depth": 11}),
    ("group norm", 11, {"norm": "group", "norm_groups": 4}),
    ("no final norm", 8, {"block": "basic", "final_norm": False}),
    ("timm stem + conv1x1 classifier", 10, {"layout": "imagenet", "classifier": "conv1x1"}),
    ("keras stem", 14, {"layout": "imagenet", "stem_type": "conv7x7_zeropad_maxpool"}),
    ("grey input, 3 classes", 8, {"block": "basic", "in_channels": 1, "num_classes": 3}),
]


@pytest.mark.parametrize(("label", "model", "options"), CASES, ids=[c[0] for c in CASES])
def test_transfer_both_ways(label, model, options, helpers):
    torch_model = resnetv2.create_model(model, width_multiplier=0.5, **options)
    torch_model = helpers.randomize_torch(torch_model).eval()
    spec = torch_model.spec
    # Odd, non-square sizes exercise padding; ImageNet stems need more pixels.
    size = (37, 30) if spec.stem_type.startswith("conv7x7") else (13, 10)
    x = np.random.RandomState(0).randn(2, *size, spec.in_channels).astype("float32")
    expected = helpers.torch_out(torch_model, x)
    assert np.abs(expected).max() > 0.1  # random weights make a wrong mapping visible

    keras_model = torch_to_keras(torch_model, input_shape=(*size, spec.in_channels))
    np.testing.assert_allclose(helpers.keras_out(keras_model, x), expected, atol=1e-4)

    # Keras -> PyTorch: randomise the Keras side and carry it back.
    helpers.randomize_keras(keras_model, seed=1)
    back = keras_to_torch(keras_model).eval()
    np.testing.assert_allclose(
        helpers.torch_out(back, x), helpers.keras_out(keras_model, x), atol=1e-4
    )
    assert not np.allclose(helpers.torch_out(back, x), expected, atol=1e-3)


def test_even_input_with_strided_convs_matches(helpers):
    # Keras' padding="same" is asymmetric for stride 2 on even sizes; ours must not be.
    torch_model = helpers.randomize_torch(resnetv2.create_model("resnetv2_18", num_classes=4))
    torch_model.eval()
    x = np.random.RandomState(2).randn(1, 64, 64, 3).astype("float32")
    keras_model = torch_to_keras(torch_model, input_shape=(64, 64, 3))
    np.testing.assert_allclose(
        helpers.keras_out(keras_model, x), helpers.torch_out(torch_model, x), atol=1e-4
    )


def test_mismatched_models_are_refused(helpers):
    torch_model = resnetv2.create_model(11)
    with pytest.raises(SpecError, match="shape mismatch|no layer|variables"):
        torch_to_keras(torch_model, create_model(11, num_classes=5))
    with pytest.raises(SpecError, match="no weights for layer|shape mismatch"):
        keras_to_torch(create_model(20), resnetv2.create_model(11))
    loaded_like = keras.Model.from_config(create_model(8, block="basic").get_config())
    with pytest.raises(SpecError, match="spec="):
        keras_to_torch(loaded_like)
