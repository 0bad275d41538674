"""The Keras twin builds each unit's convs as :func:`resnetv2.spec.unit_convs` describes them
(the PyTorch builder is held to the same list in tests/nn/test_unit_convs.py, on the
specs of ``UNIT_CONV_CASES`` in tests/conftest.py)."""

import pytest

import resnetv2
from resnetv2.spec import iter_units, stem_out_channels, unit_convs

keras = pytest.importorskip("keras")

from resnetv2.keras.builder import build_spec  # noqa: E402


def _padding(model, layer) -> int:
    """The zero padding each side a conv sees: ``same`` at stride 1, else its pad layer's."""
    if layer.padding == "same":
        assert layer.strides[0] == 1
        return layer.kernel_size[0] // 2
    try:
        pad = model.get_layer(layer.name + "_pad")
    except ValueError:
        return 0
    (top, bottom), (left, right) = pad.padding
    assert top == bottom == left == right
    return top


def test_every_unit_builds_the_described_convs(unit_conv_case):
    model, options = unit_conv_case
    spec = resnetv2.make_spec(model, **options)
    kmodel = build_spec(spec)
    convs = {layer.name: layer for layer in kmodel.layers if isinstance(layer, keras.layers.Conv2D)}
    for unit in iter_units(spec, stem_out_channels(spec)):
        prefix = f"stages_{unit.stage}_blocks_{unit.index}_"
        built = {
            name[len(prefix) :]: (
                int(layer.kernel.shape[2]),
                layer.filters,
                layer.kernel_size[0],
                layer.strides[0],
                _padding(kmodel, layer),
                layer.use_bias,
            )
            for name, layer in convs.items()
            if name.startswith(prefix)
        }
        described = {
            c.name.replace(".", "_"): (
                c.in_channels,
                c.out_channels,
                c.kernel_size,
                c.stride,
                c.padding,
                c.bias,
            )
            for c in unit_convs(spec, unit)
        }
        assert built == described, unit
