"""The timm interface, checked against timm itself on random weights (no downloads).

timm's models are built randomly initialised, their state dicts saved to a file, and that
file is loaded both by timm (``pretrained_cfg_overlay={"file": ...}``) and by us
(``create_model(..., pretrained=FILE)``): feature maps, intermediates and pooled features
must then agree with timm's.
"""

from __future__ import annotations

import math
import time

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

import resnetv2
from resnetv2 import SpecError, create_model, make_spec
from resnetv2.convert import ConversionError
from resnetv2.nn import ResNetV2Features
from resnetv2.nn.features import feature_info

X64 = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
# Our resnetv2_* presets that timm builds (timm has no resnetv2_200).
TIMM_PRESETS = [p for p in resnetv2.list_presets() if p in timm.list_models("resnetv2_*")]


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights *and* BN statistics, so a mis-wired layer cannot hide."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(
                    torch.randn(m.weight.shape, generator=g) / math.sqrt(m.weight[0].numel())
                )
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def timm_file(tmp_path_factory):
    """(name, timm model with random weights, the safetensors file holding them).

    Values are compared on resnetv2_18 (the machine is small); every other timm preset's
    feature shapes are compared on the meta device below.
    """
    name = "resnetv2_18"
    net = randomize(timm.create_model(name))
    path = tmp_path_factory.mktemp("timm") / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return name, net, path


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert [t.shape for t in a] == [t.shape for t in b]
    return max((x - y).abs().max().item() for x, y in zip(a, b))


@pytest.mark.parametrize("out_indices", [None, (1, 2, 3, 4), (0, 2)])
def test_features_only_equals_timm(timm_file, out_indices):
    name, _, path = timm_file
    kwargs = {} if out_indices is None else {"out_indices": out_indices}
    theirs = timm.create_model(
        name,
        features_only=True,
        pretrained=True,
        pretrained_cfg_overlay={"file": str(path)},
        **kwargs,
    ).eval()
    ours = create_model(name, features_only=True, pretrained=path, **kwargs).eval()
    assert isinstance(ours, ResNetV2Features)
    with torch.no_grad():
        assert max_diff(theirs(X64), ours(X64)) <= 1e-5
    assert ours.feature_info.channels() == theirs.feature_info.channels()
    assert ours.feature_info.reduction() == theirs.feature_info.reduction()
    assert ours.feature_info.module_name() == theirs.feature_info.module_name()


@pytest.mark.parametrize("name", TIMM_PRESETS)
def test_features_only_shapes_equal_timm_for_every_timm_preset(name):
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        theirs = timm.create_model(name, features_only=True, out_indices=(0, 1, 2, 3, 4))
        ours = create_model(name, features_only=True)
        x = torch.empty(1, 3, 96, 64)
        assert [t.shape for t in ours(x)] == [t.shape for t in theirs(x)]
    assert ours.feature_info.get_dicts() == theirs.feature_info.get_dicts()
    unnumbered = [
        {k: v for k, v in d.items() if k != "index"} for d in theirs.feature_info.get_dicts()
    ]
    assert list(feature_info(make_spec(name))) == unnumbered  # the full model's list


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"indices": 2},
        {"indices": [0, -1], "norm": True},
        {"indices": [1], "stop_early": True},
        {"indices": (3,), "intermediates_only": True},
    ],
)
def test_forward_intermediates_equals_timm(timm_file, kwargs):
    name, net, path = timm_file
    ours = create_model(name, pretrained=path)
    with torch.no_grad():
        theirs_out, ours_out = (
            net.forward_intermediates(X64, **kwargs),
            ours.forward_intermediates(X64, **kwargs),
        )
    if kwargs.get("intermediates_only"):
        assert max_diff(theirs_out, ours_out) <= 1e-5
    else:
        assert max_diff([theirs_out[0]], [ours_out[0]]) <= 1e-5
        assert max_diff(theirs_out[1], ours_out[1]) <= 1e-5


@pytest.mark.parametrize("pool", ["max", "avgmax", "catavgmax", ""])
def test_reset_classifier_global_pool_equals_timm(pool):
    net = randomize(timm.create_model("resnetv2_18"))
    ours = create_model("resnetv2_18").eval()
    ours.load_state_dict(net.state_dict())
    net.reset_classifier(0, pool)
    ours.reset_classifier(0, global_pool=pool)
    with torch.no_grad():
        assert max_diff([net(X64)], [ours(X64)]) <= 1e-5
    ours.reset_classifier(4)  # None keeps the pooling
    assert ours.head.global_pool == pool
    if pool:
        assert ours(X64).shape == (2, 4)


def test_global_pool_mistakes_name_the_valid_choices():
    model = create_model(8)
    with pytest.raises(SpecError, match="'avg', 'max'"):
        model.reset_classifier(3, global_pool="mean")
    with pytest.raises(SpecError, match="num_classes=0 or a conv1x1"):
        model.reset_classifier(3, global_pool="")
    with pytest.raises(SpecError, match="dense head"):
        create_model("seed", depth=11, global_pool="catavgmax")


