"""Helpers for the importer tests: random weights that make parity tests able to fail."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random convs/linears (fan-in scaled) and random BN affine *and* running statistics.

    Freshly built nets have running_mean 0 / running_var 1 and BN weight 1, under which a
    mis-mapped norm layer would go unnoticed; random values make every tensor matter while
    keeping activations O(1) so an absolute tolerance of 1e-4 is meaningful.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(
                    torch.randn(module.weight.shape, generator=g) / math.sqrt(fan_in)
                )
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.1)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.5)
                module.bias.copy_(torch.randn(c, generator=g) * 0.1)
                module.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    return model.eval()


def max_abs_diff(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        ya, yb = a.eval()(x), b.eval()(x)
    assert ya.shape == yb.shape
    return (ya - yb).abs().max().item()


@pytest.fixture(scope="session")
def timm_nets():
    """timm's resnetv2_18 and resnetv2_50 with random weights, built once."""
    import timm

    return {name: randomize(timm.create_model(name)) for name in ("resnetv2_18", "resnetv2_50")}


@pytest.fixture
def randomized():
    return randomize


@pytest.fixture
def output_diff():
    return max_abs_diff


@pytest.fixture(autouse=True)
def _few_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)
