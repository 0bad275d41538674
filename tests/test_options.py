import pytest

from resnetv2 import make_spec
from resnetv2.errors import PresetError, SpecError
from resnetv2.options import spec_options


def test_units_override_depth_rule():
    spec = make_spec(units=[1, 2, 3], block="basic")
    assert spec.units_per_stage == (1, 2, 3)
    assert spec.depth == 14


def test_units_with_auto_block_matches_given_depth():
    assert make_spec(20, units=[2, 2, 2]).block == "bottleneck"
    assert make_spec(14, units=[2, 2, 2]).block == "basic"


def test_depth_and_units_must_agree():
    with pytest.raises(SpecError, match="drop one of depth/units"):
        make_spec(20, units=[2, 2, 2], block="basic")


def test_width_multiplier_scales_widths():
    spec = make_spec(20, width_multiplier=2)
    assert [s.width for s in spec.stages] == [32, 64, 128]


def test_preset_overrides():
    spec = make_spec("seed", depth=110)
    assert spec.units_per_stage == (12, 12, 12)
    assert spec.head == "dense"
    spec = make_spec("resnetv2_50", num_classes=10)
    assert spec.num_classes == 10 and spec.units_per_stage == (3, 4, 6, 3)
    spec = make_spec("resnetv2_50", units=[1, 1, 1, 1])
    assert spec.depth == 14


def test_unknown_option_and_preset_suggest():
    with pytest.raises(SpecError, match="did you mean 'drop_path_rate'"):
        make_spec(20, drop_path=0.1)
    with pytest.raises(PresetError, match="did you mean 'resnetv2_50'"):
        make_spec("resnetv2-50")


def test_custom_stage_count_needs_widths():
    with pytest.raises(SpecError, match="give widths"):
        make_spec(units=[1, 1, 1, 1, 1], block="basic")
    spec = make_spec(units=[1, 1], widths=[8, 16], block="basic")
    assert spec.stages[1].stride == 2


@pytest.mark.parametrize("model", [20, 1001, "seed", "resnetv2_101", "keras_resnet152v2"])
def test_spec_options_invert_make_spec(model):
    spec = make_spec(model)
    assert make_spec(**spec_options(spec)) == spec


def test_missing_depth_is_explained():
    with pytest.raises(SpecError, match="give a depth"):
        make_spec()


def test_preset_name_kept_only_while_stages_are_the_presets():
    assert make_spec("resnetv2_50", num_classes=10).name == "resnetv2_50"
    assert make_spec("preresnet164", depth=20, block="basic").name == ""
    assert make_spec("seed", depth=110).name == ""
    assert make_spec("seed", depth=110, name="seed-110").name == "seed-110"
