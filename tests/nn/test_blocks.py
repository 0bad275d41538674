"""The units and stem take explicit arguments (timm's style), not the spec."""

from functools import partial

import pytest
import torch

from resnetv2 import make_spec
from resnetv2.errors import SpecError
from resnetv2.nn.blocks import PreActBasic, PreActBottleneck
from resnetv2.nn.layers import BatchNormAct2d, GroupNormAct, norm_act_layer
from resnetv2.nn.model import ResNetV2, make_unit, spec_norm_layer
from resnetv2.nn.stems import make_stem
from resnetv2.spec import iter_units


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_blocks_match_timm_built_with_the_same_arguments(block):
    timm_resnetv2 = pytest.importorskip("timm.models.resnetv2")
    from timm.layers import BatchNormAct2d as TimmBNAct
    from timm.layers import create_conv2d

    conv = partial(create_conv2d, bias=False)
    if block == "basic":
        ours = PreActBasic(32, 64, stride=2)
        theirs = timm_resnetv2.PreActBasic(
            32,
            64,
            stride=2,
            conv_layer=conv,
            norm_layer=TimmBNAct,
            proj_layer=timm_resnetv2.DownsampleConv,
        )
    else:
        ours = PreActBottleneck(32, 64, 16, stride=2)
        theirs = timm_resnetv2.PreActBottleneck(
            32,
            64,
            stride=2,
            conv_layer=conv,
            norm_layer=TimmBNAct,
            proj_layer=timm_resnetv2.DownsampleConv,
        )
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 32, 8, 8)
    torch.testing.assert_close(ours.eval()(x), theirs.eval()(x))


def test_default_shortcut_follows_the_shape_and_options_are_checked():
    assert PreActBasic(16, 16).downsample is None
    assert PreActBasic(16, 16, stride=2).downsample is not None
    assert PreActBottleneck(16, 64).conv1.out_channels == 16  # the paper's 4x expansion
    unit = PreActBasic(16, 16, stride=2, shortcut="subsample", preact=False)
    assert unit.downsample is None and unit.subsample == 2
    assert list(unit(torch.randn(1, 16, 8, 8)).shape) == [1, 16, 4, 4]
    with pytest.raises(SpecError, match="did you mean 'projection'"):
        PreActBasic(16, 32, shortcut="projecton")
    with pytest.raises(SpecError, match="stride_on"):
        PreActBottleneck(16, 64, stride=2, stride_on="conv3")
    with pytest.raises(SpecError, match="did you mean 'group'"):
        norm_act_layer("groups")


def test_model_translates_the_spec_into_block_arguments():
    spec = make_spec(
        29,
        norm="group",
        norm_groups=8,
        conv_bias="keras",
        shortcut_input="raw",
        drop_path_rate=0.1,
        stem_type="conv3x3_bn_relu",
    )
    norm_layer = spec_norm_layer(spec)
    assert isinstance(norm_layer(16), GroupNormAct) and norm_layer(16).num_groups == 8
    units = list(iter_units(spec))
    first, last = make_unit(spec, units[0], norm_layer), make_unit(spec, units[-1], norm_layer)
    assert isinstance(first, PreActBottleneck) and type(first.norm1).__name__ == "Identity"
    assert first.shortcut_raw and first.downsample.conv.bias is not None
    assert first.conv1.bias is None and first.conv3.bias is not None
    assert last.drop_path.rate == pytest.approx(0.1)
    stem = make_stem(3, 16, "conv3x3_bn_relu", norm_layer=BatchNormAct2d, bias=True, dropout=0.1)
    assert list(dict(stem.named_children())) == ["conv", "norm", "drop"]
    assert isinstance(ResNetV2(spec).stem.norm, GroupNormAct)
