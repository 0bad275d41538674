import pytest
import torch
from torch import nn

from resnetv2 import create_model, list_presets, make_spec
from resnetv2.nn import ResidualStages, ResNetV2, spec_of

SMALL_INPUT = {"cifar": 16, "imagenet": 64}


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_trains_one_step_with_gradients_everywhere(name):
    spec = make_spec(name)
    if spec.depth > 200:  # preresnet1001: same code path as 164, checked for size elsewhere
        spec = make_spec(name, depth=20 if spec.block == "basic" else 29)
    model = create_model(spec, num_classes=5)
    size = 64 if spec.stem_type.startswith("conv7x7") else 16
    x = torch.randn(2, spec.in_channels, size, size)
    out = model(x)
    assert out.shape == (2, 5)
    out.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_uniform_interface():
    model = create_model(20, num_classes=7).eval()
    x = torch.randn(3, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (3, 64, 8, 8)
    assert model.forward_head(feats, pre_logits=True).shape == (3, 64)
    assert torch.equal(model.forward_head(feats), model(x))
    stages = model.forward_stages(x)
    assert [tuple(s.shape[1:]) for s in stages] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    # timm's numbering: the stem's feature first, then one per stage
    assert [f["reduction"] for f in model.feature_info] == [1, 1, 2, 4]
    assert [f["num_chs"] for f in model.feature_info] == [16, 16, 32, 64]
    assert model.feature_info.module_name() == ["stem.conv", "stages.0", "stages.1", "stages.2"]


def test_reset_classifier_changes_head_and_spec():
    model = create_model("resnetv2_18")
    model.reset_classifier(3)
    assert model.num_classes == 3 and model.spec.num_classes == 3
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 512)


def test_dense_head_pre_logits_and_any_input_size():
    model = create_model("seed", depth=11).eval()
    for size in (32, 48, 17):
        assert model(torch.randn(2, 3, size, size)).shape == (2, 10)
    feats = model.forward_features(torch.randn(2, 3, 32, 32))
    assert model.forward_head(feats, pre_logits=True).shape == (2, 512)


def test_weight_init_rules():
    torch.manual_seed(0)
    model = create_model(56)
    conv = model.stages[2].blocks[3].conv1
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.1)
    assert model.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.15)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.running_var == 1) and torch.all(m.running_mean == 0)
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_zero_init_last_makes_units_identities():
    model = create_model(29, zero_init_last=True)
    for stage in model.stages:
        for block in stage.blocks:
            assert not block.conv3.weight.any()


def test_group_norm_builds():
    model = create_model(20, norm="group", norm_groups=8)
    assert isinstance(model.stages[0].blocks[0].norm1, nn.GroupNorm)
    model(torch.randn(2, 3, 16, 16)).sum().backward()


def test_grad_checkpointing_matches_plain():
    torch.manual_seed(0)
    model = create_model(20).eval()
    x = torch.randn(2, 3, 16, 16)
    plain = model(x).sum()
    plain.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing(True)
    again = model(x).sum()
    again.backward()
    assert torch.allclose(plain, again)
    for a, p in zip(grads, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-6)


def test_residual_stages_append_to_user_network():
    stages = ResidualStages(24, 11)  # one bottleneck unit per stage after a 24-channel layer
    net = nn.Sequential(nn.Conv2d(3, 24, 3, padding=1), stages, nn.AdaptiveAvgPool2d(1))
    out = net(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, stages.out_channels, 1, 1)
    assert stages.out_channels == 256
    assert stages.spec.stem_type == "none" and stages.spec.num_classes == 0
    custom = ResidualStages(8, units=[2, 1], widths=[8, 16], block="basic")
    assert custom(torch.randn(1, 8, 8, 8)).shape == (1, 16, 4, 4)


def test_spec_of_sees_through_wrappers():
    model = create_model(20)
    # the wrappers resnetv2.io.unwrap_model knows (DDP / DataParallel / torch.compile)
    assert spec_of(nn.DataParallel(model)) == model.spec
    with pytest.raises(TypeError):
        spec_of(nn.Linear(2, 2))
    with pytest.raises(TypeError):
        ResNetV2("not a spec")


def test_deep_model_builds_and_runs():
    model = create_model(1001)
    assert len(model.stages[0].blocks) == 111
    with torch.no_grad():
        assert torch.isfinite(model.eval()(torch.randn(1, 3, 8, 8))).all()


def test_metadata_is_a_declared_attribute_of_a_fresh_model():
    from resnetv2.model_metadata import MetadataSlot, ModelMetadata
    from resnetv2.nn.features import ResNetV2Features

    assert isinstance(ResNetV2.metadata, MetadataSlot)
    assert isinstance(ResNetV2Features.metadata, MetadataSlot)
    model = create_model(8, num_classes=2)
    assert model.metadata is None
    assert create_model(8, features_only=True).metadata is None
    assert model.preprocessing.input_size == (32, 32)  # the default for its stem
    model.metadata = {"class_names": ["a", "b"], "preprocessing": {"input_size": [16, 16]}}
    assert isinstance(model.metadata, ModelMetadata) and model.metadata.class_names == ("a", "b")
    assert model.preprocessing.input_size == (16, 16)
    assert ResNetV2Features(model).metadata is model.metadata
    assert not any("metadata" in key for key in model.state_dict())
    del model.metadata
    assert model.metadata is None
