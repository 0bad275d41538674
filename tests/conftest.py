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
