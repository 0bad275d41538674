"""Stochastic depth (Huang et al. 2016): the linear schedule, the layer, and option flow."""

from __future__ import annotations

import argparse

import pytest
import torch

from resnetv2.cli.spec_args import add_spec_arguments, spec_from_args
from resnetv2.nn import create_model
from resnetv2.nn.layers import DropPath
from resnetv2.options import make_spec
from resnetv2.spec import iter_units

torch.set_num_threads(1)


@pytest.mark.parametrize("depth,rate", [(20, 0.2), (164, 0.5), (56, 0.0)])
def test_schedule_is_linear_from_zero_to_rate(depth, rate):
    rates = [u.drop_path for u in iter_units(make_spec(depth, drop_path_rate=rate))]
    n = len(rates)
    assert rates[0] == 0.0
    assert rates[-1] == pytest.approx(rate)
    for k, r in enumerate(rates):
        assert r == pytest.approx(rate * k / (n - 1))
    steps = [b - a for a, b in zip(rates, rates[1:])]
    assert max(steps) - min(steps) < 1e-12


def test_schedule_reaches_the_built_modules():
    model = create_model(20, drop_path_rate=0.4)
    units = [b for stage in model.stages for b in stage.blocks]
    # The first unit's rate is 0, so it gets no DropPath at all.
    assert isinstance(units[0].drop_path, torch.nn.Identity)
    built = [u.drop_path.rate for u in units[1:]]
    expected = [u.drop_path for u in iter_units(model.spec)][1:]
    assert built == pytest.approx(expected)
    assert built[-1] == pytest.approx(0.4)


def test_identity_in_eval_mode():
    layer = DropPath(0.7).eval()
    x = torch.randn(16, 4, 3, 3)
    assert layer(x) is x


def test_drops_whole_samples_with_the_right_expectation():
    torch.manual_seed(0)
    rate, n = 0.3, 4000
    layer = DropPath(rate).train()
    x = torch.ones(n, 2, 3, 3)
    y = layer(x)
    per_sample = y.flatten(1)
    # Each sample is either all zero or all 1 / keep: the whole branch goes, not pixels.
    kept = per_sample[:, 0] != 0
    torch.testing.assert_close(per_sample[kept], torch.full_like(per_sample[kept], 1 / (1 - rate)))
    assert torch.all(per_sample[~kept] == 0)
    assert kept.float().mean().item() == pytest.approx(1 - rate, abs=0.02)
    # Inverted scaling keeps the expectation: E[y] = x.
    assert y.mean().item() == pytest.approx(1.0, abs=0.05)


def test_train_mode_branch_is_dropped_per_sample_in_a_unit():
    torch.manual_seed(0)
    model = create_model(20, drop_path_rate=0.9).train()
    unit = model.stages[2].blocks[-1]  # rate 0.9: most samples skip the branch
    x = torch.randn(64, unit.conv1.in_channels, 4, 4)
    out = unit(x)
    identity = (out - x).flatten(1).abs().amax(1) == 0
    assert 0 < identity.sum() < 64


def _cli_spec(argv):
    parser = argparse.ArgumentParser()
    add_spec_arguments(parser)
    return spec_from_args(parser.parse_args(argv))


def test_options_flow_from_cli_through_spec_to_model():
    spec = _cli_spec(["--depth", "20", "--drop-path-rate", "0.25", "--dropout", "0.1"])
    assert spec.drop_path_rate == 0.25 and spec.dropout == 0.1
    assert spec.to_dict()["drop_path_rate"] == 0.25
    model = create_model(spec)
    assert model.head.drop.p == 0.1
    last = [b for stage in model.stages for b in stage.blocks][-1]
    assert last.drop_path.rate == pytest.approx(0.25)
    assert make_spec(20, drop_path_rate=0.25, dropout=0.1) == spec


def test_zero_rate_builds_no_drop_path():
    model = create_model(20)
    assert not any(isinstance(m, DropPath) for m in model.modules())
