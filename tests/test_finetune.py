"""Fine-tuning helpers: new heads, frozen backbones (BN stays in eval), parameter groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnetv2 import create_model
from resnetv2.errors import ResNetV2Error
from resnetv2.finetune import is_frozen, prepare_finetune, trainable_parameter_names


def tiny(**options):
    torch.manual_seed(0)
    return create_model(8, num_classes=10, **options)


def test_freeze_backbone_trains_head_only_and_keeps_bn_in_eval():
    model = tiny()
    groups = prepare_finetune(model, 4, freeze="backbone")
    model.train()
    norms = [m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(not m.training and is_frozen(m) for m in norms)
    assert model.head.training  # the head itself follows train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    x = torch.randn(4, 3, 16, 16)
    loss = model(x).logsumexp(1).mean()
    loss.backward()
    # Only head parameters get gradients; BN running statistics did not move in train mode.
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {"head.fc.weight", "head.fc.bias"}
    assert trainable_parameter_names(model) == ["head.fc.weight", "head.fc.bias"]
    for key, value in before.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert len(groups) == 1 and groups[0]["name"] == "head"
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.head.parameters()}
    assert model.num_classes == 4 and model(x).shape == (4, 4)


def test_frozen_model_still_saves_with_the_same_keys(tmp_path):
    from resnetv2.loading import load_model, save_model

    model = tiny()
    keys = list(model.state_dict())
    prepare_finetune(model, 10, freeze="backbone")
    assert list(model.state_dict()) == keys
    path = save_model(model, tmp_path / "m.safetensors")
    again = load_model(path)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(again(x), model.eval()(x))


def test_freeze_none_with_lower_backbone_lr():
    model = tiny()
    groups = prepare_finetune(model, 3, freeze="none", backbone_lr_scale=0.1, lr=0.5)
    model.train()
    assert all(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    names = [g["name"] for g in groups]
    assert names == ["backbone", "head"]
    assert groups[0]["lr"] == pytest.approx(0.05) and groups[1]["lr"] == 0.5
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(model.parameters()))
    optimizer = torch.optim.SGD(groups, lr=0.5)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    optimizer.step()
    assert all(p.grad is not None for p in model.parameters())


def test_unfreezing_after_freeze():
    model = tiny()
    prepare_finetune(model, 3, freeze="backbone")
    prepare_finetune(model, None, freeze="none")
    model.train()
    assert all(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(p.requires_grad for p in model.parameters())


def test_dense_head_option():
    model = tiny()
    prepare_finetune(model, 5, head="dense", head_hidden=32)
    assert model.spec.head == "dense" and model.spec.head_hidden == 32
    assert model.head.hidden.out_features == 32
    assert model.eval()(torch.randn(2, 3, 16, 16)).shape == (2, 5)


def test_timm_style_conv_classifier_is_replaced():
    model = create_model("resnetv2_18", num_classes=10, units=[1, 1, 1, 1], widths=[8, 8, 8, 8])
    prepare_finetune(model, 3)
    assert isinstance(model.head.fc, nn.Conv2d) and model.head.fc.out_channels == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"freeze": "head"},
        {"freeze": "backbone", "backbone_lr_scale": 0.1},
        {"backbone_lr_scale": -1.0, "freeze": "none"},
        {"head": "mlp"},
    ],
)
def test_bad_options(kwargs):
    with pytest.raises(ResNetV2Error):
        prepare_finetune(tiny(), 3, **kwargs)
    with pytest.raises(ResNetV2Error):
        prepare_finetune(tiny(), 0)
