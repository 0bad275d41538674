"""The Keras twin's structure: counts, names, input shapes, backbone and appended stages."""

import numpy as np
import pytest
import torch

import resnetv2
from resnetv2.errors import SpecError
from resnetv2.keras import create_model, residual_stages

keras = pytest.importorskip("keras")

# docs/references.md, seed tutorial table: depth -> (count_params incl. BN stats, trainable).
SEED_COUNTS = {
    11: (1_445_706, 1_441_162),
    20: (2_536_714, 2_528_714),
    56: (6_900_746, 6_878_922),
    110: (13_446_794, 13_404_234),
}


@pytest.mark.parametrize("depth", sorted(SEED_COUNTS))
def test_seed_counts_equal_the_tutorial(depth, helpers):
    model = create_model("seed", depth=depth)
    total, trainable = SEED_COUNTS[depth]
    assert model.count_params() == total
    assert helpers.keras_trainable(model) == trainable
    assert tuple(model.input.shape) == (None, 32, 32, 3)
    assert tuple(model.output.shape) == (None, 10)


def test_seed_works_at_other_input_sizes():
    # Global average pooling replaces the tutorial's AveragePooling2D(8): same count, any size.
    model = create_model("seed", depth=11, input_shape=(48, 40, 3))
    assert model.count_params() == SEED_COUNTS[11][0]
    out = model(np.zeros((2, 48, 40, 3), "float32"), training=False)
    assert tuple(out.shape) == (2, 10)


SPECS = [
    (8, {"block": "basic"}),
    (11, {}),
    (20, {"num_classes": 100}),
    (29, {"stride_at": "first_3x3", "conv_bias": "all"}),
    (11, {"shortcut_input": "raw", "conv_bias": "keras", "head": "dense"}),
    ("resnetv2_18", {}),
    ("resnetv2_50", {"num_classes": 10}),
    (11, {"norm": "group", "norm_groups": 8}),
    (11, {"final_norm": False, "dropout": 0.2, "drop_path_rate": 0.1}),
    (14, {"layout": "imagenet", "width_multiplier": 0.25, "stem_type": "conv7x7_maxpool"}),
]


@pytest.mark.parametrize(("model", "options"), SPECS)
def test_counts_equal_pytorch(model, options, helpers):
    torch_model = resnetv2.create_model(model, **options)
    keras_model = create_model(model, **options)
    params, params_and_stats = helpers.torch_param_counts(torch_model)
    assert helpers.keras_trainable(keras_model) == params
    assert keras_model.count_params() == params_and_stats
    assert helpers.keras_trainable(keras_model) == resnetv2.count_params(torch_model.spec)


def test_keras_resnet50v2_count_equals_keras_applications(helpers):
    ours = create_model("keras_resnet50v2")
    theirs = keras.applications.ResNet50V2(weights=None)
    assert ours.count_params() == theirs.count_params() == 25_613_800
    assert helpers.keras_trainable(ours) == 25_568_360
    assert tuple(ours.input.shape) == (None, 224, 224, 3)


@pytest.mark.parametrize(
    ("preset", "total", "trainable"),
    [("keras_resnet101v2", 44_675_560, 44_577_896), ("keras_resnet152v2", 60_380_648, 60_236_904)],
)
def test_keras_resnet101_152_counts(preset, total, trainable, helpers):
    model = create_model(preset)
    assert model.count_params() == total
    assert helpers.keras_trainable(model) == trainable


def test_layer_names_are_deterministic_and_follow_pytorch():
    a = [layer.name for layer in create_model(11).layers]
    b = [layer.name for layer in create_model(11).layers]
    assert a == b
    torch_names = {
        name.replace(".", "_")
        for name, m in resnetv2.create_model(11).named_modules()
        if any(True for _ in m.parameters(recurse=False))
    }
    weighted = {layer.name for layer in create_model(11).layers if layer.weights}
    assert weighted == torch_names
    assert "stages_1_blocks_0_downsample_conv" in weighted


def test_spec_argument_and_default_input_shapes():
    spec = resnetv2.make_spec(20, num_classes=7)
    model = create_model(spec)
    assert tuple(model.output.shape) == (None, 7)
    assert tuple(model.input.shape) == (None, 32, 32, 3)
    assert tuple(create_model(spec, num_classes=3).output.shape) == (None, 3)
    imagenet = create_model("resnetv2_18", num_classes=5)
    assert tuple(imagenet.input.shape) == (None, 224, 224, 3)
    anysize = create_model(8, block="basic", input_shape=(None, None, 3))
    assert tuple(anysize(np.zeros((1, 20, 12, 3), "float32")).shape) == (1, 10)


