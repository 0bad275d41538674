"""Golden parameter counts (docs/references.md) and peer parity for every preset."""

import pytest
import torch

from resnetv2 import count_params, create_model, list_presets, make_spec

PAPER_COUNTS = [
    (20, "basic", 272_282),
    (56, "basic", 855_578),
    (110, "basic", 1_730_522),
    (1202, "basic", 19_423_834),
    (11, "bottleneck", 126_746),
    (29, "bottleneck", 312_218),
    (56, "bottleneck", 590_426),
    (110, "bottleneck", 1_146_842),
    (164, "bottleneck", 1_703_258),
    (1001, "bottleneck", 10_327_706),
]

PRESET_COUNTS = {
    "preresnet20": 272_282,
    "preresnet110": 1_730_522,
    "preresnet164": 1_703_258,
    "preresnet1001": 10_327_706,
    "resnetv2_18": 11_687_720,
    "resnetv2_34": 21_795_880,
    "resnetv2_50": 25_549_352,
    "resnetv2_101": 44_541_480,
    "resnetv2_152": 60_185_128,
    "keras_resnet50v2": 25_568_360,
    "keras_resnet101v2": 44_577_896,
    "keras_resnet152v2": 60_236_904,
    "seed": 6_878_922,
}


@pytest.mark.parametrize("depth, block, params", PAPER_COUNTS)
def test_paper_cifar_counts(depth, block, params):
    spec = make_spec(depth, block=block)
    assert count_params(spec) == params
    # CIFAR-100 adds (100 - 10) * (features + 1) classifier parameters
    extra = 23_130 if block == "bottleneck" else 5_850
    assert count_params(spec.replace(num_classes=100)) == params + extra


@pytest.mark.parametrize("depth, block, params", [c for c in PAPER_COUNTS if c[0] <= 164])
def test_built_model_has_paper_count(depth, block, params):
    model = create_model(depth, block=block)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("name, params", sorted(PRESET_COUNTS.items()))
def test_preset_counts(name, params):
    assert count_params(make_spec(name)) == params


@pytest.mark.parametrize(
    "depth, params", [(11, 1_441_162), (20, 2_528_714), (56, 6_878_922), (110, 13_404_234)]
)
def test_seed_tutorial_trainable_counts(depth, params):
    assert count_params(make_spec("seed", depth=depth)) == params


@pytest.mark.parametrize(
    "name, peer",
    [
        ("preresnet20", "preresnet20_cifar10"),
        ("preresnet56", "preresnet56_cifar10"),
        ("preresnet110", "preresnet110_cifar10"),
        ("preresnet164", "preresnet164bn_cifar10"),
    ],
)
def test_pytorchcv_parameter_parity(name, peer):
    from pytorchcv.model_provider import get_model

    theirs = get_model(peer, pretrained=False)
    assert count_params(make_spec(name)) == sum(p.numel() for p in theirs.parameters())


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


@pytest.mark.parametrize(
    "name, size",
    [
        ("resnetv2_18", 224),
        ("resnetv2_34", 64),
        ("resnetv2_50", 224),
        ("resnetv2_101", 64),
        ("resnetv2_152", 64),
    ],
)
def test_timm_strict_load_and_output_parity(name, size):
    timm = pytest.importorskip("timm")
    theirs = timm.create_model(name).eval()
    _randomise(theirs)
    ours = create_model(name).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs_sd = theirs.state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs_sd.items()
    }
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (ours(x) - theirs(x)).abs().max().item()
    assert diff <= 1e-5


def test_every_preset_is_listed_and_builds_a_spec():
    names = list_presets()
    assert {"seed", "preresnet164", "resnetv2_50", "keras_resnet50v2"} <= set(names)
    for name in names:
        assert make_spec(name).name == name
