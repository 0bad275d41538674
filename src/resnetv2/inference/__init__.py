"""Inference engines: run a model's forward pass as fast as this machine allows.

The predictor (:class:`resnetv2.predict.Predictor`) and ``resnetv2 evaluate`` hand a
preprocessed float ``[N, C, H, W]`` batch to a *runner* and get float32 logits back; which
engine computes them is chosen once:

* :mod:`~resnetv2.inference.engines` — engine names, what is installed, the ``auto`` rule;
* :mod:`~resnetv2.inference.cache` — the ONNX export cache, keyed by the weights' checksum,
  in the user's cache folder;
* :mod:`~resnetv2.inference.runner` — :func:`make_runner`, the torch and onnxruntime runners.

See docs/inference.md for the agreement contract and the measured speeds.
"""

from resnetv2.inference.cache import cache_root, cached_onnx, weights_checksum
from resnetv2.inference.engines import (
    ENGINE_ENV,
    ENGINES,
    PRECISIONS,
    EngineUnavailableError,
    onnxruntime_available,
    resolve_engine,
)
from resnetv2.inference.runner import OnnxRuntimeRunner, TorchRunner, make_runner

__all__ = [
    "ENGINES",
    "ENGINE_ENV",
    "PRECISIONS",
    "EngineUnavailableError",
    "OnnxRuntimeRunner",
    "TorchRunner",
    "cache_root",
    "cached_onnx",
    "make_runner",
    "onnxruntime_available",
    "resolve_engine",
    "weights_checksum",
]
