"""Keras twin tests run on the torch backend; it must be chosen before keras is imported."""

import os
import types

os.environ["KERAS_BACKEND"] = "torch"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":  # keras was imported earlier with another backend
    pytest.skip("the Keras twin tests need KERAS_BACKEND=torch", allow_module_level=True)


@torch.no_grad()
def randomize_torch(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights, biases and BN statistics at a scale that keeps outputs O(1).

    Default initialisation (zero biases, unit BN, zero-mean statistics) would let a wrong
    mapping of biases or statistics pass unnoticed; this makes every number matter.
    """
    gen = torch.Generator().manual_seed(seed)

    def rand(t, low, high):
        t.copy_(torch.rand(t.shape, generator=gen) * (high - low) + low)

    def randn(t, std):
        t.copy_(torch.randn(t.shape, generator=gen) * std)

    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            randn(module.weight, module.weight[0].numel() ** -0.5)
            if module.bias is not None:
                randn(module.bias, 0.1)
        elif isinstance(module, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm)):
            rand(module.weight, 0.5, 1.5)
            randn(module.bias, 0.3)
            if getattr(module, "running_mean", None) is not None:
                randn(module.running_mean, 0.3)
                rand(module.running_var, 0.5, 1.5)
    return model


def randomize_keras(model, seed: int = 0):
    """The same randomisation for a Keras model (keras.applications included)."""
    rng = np.random.RandomState(seed)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.GroupNormalization)):
            n = layer.gamma.shape[0]
            values = [rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n)]
            if isinstance(layer, keras.layers.BatchNormalization):
                values += [rng.normal(0, 0.3, n), rng.uniform(0.5, 1.5, n)]
            layer.set_weights(values)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            shape = tuple(layer.kernel.shape)
            values = [rng.normal(0, int(np.prod(shape[:-1])) ** -0.5, shape)]
            if layer.use_bias:
                values.append(rng.normal(0, 0.1, tuple(layer.bias.shape)))
            layer.set_weights(values)
    return model


def torch_out(model, x_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).contiguous()).numpy()


def keras_out(model, x_nhwc: np.ndarray) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(model(x_nhwc, training=False)))


def torch_param_counts(model) -> tuple[int, int]:
    """(parameters, parameters + BN running mean/var): Keras' trainable and total counts."""
    params = sum(p.numel() for p in model.parameters())
    stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    )
    return params, params + stats


def keras_trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def plain_keras(code: str, *args, cwd) -> dict:
    """Run ``code`` in a fresh Python on the torch backend without this checkout on its path
    (plain Keras, as a user without resnetv2 has it) and return the JSON of its last line."""
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["KERAS_BACKEND"] = "torch"
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)


@pytest.fixture
def helpers():
    """The helpers above, for test modules (tests/ is not a package)."""
    return types.SimpleNamespace(
        randomize_torch=randomize_torch,
        randomize_keras=randomize_keras,
        torch_out=torch_out,
        keras_out=keras_out,
        torch_param_counts=torch_param_counts,
        keras_trainable=keras_trainable,
        plain_keras=plain_keras,
    )


def pytest_collection_modifyitems(config, items):
    # Keras' torch backend calls np.array(tensor); torch's __array__ lacks numpy 2's copy=
    # keyword, which numpy reports on every conversion. Not ours to fix; keep output readable.
    here = os.path.dirname(__file__)
    mark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(mark)
