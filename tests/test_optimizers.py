"""Optimisers come from one registry (``resnetv2.optimizers.OPTIMIZERS``): the config's
``optim.name`` values, the CLI's ``--optimizer`` choices, the option rules, the builder and
the memory estimate all read it, so an optimiser registered there is usable everywhere."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from resnetv2.cli import build_parser
from resnetv2.config import OptimConfig, config_from_dict
from resnetv2.config.sections import ConfigError
from resnetv2.engine.optim import build_optimizer
from resnetv2.memory import OPTIMIZER_STATE, estimate_training_memory
from resnetv2.nn import create_model
from resnetv2.optimizers import OPTIMIZERS, Optimizer, takes, taking
from resnetv2.options import make_spec


def _config(**optim) -> dict:
    return {"model": {"depth": 8}, "optim": optim}


def _parse(*flags: str):
    return build_parser("train").parse_args(["train", *flags])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_entry_is_a_torch_class_with_config_options_and_its_true_state(name):
    """The entry's class exists, its options are config fields, and its ``state_per_param``
    is what the built optimiser really keeps after a step (parameter-sized buffers)."""
    entry = OPTIMIZERS[name]
    fields = {f.name for f in dataclasses.fields(OptimConfig)}
    assert set(entry.options) <= fields
    spec = make_spec(8, widths=[4, 8, 8], num_classes=3)
    model = create_model(spec)
    optimizer = build_optimizer(model, OptimConfig(name=name, lr=1e-3))
    assert type(optimizer) is getattr(torch.optim, entry.torch_class)
    F.cross_entropy(model(torch.randn(2, 3, 8, 8)), torch.tensor([0, 1])).backward()
    optimizer.step()
    for param in model.parameters():
        state = optimizer.state[param].values()
        full = [t for t in state if torch.is_tensor(t) and t.shape == param.shape]
        assert len(full) == entry.state_per_param == OPTIMIZER_STATE[name]
    config = config_from_dict(_config(name=name))
    assert config.optim.name == name and _parse("--optimizer", name).cfg__optim__name == name


def test_the_cli_offers_exactly_the_registry_keys():
    train = build_parser("train").commands["train"]
    choices = next(a.choices for a in train._actions if a.dest == "cfg__optim__name")
    assert tuple(choices) == tuple(OPTIMIZERS) == ("sgd", "adamw", "adam")


def test_a_mistyped_optimizer_is_refused_naming_the_closest():
    with pytest.raises(ConfigError, match=r"optim.name must be one of sgd, adamw, adam; "):
        config_from_dict(_config(name="lion"))
    with pytest.raises(ConfigError, match=r"did you mean 'adamw'\?"):
        config_from_dict(_config(name="adamww"))


def test_the_option_rules_follow_the_registry():
    assert takes("sgd", "nesterov") and not takes("adam", "nesterov")
    assert not takes("nope", "momentum")
    assert taking("amsgrad") == ["adam", "adamw"]
    with pytest.raises(ConfigError, match="optim.amsgrad needs adam or adamw"):
        config_from_dict(_config(name="sgd", amsgrad=True))
    with pytest.raises(ConfigError, match="nesterov needs optim.name sgd with momentum > 0"):
        config_from_dict(_config(name="adamw", nesterov=True))


def test_a_registered_optimizer_is_valid_buildable_and_counted(monkeypatch):
    """Registering a toy optimiser is the whole change: the config and ``--optimizer`` accept
    it, ``build_optimizer`` builds it with its options, the option rules and the memory
    estimate count it; unregistered, it is refused again."""
    monkeypatch.setitem(OPTIMIZERS, "adagrad", Optimizer("Adagrad", ("eps",), state_per_param=1))
    config = config_from_dict(_config(name="adagrad", lr=0.01, eps=1e-6))
    assert config.optim.name == "adagrad"
    assert _parse("--optimizer", "adagrad").cfg__optim__name == "adagrad"
    optimizer = build_optimizer(create_model(8, widths=[4, 8, 8], num_classes=3), config.optim)
    assert type(optimizer) is torch.optim.Adagrad and optimizer.defaults["eps"] == 1e-6
    with pytest.raises(ConfigError, match="nesterov needs optim.name sgd"):
        config_from_dict(_config(name="adagrad", nesterov=True))

    spec = make_spec(20)
    estimate = estimate_training_memory(spec, batch_size=2, input_size=8, optimizer="adagrad")
    assert estimate.optimizer_bytes == estimate.param_bytes
    assert OPTIMIZER_STATE["adagrad"] == 1 and "adagrad" in list(OPTIMIZER_STATE)

    monkeypatch.undo()
    with pytest.raises(ConfigError, match="optim.name must be one of"):
        config_from_dict(_config(name="adagrad"))
    assert "adagrad" not in OPTIMIZER_STATE


def test_the_memory_estimate_keeps_its_stateless_names():
    assert dict(OPTIMIZER_STATE) == {
        "sgd": 1,
        "adamw": 2,
        "adam": 2,
        "sgd_nomomentum": 0,
        "none": 0,
    }