def test_backbone_modes(helpers):
    features = create_model(20, include_top=False)
    assert tuple(features.output.shape) == (None, 8, 8, 64)
    pooled = create_model(20, include_top=False, pooling="avg")
    assert tuple(pooled.output.shape) == (None, 64)
    assert not any(layer.name == "head_fc" for layer in pooled.layers)
    # num_classes=0 mirrors the PyTorch model: pooled features, same outputs.
    torch_model = helpers.randomize_torch(resnetv2.create_model(20, num_classes=0)).eval()
    from resnetv2.keras.convert import torch_to_keras

    keras_model = torch_to_keras(torch_model)
    x = np.random.RandomState(0).randn(2, 32, 32, 3).astype("float32")
    out = helpers.keras_out(keras_model, x)
    assert out.shape == (2, 64)
    np.testing.assert_allclose(out, helpers.torch_out(torch_model, x), atol=1e-4)


def test_residual_stages_on_a_user_tensor(helpers):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(24, 3, padding="same", name="my_stem")(inputs)
    x = residual_stages(x, 11, name="body")
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, name="my_head")(x)
    model = keras.Model(inputs, outputs)
    assert tuple(model.output.shape) == (None, 4)
    # The appended stages equal PyTorch's ResidualStages on 24 input channels.
    torch_stages = resnetv2.ResidualStages(24, 11)
    body = [layer for layer in model.layers if layer.name.startswith("body_")]
    assert sum(int(np.prod(w.shape)) for layer in body for w in layer.trainable_weights) == sum(
        p.numel() for p in torch_stages.parameters()
    )
    assert body[0].name.startswith("body_stages_0_blocks_0")
    # Twice in one model: the prefix keeps names unique.
    y = residual_stages(inputs, units=[1], widths=[8], strides=[1], block="bottleneck", name="a")
    y = residual_stages(y, units=[1], widths=[8], strides=[2], block="bottleneck", name="b")
    assert tuple(keras.Model(inputs, y).output.shape) == (None, 8, 8, 32)


def test_drop_path_and_dropout_are_identity_at_inference(helpers):
    torch_model = resnetv2.create_model(11, drop_path_rate=0.5, dropout=0.3)
    torch_model = helpers.randomize_torch(torch_model).eval()
    from resnetv2.keras.convert import torch_to_keras

    keras_model = torch_to_keras(torch_model)
    assert any(layer.name.endswith("drop_path") for layer in keras_model.layers)
    x = np.random.RandomState(1).randn(2, 32, 32, 3).astype("float32")
    np.testing.assert_allclose(
        helpers.keras_out(keras_model, x), helpers.torch_out(torch_model, x), atol=1e-4
    )
    # Training mode drops whole residual branches per sample, so outputs differ from eval.
    train_out = keras.ops.convert_to_numpy(keras_model(x, training=True))
    assert not np.allclose(train_out, helpers.keras_out(keras_model, x), atol=1e-3)


def test_zero_init_last_and_initialisation():
    model = create_model(11, zero_init_last=True)
    conv3 = model.get_layer("stages_0_blocks_0_conv3")
    assert not np.any(keras.ops.convert_to_numpy(conv3.kernel))
    conv1 = keras.ops.convert_to_numpy(model.get_layer("stages_0_blocks_0_conv1").kernel)
    # He et al. 2015 fan-out init like the PyTorch twin: std sqrt(2 / (1*1*16)).
    assert conv1.std() == pytest.approx((2 / 16) ** 0.5, rel=0.3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": (32, 32)}, "input_shape"),
        ({"input_shape": (0, 32, 3)}, "positive"),
        ({"pooling": "avg"}, "include_top=False"),
        ({"include_top": False, "pooling": "mean"}, "pooling must be"),
        ({"include_top": "no"}, "include_top"),
        ({"bn_momentum": 1.5}, "bn_momentum"),
        ({"stride_at": "middle"}, "stride_at"),
        ({"not_an_option": 1}, "unknown option"),
    ],
)
def test_clear_errors(kwargs, message):
    with pytest.raises(SpecError, match=message):
        create_model(11, **kwargs)


def test_core_import_does_not_import_keras():
    import subprocess
    import sys

    code = "import sys, resnetv2; resnetv2.make_spec(20); print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_kernel_regularizer_adds_l2_losses():
    model = create_model("seed", depth=11, kernel_regularizer=1e-4)
    model(np.zeros((1, 32, 32, 3), "float32"))
    assert len(model.losses) == sum(
        1 for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
    )


def test_torch_and_keras_models_share_one_spec():
    spec = resnetv2.make_spec("seed", depth=20)
    assert create_model(spec)._resnetv2_spec == spec == resnetv2.create_model(spec).spec
    assert torch.is_tensor(next(resnetv2.create_model(spec).parameters()))
