"""Training state survives save -> file -> safe load exactly, and never needs unsafe pickle."""

import enum
import math
import random
from collections import OrderedDict, defaultdict

import numpy as np
import pytest
import torch
from torch import nn

from resnetv2.io import (
    CorruptWeightsError,
    UnsafeCheckpointError,
    load_state_file,
    save_state_file,
)


def assert_identical(restored, original, path="root"):
    """Same types, same structure, bitwise-equal contents (NaN == NaN, -0.0 != 0.0)."""
    assert type(restored) is type(original), f"{path}: {type(restored)} vs {type(original)}"
    if isinstance(original, torch.Tensor):
        assert restored.dtype == original.dtype and restored.shape == original.shape, path
        assert restored.requires_grad == original.requires_grad, path
        a, b = restored.detach().contiguous(), original.detach().contiguous()
        if a.numel():
            assert torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)), (
                path
            )
    elif isinstance(original, np.ndarray | np.generic):
        assert restored.dtype == original.dtype and restored.shape == original.shape, path
        assert np.asarray(restored).tobytes() == np.asarray(original).tobytes(), path
    elif isinstance(original, dict):
        assert list(restored) == list(original), path
        for key in original:
            assert type(next(k for k in restored if k == key)) is type(key), f"{path}: key {key!r}"
            assert_identical(restored[key], original[key], f"{path}.{key}")
    elif isinstance(original, list | tuple):
        assert len(restored) == len(original), path
        for i, (r, o) in enumerate(zip(restored, original)):
            assert_identical(r, o, f"{path}[{i}]")
    elif isinstance(original, float):
        assert math.copysign(1, restored) == math.copysign(1, original), path
        assert restored == original or (math.isnan(restored) and math.isnan(original)), path
    else:
        assert restored == original, path


def round_trip(obj, tmp_path):
    save_state_file(tmp_path / "state.pt", obj)
    return load_state_file(tmp_path / "state.pt")


def _train(model, optimizer, scheduler=None, steps=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(4, 3, generator=generator)).pow(2).sum().backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def test_scalars_containers_and_key_types(tmp_path):
    state = {
        "ints": {0: "zero", 1: "one", -5: None},
        "strs": {"0": 0, "a.b": [1, 2]},
        "mixed": {1: True, "1": False, (2, "x"): 3, 2.5: "f", None: "none", False: 0},
        "floats": [0.1, -0.0, float("nan"), float("inf"), -float("inf"), 1e308, 5e-324],
        "big": 2**200 + 1,
        "tuple": (1, (2, [3, (4,)]), ()),
        "bytes": b"\x00\xff raw",
        "ordered": OrderedDict([("b", 1), ("a", 2)]),
        "torch": [torch.Size([2, 3]), torch.float16, torch.device("cpu")],
        "empty": [{}, [], ""],
    }
    assert_identical(round_trip(state, tmp_path), state)


def test_tensors_of_every_kind(tmp_path):
    tensors = {
        "f32": torch.randn(3, 4),
        "f64": torch.randn(2, dtype=torch.float64),
        "bf16": torch.randn(5).to(torch.bfloat16),
        "f16": torch.randn(5).to(torch.float16),
        "u8": torch.get_rng_state(),
        "bool": torch.tensor([True, False, True]),
        "i64": torch.tensor(2**62),
        "c128": torch.randn(3, dtype=torch.complex128),
        "noncontig": torch.randn(4, 6)[:, ::2],
        "empty": torch.zeros(0, 5),
        "scalar": torch.tensor(7.5),
        "param": nn.Parameter(torch.randn(2)),
        "frozen": nn.Parameter(torch.randn(2), requires_grad=False),
        "grad": torch.randn(2, requires_grad=True),
    }
    restored = round_trip(tensors, tmp_path)
    assert_identical(restored, tensors)
    assert restored["param"].requires_grad and not restored["frozen"].requires_grad


def test_shared_tensor_is_restored_as_one_object(tmp_path):
    shared = torch.randn(3)
    restored = round_trip({"a": shared, "b": [shared]}, tmp_path)
    assert restored["a"] is restored["b"][0]


