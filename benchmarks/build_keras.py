"""Build time of the Keras twin (and the PyTorch model, for comparison), by depth.

What it measures: wall-clock seconds for ``resnetv2.keras.create_model(depth)`` — the Keras 3
functional model built layer by layer, weights allocated and initialised — and for
``resnetv2.create_model(depth)`` on the same machine, in one process, best of ``--repeats``
runs after one warm-up build. Also reports the Keras layer count and ``count_params()``.
The requirement it checks: a depth-1001 Keras model builds in at most 20 s (``--limit``;
exit code 1 when exceeded).

    KERAS_BACKEND=torch python benchmarks/build_keras.py
    KERAS_BACKEND=torch python benchmarks/build_keras.py --models 56 1001 keras_resnet152v2

Results and the machine they came from are recorded in docs/bench-keras.md.
The lead folds :func:`measure_keras_builds` into ``benchmarks/build.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

DEFAULT_MODELS = ("56", "164", "keras_resnet50v2", "1001")


def _parse_model(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _best_time(build, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = build()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure_keras_builds(models=DEFAULT_MODELS, repeats: int = 1) -> list[dict]:
    """One row per model: Keras/PyTorch build seconds, Keras layers and count_params."""
    import keras

    import resnetv2
    from resnetv2.keras import create_model

    create_model(8, block="basic")  # warm-up: first-use costs of Keras and torch
    resnetv2.create_model(8, block="basic")
    rows = []
    for text in models:
        model = _parse_model(str(text))
        keras_s, keras_model = _best_time(lambda m=model: create_model(m), repeats)
        torch_s, _ = _best_time(lambda m=model: resnetv2.create_model(m), repeats)
        rows.append(
            {
                "model": str(text),
                "depth": resnetv2.make_spec(model).depth,
                "keras_layers": len(keras_model.layers),
                "count_params": int(keras_model.count_params()),
                "keras_build_s": keras_s,
                "torch_build_s": torch_s,
            }
        )
        del keras_model
        keras.backend.clear_session()
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [
        f"{'model':<20} {'depth':>6} {'layers':>7} {'count_params':>14} {'keras s':>9} "
        f"{'torch s':>9}"
    ]
    for r in rows:
        lines.append(
            f"{r['model']:<20} {r['depth']:>6} {r['keras_layers']:>7} {r['count_params']:>14,} "
            f"{r['keras_build_s']:>9.2f} {r['torch_build_s']:>9.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--limit", type=float, default=20.0, help="seconds allowed for 1001")
    args = parser.parse_args(argv)

    import keras
    import torch

    rows = measure_keras_builds(args.models, args.repeats)
    print(
        f"python {platform.python_version()}, keras {keras.__version__} "
        f"({keras.backend.backend()} backend), torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(format_table(rows))
    slow = [r for r in rows if r["depth"] == 1001 and r["keras_build_s"] > args.limit]
    if slow:
        print(f"FAIL: depth 1001 took {slow[0]['keras_build_s']:.1f} s > {args.limit} s")
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "torch")
    sys.exit(main())
