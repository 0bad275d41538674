"""pytorchcv CIFAR pre-activation ResNets → resnetv2: output parity on random weights."""

from __future__ import annotations

import pytest
import torch
from pytorchcv.model_provider import get_model

from resnetv2 import create_model
from resnetv2.convert import ConversionError, convert_pytorchcv_state_dict, import_checkpoint
from resnetv2.convert.pytorchcv import CIFAR100_CLASSES, fetch_pytorchcv, pytorchcv_key


@pytest.mark.parametrize(
    "name, depth, block, classes",
    [
        ("preresnet20_cifar10", 20, "basic", 10),
        ("preresnet164bn_cifar10", 164, "bottleneck", 10),
        ("preresnet20_cifar100", 20, "basic", 100),
    ],
)
def test_output_parity_and_param_count(name, depth, block, classes, randomized, output_diff):
    net = randomized(get_model(name, pretrained=False), seed=depth)
    imported = convert_pytorchcv_state_dict(net.state_dict(), name=name)
    ours = imported.build_model()
    assert imported.spec.depth == depth
    assert imported.spec.block == block
    assert imported.spec.num_classes == classes
    assert imported.spec.stride_at == "first_3x3"
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in net.parameters())
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert output_diff(net, ours, x) <= 1e-4
    assert len(imported.class_names) == classes
    assert imported.preprocessing["input_size"] == [32, 32]


@pytest.fixture(scope="module")
def bottleneck_net():
    from pytorchcv.models.preresnet_cifar import get_preresnet_cifar

    return get_preresnet_cifar(num_classes=10, blocks=29, bottleneck=True)  # 3 units/stage


def test_parity_test_can_fail_on_wrong_stride_placement(bottleneck_net, randomized, output_diff):
    # The paper's own stride placement (first 1x1) has the same tensors but another
    # function: the parity check must notice it.
    net = randomized(bottleneck_net)
    imported = convert_pytorchcv_state_dict(net.state_dict())
    wrong = create_model(imported.spec.replace(stride_at="first_1x1"))
    wrong.load_state_dict(imported.state_dict)
    x = torch.randn(2, 3, 32, 32)
    assert output_diff(net, wrong, x) > 1e-3


def test_running_stats_matter(randomized, output_diff):
    net = randomized(get_model("preresnet20_cifar10", pretrained=False))
    ours = convert_pytorchcv_state_dict(net.state_dict()).build_model()
    with torch.no_grad():
        ours.stages[1].blocks[0].norm2.running_var.mul_(3.0)
    assert output_diff(net, ours, torch.randn(2, 3, 32, 32)) > 1e-3


def test_cifar100_names_and_auto_name():
    assert len(CIFAR100_CLASSES) == len(set(CIFAR100_CLASSES)) == 100
    net = get_model("preresnet20_cifar100", pretrained=False)
    imported = convert_pytorchcv_state_dict(net.state_dict())
    assert imported.spec.name == "preresnet20_cifar100"
    assert imported.class_names[0] == "apple"


def test_checkpoint_file_round_trip(tmp_path, randomized, output_diff):
    from safetensors.torch import save_file

    net = randomized(get_model("preresnet20_cifar10", pretrained=False), seed=3)
    pth = tmp_path / "preresnet20_cifar10.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, pth)
    sft = tmp_path / "preresnet20_cifar10.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(sft))
    x = torch.randn(2, 3, 32, 32)
    for path in (pth, sft):
        imported = import_checkpoint(path)  # library detected from the key names
        assert imported.source == {
            "library": "pytorchcv",
            "model": "preresnet20_cifar10",
            "file": path.name,
        }
        assert output_diff(net, imported.build_model(), x) <= 1e-4


def test_unknown_key_is_an_error():
    with pytest.raises(ConversionError, match="no mapping"):
        pytorchcv_key("features.stage1.unit1.se.fc.weight")


def test_strict_load_names_missing_key(randomized):
    from resnetv2.io import WeightsMismatchError

    state = dict(get_model("preresnet20_cifar10", pretrained=False).state_dict())
    del state["features.stage2.unit1.body.conv2.bn.running_var"]
    imported = convert_pytorchcv_state_dict(state)
    with pytest.raises(WeightsMismatchError, match=r"stages\.1\.blocks\.0\.norm2\.running_var"):
        imported.build_model()


def test_offline_message(monkeypatch):
    import pytorchcv.model_provider as provider

    def no_network(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(provider, "get_model", no_network)
    with pytest.raises(ConversionError, match=r"--init-weights preresnet20_cifar10\.pth"):
        fetch_pytorchcv("preresnet20_cifar10")
    with pytest.raises(ConversionError, match="not a CIFAR"):
        fetch_pytorchcv("resnet50")
