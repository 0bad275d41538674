"""Optimiser parameter groups, EMA, early stopping, CSV log and the NaN guard."""

import csv
import math

import pytest
import torch

from resnetv2.config import EarlyStoppingConfig, OptimConfig
from resnetv2.engine.callbacks import (
    CSVLogger,
    EarlyStopping,
    NonFiniteLossError,
    check_finite_loss,
)
from resnetv2.engine.ema import ModelEMA
from resnetv2.engine.optim import build_optimizer, param_groups
from resnetv2.nn import create_model


def tiny():
    return create_model(8, widths=[4, 8, 8], num_classes=3)


def test_no_weight_decay_on_norm_and_bias_parameters():
    model = create_model(8, widths=[4, 8, 8], num_classes=3, conv_bias="all")
    decay, no_decay = param_groups(model, 5e-4)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    undecayed = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert all(n.endswith("bias") or "norm" in n for n in undecayed)
    assert all(n.endswith("weight") and "norm" not in n for n in decayed)
    assert "head.fc.weight" in decayed and "head.fc.bias" in undecayed
    assert len(decayed) + len(undecayed) == len(list(model.parameters()))


@pytest.mark.parametrize(
    ("config", "cls"),
    [
        (OptimConfig(name="sgd", nesterov=True), torch.optim.SGD),
        (OptimConfig(name="adamw", lr=1e-3), torch.optim.AdamW),
        (OptimConfig(name="adam", lr=1e-3, amsgrad=True), torch.optim.Adam),
    ],
)
def test_build_optimizer(config, cls):
    optimizer = build_optimizer(tiny(), config)
    assert type(optimizer) is cls
    if config.name == "sgd":
        assert optimizer.defaults["nesterov"] is True
    if config.amsgrad:
        assert optimizer.defaults["amsgrad"] is True


