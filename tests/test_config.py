"""Recipes and config validation: every shipped recipe resolves; mistakes are caught early."""

import pytest

from resnetv2.config import (
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    list_recipes,
    load_config,
    load_recipe,
)

RECIPES = {"digits", "images", "finetune", "cifar-paper", "cifar-fast", "cifar-cpu", "seed"}


def test_shipped_recipes_are_the_documented_ones():
    assert set(list_recipes()) == RECIPES


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_parses_and_builds_its_spec(name):
    config = load_recipe(name)
    assert config.name == name
    spec = config.build_spec(num_classes=10, in_channels=3)
    assert spec.num_classes == 10 and spec.depth >= 8
    # The resolved config round-trips through plain data (what config.yaml holds).
    assert config_from_dict(config_to_dict(config)) == config


def test_paper_recipe_follows_he_et_al():
    config = load_recipe("cifar-paper")
    assert (config.optim.name, config.optim.lr, config.optim.momentum) == ("sgd", 0.1, 0.9)
    assert config.optim.weight_decay == 1e-4 and config.data.batch_size == 128
    assert config.train.epochs == 164 and config.schedule.name == "multistep"
    assert config.schedule.milestones == [0.5, 0.75] and config.schedule.gamma == 0.1


def test_cpu_recipe_is_the_documented_wide_net():
    # docs/time-to-accuracy.md and docs/training.md describe this net and its figures.
    from resnetv2 import count_flops, count_params

    config = load_recipe("cifar-cpu")
    spec = config.build_spec(num_classes=10)
    assert (spec.depth, spec.block) == (8, "basic")
    assert [(s.units, s.width, s.stride) for s in spec.stages] == [
        (1, 64, 2),
        (1, 128, 2),
        (1, 256, 2),
    ]
    assert count_params(spec) == 1_198_810 and round(count_flops(spec, 32) / 1e6, 1) == 41.9
    assert config.train.epochs == 60 and config.schedule.name == "onecycle"
    assert config.train.val_tta == "flip" and config.data.augment == "cutout"


def test_seed_recipe_uses_the_tutorials_optimiser_and_callbacks():
    config = load_recipe("seed")
    assert config.optim.name == "adam" and config.optim.amsgrad is True
    assert config.schedule.plateau is not None and config.callbacks.early_stopping is not None
    assert config.model.preset == "seed" and config.data.augment == "seed"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"optim": {"lrr": 0.1}}, "did you mean 'lr'"),
        ({"trian": {}}, "did you mean 'train'"),
        ({"schedule": {"plateau": {"patiense": 3}}}, "did you mean 'patience'"),
        ({"model": {"depth": 20, "options": {"widht": [1, 2, 3]}}}, "did you mean 'widths'"),
        ({"callbacks": {"early_stopping": {"min_detla": 0.1}}}, "did you mean 'min_delta'"),
    ],
)
def test_unknown_keys_suggest_the_nearest_valid_key(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": {"depth": 8}, **data})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": {"epochs": "ten"}}, "train.epochs must be an integer"),
        ({"train": {"epochs": 2.5}}, "train.epochs must be an integer"),
        ({"optim": {"nesterov": "yes"}}, "optim.nesterov must be true or false"),
        ({"optim": {"name": "sgdd"}}, "did you mean 'sgd'"),
        ({"data": {"batch_size": 0}}, "batch_size must be an integer in 1..65,536"),
        ({"optim": {"lr": -1}}, "optim.lr must be a positive"),
        ({"schedule": {"milestones": [0.75, 0.5]}}, "milestones must increase"),
        ({"model": {"depth": 7}}, "model:"),
        ({"model": {"depth": 10**9}}, "model:"),
    ],
)
def test_wrong_types_and_values_are_rejected(data, message):
    base = {"model": {"depth": 8}}
    with pytest.raises(ConfigError, match=message):
        config_from_dict({**base, **data})


def test_yaml_scientific_notation_without_dot_is_a_number(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {depth: 8}\noptim: {weight_decay: 1e-4}\n")
    assert load_config(path).optim.weight_decay == pytest.approx(1e-4)


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: {depth: 8}\ndata: {batchsize: 3}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*did you mean 'batch_size'"):
        load_config(path)


def test_overrides_apply_dotted_keys_and_are_validated():
    config = apply_overrides(load_recipe("digits"), {"optim.lr": 0.5, "train.epochs": 3})
    assert config.optim.lr == 0.5 and config.train.epochs == 3
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        apply_overrides(config, {"optim.lrr": 1.0})


@pytest.mark.parametrize("name", ["cifar-paper", "cifar-fast", "seed"])
def test_cifar_recipes_build_a_model_that_runs_on_cifar_shaped_input(name):
    import torch

    from resnetv2.nn import ResNetV2

    spec = load_recipe(name).build_spec(num_classes=10, in_channels=3)
    model = ResNetV2(spec).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()


def test_fine_tuning_keys_need_init_weights_and_skip_the_spec_check():
    base = config_to_dict(load_recipe("digits"))
    base["model"] = {"init_weights": "timm:resnetv2_50", "options": {"head": "dense"}}
    config = config_from_dict(base)  # no depth: the weights bring their architecture
    assert not config.model.architecture_given() and config.model.freeze == "none"
    frozen = apply_overrides(config, {"model.freeze": "backbone"})
    assert frozen.model.freeze == "backbone"
    with pytest.raises(ConfigError, match="backbone_lr_scale needs model.freeze none"):
        apply_overrides(frozen, {"model.backbone_lr_scale": 0.1})
    with pytest.raises(ConfigError, match="need model.init_weights"):
        apply_overrides(load_recipe("digits"), {"model.freeze": "backbone"})
    with pytest.raises(ConfigError, match="model.freeze must be one of"):
        apply_overrides(config, {"model.freeze": "head"})
    with pytest.raises(ConfigError, match="give a preset, a depth"):
        base["model"] = {"options": {"head": "dense"}}
        config_from_dict(base)


@pytest.mark.parametrize(
    ("value", "parsed"), [("sqrt", "sqrt"), ("unit", -1), (-1, -1), (3, 3), (None, None)]
)
def test_checkpoint_activations_values(value, parsed):
    config = apply_overrides(load_recipe("digits"), {"train.checkpoint_activations": value})
    assert config.train.checkpoint_activations == parsed
    assert config_from_dict(config_to_dict(config)) == config


@pytest.mark.parametrize("value", ["often", 0, -2, 1.5])
def test_bad_checkpoint_activations_values_are_rejected(value):
    with pytest.raises(ConfigError, match="checkpoint_activations"):
        apply_overrides(load_recipe("digits"), {"train.checkpoint_activations": value})


def test_data_mean_std_and_rectangular_image_size():
    config = apply_overrides(
        load_recipe("digits"),
        {"data.image_size": [8, 12], "data.mean": [0.5], "data.std": [0.25]},
    )
    assert config.data.image_size == [8, 12] and config.data.std == [0.25]
    with pytest.raises(ConfigError, match="give both or neither"):
        apply_overrides(load_recipe("digits"), {"data.mean": [0.5]})
    with pytest.raises(ConfigError, match="image_size"):
        apply_overrides(load_recipe("digits"), {"data.image_size": [8, 8, 8]})
