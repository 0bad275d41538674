"""``unit_convs`` is the one description of a unit's convs: the PyTorch builder matches it.

Every ``Conv2d`` a unit holds is one of the described convs (same name, channels, kernel,
stride, padding and bias) and every described conv exists, for CIFAR and ImageNet layouts,
basic and bottleneck units, each ``stride_at`` and projection, subsample and identity
shortcuts. The Keras twin is held to the same list in tests/keras/test_keras_unit_convs.py.
"""

from torch import nn

import resnetv2
from resnetv2.nn.model import make_unit, spec_norm_layer
from resnetv2.spec import iter_units, stem_out_channels, unit_convs


def _described(spec, unit):
    return {
        c.name: (c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.bias)
        for c in unit_convs(spec, unit)
    }


def _built(module: nn.Module):
    return {
        name: (
            m.in_channels,
            m.out_channels,
            m.kernel_size[0],
            m.stride[0],
            m.padding[0],
            m.bias is not None,
        )
        for name, m in module.named_modules()
        if isinstance(m, nn.Conv2d)
    }


def test_every_unit_builds_the_described_convs(unit_conv_case):
    model, options = unit_conv_case
    spec = resnetv2.make_spec(model, **options)
    units = list(iter_units(spec, stem_out_channels(spec)))
    norm = spec_norm_layer(spec)
    for unit in units:
        assert _built(make_unit(spec, unit, norm)) == _described(spec, unit), unit


def test_the_specs_cover_every_shortcut_and_strided_conv(unit_conv_cases):
    """The cases (``UNIT_CONV_CASES`` in tests/conftest.py) reach projection and subsample shortcuts and strides on conv1 and
    conv2, so a rule that differed in any of them would fail a case."""
    seen = set()
    for model, options in unit_conv_cases:
        spec = resnetv2.make_spec(model, **options)
        for unit in iter_units(spec, stem_out_channels(spec)):
            seen.add(unit.shortcut)
            seen.update(f"{spec.block}:{c.name}" for c in unit_convs(spec, unit) if c.stride > 1)
    assert seen >= {
        "identity",
        "projection",
        "subsample",
        "basic:conv1",
        "bottleneck:conv1",
        "bottleneck:conv2",
        "basic:downsample.conv",
        "bottleneck:downsample.conv",
    }


def test_a_whole_model_holds_the_described_convs():
    """The model (not only make_unit) holds them, under ``stages.S.blocks.U.<name>``."""
    spec = resnetv2.make_spec(29, stride_at="first_3x3")
    model = resnetv2.create_model(spec)
    built = _built(model.stages)
    described = {
        f"{u.stage}.blocks.{u.index}.{name}": value
        for u in iter_units(spec, stem_out_channels(spec))
        for name, value in _described(spec, u).items()
    }
    assert built == described