def test_ema_averages_weights_and_copies_integer_buffers():
    model = tiny()
    ema = ModelEMA(model, decay=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.stem.conv.weight.grad = None
    model.get_submodule("norm").num_batches_tracked.fill_(7)
    before = ema.module.stem.conv.weight.clone()
    ema.update(model)
    decay = min(0.5, 2 / 11)
    expected = decay * before + (1 - decay) * model.stem.conv.weight
    assert torch.allclose(ema.module.stem.conv.weight, expected)
    assert int(ema.module.get_submodule("norm").num_batches_tracked) == 7
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_early_stopping_waits_patience_epochs_without_improvement():
    stopper = EarlyStopping(EarlyStoppingConfig(monitor="val_acc", patience=2, min_delta=0.01))
    assert not stopper.step({"val_acc": 0.5})
    assert not stopper.step({"val_acc": 0.505})  # within min_delta: no improvement (wait 1)
    assert not stopper.step({"val_acc": 0.6})  # improvement resets
    assert not stopper.step({"val_acc": 0.6})
    assert stopper.step({"val_acc": 0.6})


def test_nan_guard_message_says_what_to_do():
    check_finite_loss(1.0, 1, 1, 0.1)
    with pytest.raises(NonFiniteLossError, match="Lower the learning rate"):
        check_finite_loss(math.nan, 1, 5, 0.1)
    with pytest.raises(NonFiniteLossError):
        check_finite_loss(math.inf, 1, 5, 0.1)


def test_csv_log_has_the_contract_columns(tmp_path):
    CSVLogger(tmp_path / "metrics.csv").write_all(
        [{"epoch": 1, "train_loss": 1.0, "val_acc": 0.5, "extra": 3}]
    )
    rows = list(csv.DictReader((tmp_path / "metrics.csv").read_text().splitlines()))
    assert list(rows[0]) == [
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "val_top5",
        "lr",
        "seconds",
        "elapsed",
    ]
    assert (
        rows[0]["epoch"] == "1"
        and rows[0]["val_acc"] == "0.5"
        and rows[0]["train_loss"] == "1.0"
        and rows[0]["lr"] == ""
    )


def test_norm_bias_lr_scale_speeds_up_the_undecayed_group_only():
    # airbench / Page's ResNet-9: BatchNorm biases at 64x the learning rate, no weight decay.
    from resnetv2.config import ScheduleConfig
    from resnetv2.engine.schedules import build_lr_controller

    model = create_model(8, widths=[4, 8, 8], num_classes=3, conv_bias="all")
    optimizer = build_optimizer(model, OptimConfig(lr=0.1, norm_bias_lr_scale=64.0))
    decay, fast = optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(n.endswith("bias") or "norm" in n for n in map(names.get, map(id, fast["params"])))
    assert fast["weight_decay"] == 0.0 and decay["weight_decay"] == 5e-4
    assert (decay["lr"], fast["lr"]) == (pytest.approx(0.1), pytest.approx(6.4))
    # the schedule keeps the ratio at every step
    lr = build_lr_controller(ScheduleConfig(name="linear"), 0.1, 2, 5)
    lr.apply(optimizer, 5)
    assert (decay["lr"], fast["lr"]) == (pytest.approx(0.05), pytest.approx(3.2))
    # decay_norm_and_bias: the scaled group is decayed too; at scale 1 it is one group again
    both = param_groups(model, 5e-4, decay_all=True, norm_bias_lr_scale=64.0)
    assert [(g["weight_decay"], g["lr_scale"]) for g in both] == [(5e-4, 1.0), (5e-4, 64.0)]
    assert len(param_groups(model, 5e-4, decay_all=True)) == 1


def test_norm_bias_lr_scale_flag_and_range(tmp_path, capsys):
    from resnetv2.cli import main
    from resnetv2.config import ConfigError, apply_overrides, load_recipe

    with pytest.raises(ConfigError, match="optim.norm_bias_lr_scale"):
        apply_overrides(load_recipe("digits"), {"optim.norm_bias_lr_scale": 0.0})
    assert main(["train", "--norm-bias-lr-scale", "-1", "--out", str(tmp_path / "r")]) == 2
    assert "(optim.norm_bias_lr_scale) must be in (0, 10000]" in capsys.readouterr().err


def test_lookahead_pulls_weights_and_bn_statistics_back_every_k_steps():
    from resnetv2.engine.ema import Lookahead

    model = tiny()
    norm = model.get_submodule("norm")
    start = {k: v.clone() for k, v in model.state_dict().items()}
    look = Lookahead(model, k=3, alpha=0.25)
    for step in range(1, 4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
            norm.running_mean.add_(2.0)
            norm.num_batches_tracked.fill_(10 + step)
        fast = {k: v.clone() for k, v in model.state_dict().items()}
        look.update(model)
        if step < 3:  # between pull-backs the model trains on freely
            assert all(torch.equal(model.state_dict()[k], fast[k]) for k in fast)
    # slow += alpha * (fast - slow), then fast = slow: weights and running statistics alike
    w = "stem.conv.weight"
    assert torch.allclose(look.module.state_dict()[w], start[w] + 0.25 * 3.0)
    assert torch.allclose(model.state_dict()[w], start[w] + 0.25 * 3.0)
    assert torch.allclose(norm.running_mean, start["norm.running_mean"] + 0.25 * 6.0)
    assert int(norm.num_batches_tracked) == 13
    assert int(look.module.get_submodule("norm").num_batches_tracked) == 13
    assert look.state_dict()["updates"] == 3


def test_bn_momentum_reaches_every_batchnorm():
    from resnetv2.engine.model_setup import set_bn_momentum

    model = tiny()
    set_bn_momentum(model, 0.4)
    momenta = {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.4}
    set_bn_momentum(model, None)  # null keeps what is there
    assert {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.4}


def test_conflicting_options_and_bad_ranges_are_refused():
    from resnetv2.config import ConfigError, apply_overrides, load_recipe

    base = load_recipe("digits")
    for bad, key in (
        ({"train.ema": True, "train.lookahead": True}, "choose one"),
        ({"train.lookahead_steps": 0}, "train.lookahead_steps"),
        ({"train.lookahead_alpha": 1.5}, "train.lookahead_alpha"),
        ({"train.bn_momentum": 0.0}, "train.bn_momentum"),
        ({"model.whiten_stem": "frozen", "model.init_weights": "w.safetensors"}, "whiten_stem"),
    ):
        with pytest.raises(ConfigError, match=key):
            apply_overrides(base, bad)


def test_ema_and_lookahead_states_do_not_load_into_each_other():
    from resnetv2.engine.ema import Lookahead
    from resnetv2.errors import ResNetV2Error

    model = tiny()
    ema, look = ModelEMA(model), Lookahead(model)
    assert "kind" not in ema.state_dict()  # EMA checkpoints keep their earlier format
    Lookahead(model).load_state_dict(look.state_dict())
    ModelEMA(model).load_state_dict(ema.state_dict())
    with pytest.raises(ResNetV2Error, match="holds lookahead weights but this run asks for ema"):
        ModelEMA(model).load_state_dict(look.state_dict())
    with pytest.raises(ResNetV2Error, match="holds ema weights but this run asks for lookahead"):
        Lookahead(model).load_state_dict(ema.state_dict())
