"""Every shipped recipe runs end to end on tiny data (digits, one epoch, shrunk network)."""

import pytest

from resnetv2.config import apply_overrides, load_recipe
from resnetv2.engine import train

SHRINK = {
    "images": {"model.depth": 8},
    "finetune": {"model.depth": 8},
    "cifar-paper": {"model.depth": 11},
    "cifar-fast": {"model.options.width_multiplier": 0.125},
    "cifar-cpu": {"model.depth": 8},
    "seed": {"model.depth": 11, "model.options": {"width_multiplier": 0.25}},
}


def test_every_shipped_recipe_is_exercised():
    from resnetv2.config import list_recipes

    assert set(list_recipes()) == set(SHRINK) | {"digits"}  # digits: tests/cli/test_train.py


@pytest.mark.parametrize("name", sorted(SHRINK))
def test_recipe_trains_one_epoch_on_digits(tmp_path, name):
    recipe = load_recipe(name)
    overrides = {
        "data.source": "digits",
        "data.batch_size": 128,
        "train.epochs": 1,
        "train.threads": 1,
        **SHRINK[name],
    }
    if "model.options.width_multiplier" in overrides:
        overrides["model.options"] = {
            **recipe.model.options,
            "width_multiplier": overrides.pop("model.options.width_multiplier"),
        }
    config = apply_overrides(recipe, overrides)
    config.data.val_split = None  # digits' fixed split (overrides treat None as "not given")
    result = train(config, out=tmp_path / name, progress=False, quiet=True)
    row = result.history[0]
    assert row["val_count"] == 359 and 0.0 <= row["val_acc"] <= 1.0
    assert row["train_loss"] == row["train_loss"]  # finite (NaN != NaN)
    assert (tmp_path / name / "model.safetensors").is_file()
    assert result.results["recipe"] == name
