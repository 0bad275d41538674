import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from resnetv2 import analyze, count_flops, count_params, create_model, make_spec
from resnetv2.spec import (
    CONV_BIAS,
    SHORTCUT_INPUTS,
    STEM_TYPES,
    STRIDE_AT,
    ResNetV2Spec,
    StageSpec,
)


@st.composite
def specs(draw):
    block = draw(st.sampled_from(["basic", "bottleneck"]))
    norm = draw(st.sampled_from(["batch", "group"]))
    # Group norm needs more than one value per group, even on a 1x1 map.
    low = 2 if norm == "group" else 1
    n = draw(st.integers(1, 4))
    stages = []
    for _ in range(n):
        out = draw(st.integers(low, 12))
        width = out if block == "basic" else draw(st.integers(low, 12))
        stages.append(StageSpec(draw(st.integers(1, 2)), width, out, draw(st.integers(1, 3))))
    head = draw(st.sampled_from(["linear", "dense"]))
    return ResNetV2Spec(
        block=block,
        stages=tuple(stages),
        in_channels=draw(st.integers(low, 4)),
        num_classes=draw(st.integers(0, 5)),
        stem_type=draw(st.sampled_from(STEM_TYPES)),
        stem_width=draw(st.integers(low, 8)),
        stride_at=draw(st.sampled_from(STRIDE_AT)),
        shortcut_input=draw(st.sampled_from(SHORTCUT_INPUTS)),
        conv_bias=draw(st.sampled_from(CONV_BIAS)),
        norm=norm,
        norm_groups=1,
        final_norm=draw(st.booleans()),
        head=head,
        head_hidden=draw(st.integers(1, 8)),
        classifier="linear" if head == "dense" else draw(st.sampled_from(["linear", "conv1x1"])),
    )


def measured_macs(model: nn.Module, x: torch.Tensor) -> int:
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += k * module.in_channels * module.out_channels * output[0, 0].numel()
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    return total


@settings(
    max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(spec=specs(), size=st.integers(3, 19))
def test_params_and_flops_equal_built_model(spec, size):
    model = create_model(spec)
    assert count_params(spec) == sum(p.numel() for p in model.parameters())
    x = torch.randn(1, spec.in_channels, size, size)
    assert count_flops(spec, size) == measured_macs(model, x)
    report = analyze(spec, size)
    with torch.no_grad():
        feats = model.forward_stages(x)
    for row, feat in zip(report.rows[1:-1], feats):
        assert (row.out_channels, *row.output_size) == tuple(feat.shape[1:])


def test_resnet50_flops_match_published_figure():
    # He et al. quote 3.8-4.1 GFLOPs (multiply-adds) for ResNet-50 at 224x224.
    assert 4.0e9 < count_flops(make_spec("resnetv2_50"), 224) < 4.2e9


def test_rectangular_input_and_bad_size():
    report = analyze(make_spec(20), (32, 16))
    assert report.rows[-2].output_size == (8, 4)
    with pytest.raises(ValueError, match="input_size"):
        analyze(make_spec(20), 0)


def test_training_pflop_of_the_cifar_cpu_recipe_matches_the_issue_figure():
    from resnetv2.analysis import training_pflop

    # cifar-cpu: 60 epochs x 45,000 images x 41.9 M multiply-adds x 2 x 3 = 0.68 PFLOP
    spec = make_spec(8, units=[1, 1, 1], widths=[64, 128, 256], strides=[2, 2, 2])
    macs = count_flops(spec, 32)
    assert 41.8e6 < macs < 42.0e6
    images = 60 * 45_000
    assert training_pflop(spec, 32, images) == macs * 6 * images / 1e15
    assert 0.675 < training_pflop(spec, 32, images) < 0.685
    # the input size matters: 4x the pixels, ~4x the compute
    assert training_pflop(spec, 64, images) > 3.9 * training_pflop(spec, 32, images)
    with pytest.raises(ValueError, match="images"):
        training_pflop(spec, 32, -1)