def test_global_pool_survives_save_and_load(tmp_path):
    model = create_model(8, num_classes=3, global_pool="catavgmax").eval()
    path = resnetv2.save_model(model, tmp_path / "w.safetensors")
    loaded = resnetv2.load(path)
    assert loaded.head.global_pool == "catavgmax"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_features_only_any_depth_and_stem():
    model = create_model(20, features_only=True, out_indices=(1, 2, 3)).eval()
    maps = model(torch.randn(2, 3, 32, 32))
    assert [tuple(m.shape[1:]) for m in maps] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert model.feature_info.channels() == [16, 32, 64]
    assert model.feature_info.reduction() == [1, 2, 4]
    # the seed tutorial's stem is normalised: its feature is taken after the BN-ReLU
    seed = create_model("seed", depth=11, features_only=True, out_indices=(0,)).eval()
    assert seed.feature_info.module_name() == ["stem.norm"]
    assert seed(torch.randn(1, 3, 32, 32))[0].min() >= 0
    # stages after the last index taken are not kept (as timm prunes them)
    assert len(create_model(56, features_only=True, out_indices=1).stages) == 3
    assert len(create_model(56, features_only=True, out_indices=(0, 1)).stages) == 1


def test_feature_index_mistakes():
    with pytest.raises(SpecError, match=r"features 0 \(stem\) to 3"):
        create_model(20, features_only=True, out_indices=(1, 4))
    with pytest.raises(SpecError, match="features_only=True"):
        create_model(20, out_indices=(1,))
    with pytest.raises(SpecError, match="1 to 4"):
        create_model(20).forward_intermediates(torch.randn(1, 3, 8, 8), indices=5)


def test_pretrained_cfg_is_the_saved_preprocessing(tmp_path):
    from timm.data import resolve_data_config

    from resnetv2.data.preprocessing import Preprocessing

    model = create_model(8, num_classes=2)
    pre = {
        "input_size": [40, 48],
        "in_channels": 3,
        "mean": [0.1, 0.2, 0.3],
        "std": [0.4, 0.5, 0.6],
        "interpolation": "bicubic",
        "crop_pct": 0.875,
    }
    loaded = resnetv2.load(
        resnetv2.save_model(model, tmp_path / "w.safetensors", preprocessing=pre)
    )
    assert loaded.preprocessing == Preprocessing.from_metadata(pre)
    cfg = resolve_data_config({}, model=loaded)  # timm's own reader of pretrained_cfg
    assert cfg == {
        "input_size": (3, 40, 48),
        "interpolation": "bicubic",
        "mean": (0.1, 0.2, 0.3),
        "std": (0.4, 0.5, 0.6),
        "crop_pct": 0.875,
        "crop_mode": "center",
    }
    # a fresh model has the library default for its stem
    assert create_model("resnetv2_18").pretrained_cfg["input_size"] == (3, 224, 224)
    assert create_model(8, in_channels=1).pretrained_cfg["input_size"] == (1, 32, 32)


def test_pretrained_file_keeps_backbone_and_starts_a_new_head(timm_file):
    name, net, path = timm_file
    model = create_model(name, pretrained=path, num_classes=5).eval()
    assert model.num_classes == 5
    with torch.no_grad():
        expected = net.forward_head(net.forward_features(X64), pre_logits=True)
        assert (
            max_diff([expected], [model.forward_head(model.forward_features(X64), pre_logits=True)])
            <= 1e-5
        )
    own = create_model(pretrained=path)  # the weights' own architecture
    assert own.spec == make_spec(name)
    with pytest.raises(resnetv2.ResNetV2Error, match="different backbone"):
        create_model(20, pretrained=path)


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr("resnetv2.convert.offline.socket.create_connection", refuse)
    for var in (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)


@pytest.mark.parametrize(
    "pretrained, expected",
    [
        (True, "cannot reach huggingface.co"),
        ("pytorchcv:preresnet20_cifar10", "cannot reach github.com"),
    ],
)
def test_hub_names_fail_at_once_when_offline(monkeypatch, tmp_path, pretrained, expected):
    _no_network(monkeypatch)
    monkeypatch.setattr("resnetv2.convert.timm.hf_cached_file", lambda hub_id: None)
    monkeypatch.setattr("resnetv2.convert.pytorchcv.pytorchcv_cached_file", lambda name: None)
    model = "resnetv2_18" if pretrained is True else None
    start = time.monotonic()
    with pytest.raises(ConversionError, match=expected) as err:
        create_model(model, pretrained=pretrained)
    assert time.monotonic() - start < 5
    assert "--init-weights" in str(err.value)  # the advice: download elsewhere, pass the file


def test_offline_mode_fails_before_any_connection(monkeypatch):
    _no_network(monkeypatch)
    monkeypatch.setattr("resnetv2.convert.timm.hf_cached_file", lambda hub_id: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    called = []
    monkeypatch.setattr("resnetv2.convert.offline.unreachable", lambda *a: called.append(a))
    with pytest.raises(ConversionError, match="offline mode"):
        create_model(pretrained="timm:resnetv2_18")
    assert called == []


def test_cached_hub_weights_are_used_without_network(monkeypatch, tmp_path):
    net = randomize(timm.create_model("resnetv2_18"))
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    _no_network(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("resnetv2.convert.timm.hf_cached_file", lambda hub_id: str(path))
    model = create_model("resnetv2_18", pretrained=True)
    with torch.no_grad():
        assert max_diff([net(X64)], [model(X64)]) <= 1e-4
    assert model.metadata["imported_from"]["library"] == "timm"


def test_pretrained_argument_mistakes():
    with pytest.raises(SpecError, match="pretrained=True needs a preset"):
        create_model(56, pretrained=True)
    with pytest.raises(SpecError, match="pretrained must be"):
        create_model(56, pretrained=3)
    with pytest.raises(FileNotFoundError, match="timm:NAME"):
        create_model(pretrained="no/such/file.safetensors")
