"""Model build time: resnetv2 vs pytorchcv vs timm, same architectures, one process.

Evidence: wall time of constructing (and initialising) the He et al. CIFAR bottleneck nets of
depth 1001 (111 units per stage) and 10,001 (1,111 units per stage) on CPU; each builder runs
``--repeats`` times, alternating builders within each repeat, and the median is reported.
Peers: pytorchcv ``get_preresnet_cifar(blocks=D, bottleneck=True)`` (the same architecture) and
timm ``ResNetV2(layers=[n, n, n], channels=(64, 128, 256), stem_chs=16)`` (the same units;
timm's stem is its 7×7 + max-pool, which does not change build time measurably).
Targets: ratio (ours / peer) ≤ 1.0, and depth 10,001 under 10 s. ``--keras`` adds the Keras
twin's build time for depth 1001 (target ≤ 20 s; see benchmarks/build_keras.py).

    python benchmarks/build.py [--depths 1001 10001] [--repeats 3] [--keras]
"""

from __future__ import annotations

import argparse
import gc
import time

from _common import environment, median, print_table


def build_ours(depth: int):
    from resnetv2 import create_model

    return create_model(depth, block="bottleneck")


def build_pytorchcv(depth: int):
    from pytorchcv.models.preresnet_cifar import get_preresnet_cifar

    return get_preresnet_cifar(num_classes=10, blocks=depth, bottleneck=True)


def build_timm(depth: int):
    from functools import partial

    from timm.layers import BatchNormAct2d, create_conv2d
    from timm.models.resnetv2 import ResNetV2

    n = (depth - 2) // 9
    return ResNetV2(
        layers=[n, n, n],
        channels=(64, 128, 256),
        stem_chs=16,
        num_classes=10,
        conv_layer=create_conv2d,
        norm_layer=partial(BatchNormAct2d),
    )


BUILDERS = {"resnetv2": build_ours, "pytorchcv": build_pytorchcv, "timm": build_timm}


def timed(fn, depth: int) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    model = fn(depth)
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    del model
    return seconds, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[1001, 10001])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keras", action="store_true", help="also time the Keras twin")
    args = parser.parse_args()
    print(environment())
    rows = []
    for depth in args.depths:
        times: dict[str, list[float]] = {name: [] for name in BUILDERS}
        params: dict[str, int] = {}
        for _ in range(args.repeats):
            for name, fn in BUILDERS.items():
                seconds, params[name] = timed(fn, depth)
                times[name].append(seconds)
        ours = median(times["resnetv2"])
        for name in BUILDERS:
            t = median(times[name])
            rows.append([depth, name, f"{params[name]:,}", f"{t:.2f}", f"{ours / t:.2f}"])
    print_table(["depth", "builder", "params", "median s", "ours / this"], rows)
    if args.keras:
        import os

        os.environ.setdefault("KERAS_BACKEND", "torch")
        from build_keras import format_table, measure_keras_builds

        print(format_table(measure_keras_builds(["1001"], repeats=args.repeats)))


if __name__ == "__main__":
    main()
