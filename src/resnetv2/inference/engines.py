"""Which engine runs a forward pass: names, availability, and the ``auto`` rule.

``auto`` picks the fastest engine that keeps the agreement contract on this machine:
onnxruntime (the weights exported once to ONNX by :mod:`resnetv2.export` and cached) when it
is installed and the model runs on the CPU, eager PyTorch otherwise. On the project's CPU
onnxruntime ran the CIFAR ResNet-56 at 2.3–6× eager fp32 and ``resnetv2_50`` at ~1.7–2.4×
(docs/benchmarks.md), with identical top-1 and probabilities within 1e-4, so it is the
default wherever it can run. bf16 is never chosen automatically: its agreement depends on
the weights and the data (see docs/inference.md), so it is an explicit ``precision="bf16"``.

The default engine can be pinned for a whole process with ``RESNETV2_ENGINE`` (a deployment
that must run eager PyTorch, or a test suite that should not export every model it builds).
"""

from __future__ import annotations

import importlib.util
import os

from resnetv2.errors import ResNetV2Error

ENGINES = ("auto", "torch", "onnxruntime")
PRECISIONS = ("fp32", "bf16")
ENGINE_ENV = "RESNETV2_ENGINE"
# onnxruntime runs the file; onnx and onnxscript are what torch's ONNX exporter needs.
ONNXRUNTIME_MODULES = ("onnxruntime", "onnx", "onnxscript")
ONNXRUNTIME_EXTRA = "pip install 'resnetv2[export]'"


class EngineUnavailableError(ResNetV2Error, ValueError):
    """The requested engine cannot run here (not installed, or not on this device)."""


def missing_modules(modules: tuple[str, ...] = ONNXRUNTIME_MODULES) -> list[str]:
    """The modules of ``modules`` that cannot be imported (found without importing them)."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def onnxruntime_available() -> bool:
    """True when onnxruntime and the ONNX exporter's packages are installed."""
    return not missing_modules()


def default_engine() -> str:
    """``RESNETV2_ENGINE`` when set (validated), else ``auto``."""
    value = os.environ.get(ENGINE_ENV, "").strip()
    if not value:
        return "auto"
    if value not in ENGINES:
        raise ResNetV2Error(f"{ENGINE_ENV}={value!r} is not one of {', '.join(ENGINES)}")
    return value


def check_choice(engine: str | None, precision: str = "fp32") -> tuple[str, str]:
    """Validate the names (``None`` → :func:`default_engine`); nothing is imported."""
    engine = default_engine() if engine is None else engine
    if engine not in ENGINES:
        raise ResNetV2Error(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if precision not in PRECISIONS:
        raise ResNetV2Error(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return engine, precision


def resolve_engine(engine: str | None, device_type: str = "cpu", precision: str = "fp32") -> str:
    """The concrete engine (``torch`` or ``onnxruntime``) that ``engine`` means here.

    ``auto`` → onnxruntime for fp32 on the CPU when it is installed, else torch. An explicit
    ``onnxruntime`` that is not installed, asked for another device or for bf16 raises
    :class:`EngineUnavailableError` with a one-line message saying what would work.
    """
    engine, precision = check_choice(engine, precision)
    if engine == "torch":
        return "torch"
    usable = device_type == "cpu" and precision == "fp32"
    if engine == "auto":
        return "onnxruntime" if usable and onnxruntime_available() else "torch"
    missing = missing_modules()
    if missing:
        raise EngineUnavailableError(
            f"engine onnxruntime needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: {ONNXRUNTIME_EXTRA} "
            "(or use --engine torch)"
        )
    if device_type != "cpu":
        raise EngineUnavailableError(
            f"engine onnxruntime runs on the CPU, not {device_type}; use --engine torch "
            "(or --device cpu)"
        )
    if precision != "fp32":
        raise EngineUnavailableError("engine onnxruntime runs fp32 only; bf16 needs --engine torch")
    return "onnxruntime"
