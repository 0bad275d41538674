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
