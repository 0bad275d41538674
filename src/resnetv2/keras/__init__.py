"""Keras 3 twin of :mod:`resnetv2.nn`: the same spec built as a functional ``keras.Model``.

Optional: install with ``pip install 'resnetv2[keras]'``. ``import resnetv2`` never imports
this package. The code uses only ``keras.layers`` and built-in layers, so it runs on any
Keras 3 backend; CI tests it on the torch backend (``KERAS_BACKEND=torch``), which is also
the fallback here when ``KERAS_BACKEND`` is unset and the configured backend is missing.

>>> from resnetv2.keras import create_model
>>> model = create_model("seed")                  # the tutorial's ResNet-56, 32×32×3
>>> model = create_model(20, input_shape=(64, 64, 3))

Layer names are the PyTorch module names with ``.`` replaced by ``_`` (``stem_conv``,
``stages_0_blocks_1_conv2``, ``head_fc``), so weights move mechanically between the twins
(:mod:`resnetv2.keras.convert`).
"""

from __future__ import annotations

import os
import sys

from resnetv2.errors import ResNetV2Error


def _default_backend_to_torch() -> None:
    """Fall back to the torch backend when the configured one is not installed.

    Keras 3 defaults to TensorFlow (and writes that into ``~/.keras/keras.json`` on first
    import), which resnetv2 does not install; torch always is. An explicit ``KERAS_BACKEND``
    or an installed configured backend is respected.
    """
    import importlib.util
    import json

    if "keras" in sys.modules or "KERAS_BACKEND" in os.environ:
        return
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    backend = "tensorflow"
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            backend = json.load(f).get("backend", backend)
    except (OSError, ValueError, AttributeError):
        pass
    if importlib.util.find_spec(backend) is None:
        os.environ["KERAS_BACKEND"] = "torch"


_default_backend_to_torch()

try:
    import keras
except ImportError as exc:
    import importlib.util

    if importlib.util.find_spec("keras") is None:
        raise ResNetV2Error("the Keras twin needs Keras 3: pip install 'resnetv2[keras]'") from None
    # Keras is installed but its configured backend is not (tensorflow is its default).
    raise ResNetV2Error(
        f"Keras could not load its backend ({exc}); set KERAS_BACKEND=torch (the backend "
        "resnetv2 is tested with; torch is already installed) or install the configured one"
    ) from None
if not str(getattr(keras, "__version__", "0")).startswith("3."):
    raise ResNetV2Error(
        f"the Keras twin needs Keras 3, found keras {getattr(keras, '__version__', '?')}; "
        "install it with pip install 'resnetv2[keras]'"
    )

from resnetv2.keras.builder import build_spec, create_model, residual_stages  # noqa: E402
from resnetv2.keras.convert import (  # noqa: E402
    from_keras_applications,
    keras_to_torch,
    load_keras_applications_weights,
    torch_to_keras,
)
from resnetv2.keras.export import export_keras  # noqa: E402
from resnetv2.keras.summary import keras_summary  # noqa: E402

__all__ = [
    "build_spec",
    "create_model",
    "export_keras",
    "from_keras_applications",
    "keras_summary",
    "keras_to_torch",
    "load_keras_applications_weights",
    "residual_stages",
    "torch_to_keras",
]
