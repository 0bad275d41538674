"""Shared test settings: small thread counts keep the suite fast on 2-core CI machines."""

import os
import tempfile

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The decoded-image cache lives in the user's cache folder; tests (and the CLI processes
# they start) use a private one instead of the developer's ~/.cache.
os.environ.setdefault(
    "RESNETV2_CACHE_DIR", os.path.join(tempfile.mkdtemp(prefix="resnetv2-tests-"), "cache")
)
# Tests build many random models: pin eager torch as the default engine so each one is not
# exported to ONNX first (tests/inference and the engine CLI tests choose engines explicitly).
os.environ.setdefault("RESNETV2_ENGINE", "torch")


def _corner_model(head: str = "linear", global_pool: str = "avg"):
    """A depth-8 net (1 channel, 2 classes, 16×16 inputs) whose answer is known: every
    residual branch is zero, BN is the identity, the stem and the projections pass channel 0
    through, so the last feature map is the input subsampled 4×; class 1 weighs channel 0
    by +1 and class 0 by -1. An image whose only signal sits in one corner is class 1, and
    the evidence for it is in that corner and nowhere else."""
    import torch

    import resnetv2

    options = {"head_hidden": 4, "head_dropout": 0.0} if head == "dense" else {}
    model = resnetv2.create_model(
        8, num_classes=2, in_channels=1, stem_width=4, widths=[4, 4, 4], head=head, **options
    )
    if global_pool != "avg":
        model.reset_classifier(2, global_pool=global_pool)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
        model.stem.conv.weight[0, 0, 1, 1] = 1.0
        for stage in model.stages[1:]:
            stage.blocks[0].downsample.conv.weight[0, 0, 0, 0] = 1.0
        last = model.head.fc
        if head == "dense":
            model.head.hidden.weight[0, 0] = 1.0
            model.head.hidden_norm.running_var.fill_(1.0)
        last.weight[1, 0], last.weight[0, 0] = 1.0, -1.0
    model.metadata = {
        "class_names": ["blank", "corner"],
        "preprocessing": {"input_size": [16, 16], "in_channels": 1, "mean": [0.0], "std": [1.0]},
    }
    return model.eval()


def _corner_image(corner: str = "top-right", size: int = 16, block: int = 4):
    """uint8 ``[size, size]`` pixels: 0 everywhere but a bright ``block``² square in a
    corner (``top-right``, ``bottom-left``, …)."""
    import numpy as np

    pixels = np.zeros((size, size), dtype=np.uint8)
    rows = slice(0, block) if corner.startswith("top") else slice(size - block, size)
    cols = slice(size - block, size) if corner.endswith("right") else slice(0, block)
    pixels[rows, cols] = 255
    return pixels


@pytest.fixture
def corner():
    """``corner.model(head=..., global_pool=...)`` and ``corner.image(corner)``: a model and
    images with a known class activation map (see :func:`_corner_model`)."""
    import types

    return types.SimpleNamespace(model=_corner_model, image=_corner_image)


@pytest.fixture(autouse=True, scope="session")
def _isolated_export_cache(tmp_path_factory):
    """Exports made by tests go to a temporary cache, never the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RESNETV2_CACHE_DIR", str(tmp_path_factory.mktemp("export-cache")))
        yield


# Specs that reach every unit layout: each stride_at with both blocks, identity, projection
# and subsample shortcuts, every bias rule, CIFAR and ImageNet stems. The PyTorch and Keras
# builders are both held to resnetv2.spec.unit_convs on these (tests/nn, tests/keras).
UNIT_CONV_CASES = [
    (8, {"block": "basic"}),
    (11, {}),
    (29, {"stride_at": "first_3x3", "conv_bias": "all"}),
    (20, {"block": "basic", "stride_at": "last_unit", "conv_bias": "keras"}),
    (29, {"stride_at": "last_unit", "shortcut_input": "raw"}),
    (14, {"layout": "imagenet", "width_multiplier": 0.25, "stem_type": "conv7x7_maxpool"}),
    ("resnetv2_18", {"width_multiplier": 0.25}),
    ("resnetv2_50", {"width_multiplier": 0.125}),
    ("keras_resnet50v2", {"width_multiplier": 0.125}),
    ("seed", {"depth": 20}),
]


def pytest_generate_tests(metafunc):
    if "unit_conv_case" in metafunc.fixturenames:
        metafunc.parametrize("unit_conv_case", UNIT_CONV_CASES, ids=str)


@pytest.fixture
def unit_conv_cases():
    return UNIT_CONV_CASES