@pytest.mark.parametrize(
    "factory",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
        lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.8, 0.95), amsgrad=True),
    ],
    ids=["sgd", "adamw"],
)
def test_restored_optimizer_continues_identically(tmp_path, factory):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = factory(model.parameters())
    _train(model, optimizer, steps=3, seed=1)
    original = optimizer.state_dict()
    restored_state = round_trip({"optimizer": original}, tmp_path)["optimizer"]
    assert_identical(restored_state, original)

    twin = nn.Linear(3, 2)
    twin.load_state_dict(model.state_dict())
    twin_optimizer = factory(twin.parameters())
    twin_optimizer.load_state_dict(restored_state)
    _train(model, optimizer, steps=4, seed=2)
    _train(twin, twin_optimizer, steps=4, seed=2)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)


def _schedulers(optimizer):
    return {
        "step": torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5),
        "onecycle": torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=20),
        "sequential": torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            [
                torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=3),
                torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10),
            ],
            milestones=[3],
        ),
    }


@pytest.mark.parametrize("kind", ["step", "onecycle", "sequential"])
def test_lr_scheduler_state_round_trips_and_continues(tmp_path, kind):
    def make():
        model = nn.Linear(3, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        return model, optimizer, _schedulers(optimizer)[kind]

    model, optimizer, scheduler = make()
    _train(model, optimizer, scheduler, steps=5)
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    restored = round_trip(state, tmp_path)
    assert_identical(restored, state)

    _, twin_optimizer, twin_scheduler = make()
    twin_optimizer.load_state_dict(restored["optimizer"])
    twin_scheduler.load_state_dict(restored["scheduler"])
    for _ in range(6):
        optimizer.step(), scheduler.step()
        twin_optimizer.step(), twin_scheduler.step()
        assert scheduler.get_last_lr() == twin_scheduler.get_last_lr()


def test_rng_states_round_trip_and_reproduce_draws(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    generator = np.random.default_rng(4)
    generator.random(3)
    state = {
        "python": random.getstate(),
        "numpy_generator": generator.bit_generator.state,
        "torch": torch.get_rng_state(),
    }
    restored = round_trip(state, tmp_path)
    assert_identical(restored, state)
    assert isinstance(restored["python"], tuple) and isinstance(restored["python"][1], tuple)

    expected = (random.random(), generator.random(), torch.rand(1))
    random.setstate(restored["python"])
    twin = np.random.default_rng()
    twin.bit_generator.state = restored["numpy_generator"]
    torch.set_rng_state(restored["torch"])
    assert (random.random(), twin.random()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])


class _Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"a": [1, object()]}, "builtins.object"),
        ({"counts": defaultdict(int)}, "collections.defaultdict"),
        ({"colour": _Colour.RED}, "_Colour"),
        ({"arr": np.array([1.0])}, "numpy"),
        ({"fn": len}, "builtins.len"),
    ],
)
def test_values_the_safe_loader_could_not_rebuild_are_refused_before_writing(
    tmp_path, value, named
):
    with pytest.raises(TypeError, match=f"cannot store .*{named}"):
        save_state_file(tmp_path / "state.pt", value)
    assert list(tmp_path.iterdir()) == []


def test_a_state_file_with_code_in_it_is_refused_not_run(tmp_path):
    sentinel = tmp_path / "sentinel"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    torch.save({"step": 1, "payload": Payload()}, tmp_path / "state.pt")
    with pytest.raises(UnsafeCheckpointError):
        load_state_file(tmp_path / "state.pt")
    assert not sentinel.exists()


def test_a_damaged_state_file_is_a_typed_error(tmp_path):
    save_state_file(tmp_path / "state.pt", {"w": torch.zeros(1000)})
    raw = (tmp_path / "state.pt").read_bytes()
    (tmp_path / "state.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptWeightsError, match="truncated or damaged"):
        load_state_file(tmp_path / "state.pt")
