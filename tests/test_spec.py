import json

import pytest

from resnetv2 import make_spec
from resnetv2.errors import SpecError
from resnetv2.spec import ResNetV2Spec, StageSpec, iter_units


def test_json_round_trip_is_exact():
    for model in [20, 164, "seed", "resnetv2_50", "keras_resnet50v2"]:
        spec = make_spec(model)
        again = ResNetV2Spec.from_json(spec.to_json())
        assert again == spec
        assert json.loads(again.to_json()) == json.loads(spec.to_json())


def test_from_dict_rejects_unknown_field_with_suggestion():
    data = make_spec(20).to_dict()
    data["num_clases"] = 3
    with pytest.raises(SpecError, match="did you mean 'num_classes'"):
        ResNetV2Spec.from_dict(data)


def test_from_dict_rejects_wrong_types():
    data = make_spec(20).to_dict()
    data["num_classes"] = "ten"
    with pytest.raises(SpecError, match="num_classes must be an integer"):
        ResNetV2Spec.from_dict(data)
    data = make_spec(20).to_dict()
    data["stages"][0]["units"] = 2.5
    with pytest.raises(SpecError, match=r"stages\[0\].units"):
        ResNetV2Spec.from_dict(data)
    with pytest.raises(SpecError, match="not valid JSON"):
        ResNetV2Spec.from_json("{")


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"stages": (StageSpec(1, 0, 0, 1),)}, "width"),
        ({"stages": (StageSpec(1, -4, 16, 1),)}, "width"),
        ({"stages": (StageSpec(10**9, 16, 16, 1),)}, "units"),
        ({"stages": (StageSpec(1, 16, 16, -2),)}, "stride"),
        ({"dropout": 1.0}, "dropout"),
        ({"drop_path_rate": float("nan")}, "drop_path_rate"),
        ({"norm_eps": 0.0}, "norm_eps"),
        ({"stride_at": "middle"}, "stride_at must be one of"),
        ({"norm": "group", "norm_groups": 7}, "divisible"),
        ({"in_channels": 0}, "in_channels"),
        ({"final_norm": 1}, "final_norm"),
    ],
)
def test_hostile_values_rejected(changes, match):
    spec = make_spec(20)
    with pytest.raises(SpecError, match=match):
        spec.replace(**changes)


def test_total_depth_limit_checked_before_allocation():
    stages = tuple(StageSpec(40_000, 16, 16, 1) for _ in range(3))
    with pytest.raises(SpecError, match="exceeds the supported maximum"):
        ResNetV2Spec(block="basic", stages=stages)


def test_units_expand_with_paper_conventions():
    units = list(iter_units(make_spec(164)))
    assert len(units) == 54
    first = units[0]
    assert (first.in_channels, first.width, first.out_channels) == (16, 16, 64)
    assert first.shortcut == "projection" and first.stride == 1
    second_stage = [u for u in units if u.stage == 1]
    assert second_stage[0].stride == 2 and second_stage[0].stride_on == "conv1"
    assert all(u.shortcut == "identity" for u in second_stage[1:])


def test_keras_convention_strides_last_unit_with_subsampled_identity():
    units = [u for u in iter_units(make_spec("keras_resnet50v2")) if u.stage == 0]
    assert [u.stride for u in units] == [1, 1, 2]
    assert units[-1].shortcut == "subsample" and units[-1].stride_on == "conv2"
    assert units[0].shortcut == "projection" and units[0].stride == 1


def test_seed_first_unit_skips_preactivation_after_normalised_stem():
    units = list(iter_units(make_spec("seed")))
    assert units[0].preact is False
    assert all(u.preact for u in units[1:])


def test_drop_path_schedule_is_linear_per_unit():
    units = list(iter_units(make_spec(20, drop_path_rate=0.2)))
    rates = [u.drop_path for u in units]
    assert rates[0] == 0.0
    assert rates[-1] == pytest.approx(0.2)
    steps = [b - a for a, b in zip(rates, rates[1:])]
    assert max(steps) - min(steps) < 1e-12


def test_choice_fields_are_literal_typed_and_validated_from_the_same_alias():
    import dataclasses
    import typing

    from resnetv2 import spec as S

    hints = typing.get_type_hints(ResNetV2Spec)
    choices = {
        "block": S.BLOCKS,
        "stem_type": S.STEM_TYPES,
        "stride_at": S.STRIDE_AT,
        "shortcut_input": S.SHORTCUT_INPUTS,
        "conv_bias": S.CONV_BIAS,
        "norm": S.NORMS,
        "head": S.HEADS,
        "classifier": S.CLASSIFIERS,
    }
    # Every string field except the free-form name is a Literal, and its runtime tuple is it.
    strings = {
        f.name
        for f in dataclasses.fields(ResNetV2Spec)
        if f.name != "name" and typing.get_origin(hints[f.name]) is typing.Literal
    }
    assert strings == set(choices)
    for field, valid in choices.items():
        assert typing.get_args(hints[field]) == valid
        bad = valid[0] + "x"
        with pytest.raises(SpecError, match=f"{field} must be one of .*did you mean '{valid[0]}'"):
            make_spec(20, **({"block": bad} if field == "block" else {field: bad}))
    units = typing.get_type_hints(S.UnitSpec)
    assert typing.get_args(units["shortcut"]) == S.SHORTCUTS
    assert typing.get_args(units["stride_on"]) == (typing.Literal[S.STRIDE_ON], type(None))
