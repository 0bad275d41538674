"""The line that opens a run's log: counts read as English ("1 epoch of 1 step")."""

import logging
import types

import pytest
import torch

from resnetv2.engine.setup import log_run_start


@pytest.mark.parametrize(
    ("epochs", "steps", "expected"),
    [
        (1, 1, "1 epoch of 1 step on"),
        (20, 23, "20 epochs of 23 steps on"),
        (2, 1, "2 epochs of 1 step on"),
    ],
)
def test_run_start_counts_are_singular_or_plural(caplog, epochs, steps, expected):
    model = torch.nn.Linear(2, 2)
    parts = types.SimpleNamespace(
        config=types.SimpleNamespace(
            name="digits", train=types.SimpleNamespace(epochs=epochs, time=None)
        ),
        spec=types.SimpleNamespace(depth=8, block="basic"),
        data=types.SimpleNamespace(num_train=10, num_val=5, source="digits"),
        ctx=types.SimpleNamespace(enabled=False, world_size=1),
        model=model,
        num_params=6,
        steps_per_epoch=steps,
        device="cpu",
    )
    log = logging.getLogger("test-setup-log")
    with caplog.at_level(logging.INFO, logger="test-setup-log"):
        log_run_start(parts, run_dir="runs/x", log=log)
    (message,) = caplog.messages
    assert expected in message
