"""Budget-native recipes: the net is chosen from the budget and the measured step times."""

import json
import math
from types import SimpleNamespace

import pytest
import yaml

from resnetv2.cli import build_parser
from resnetv2.cli.train import build_config
from resnetv2.config import ConfigError, apply_overrides, load_recipe
from resnetv2.engine import budget, net_choice, train

NETS = [
    {"note": "big", "min_epochs": 40, "depth": 14, "options": {"widths": [8, 16, 32]}},
    {"note": "small", "min_epochs": 0, "depth": 8, "options": {"widths": [4, 8, 16]}},
]
DATA = SimpleNamespace(num_train=1000, num_val=100, num_classes=3, in_channels=3, image_size=(8, 8))


@pytest.fixture
def step_times(monkeypatch):
    """Fake step times by depth: 0.1 s for the big net, 0.02 s for the small one."""
    times = {14: 0.1, 8: 0.02}

    def fake(model, **kwargs):
        return times[model.spec.depth]

    monkeypatch.setattr(net_choice, "seconds_per_step", fake)
    return times


@pytest.mark.parametrize(("seconds", "chosen"), [(600.0, "big"), (60.0, "small"), (1.0, "small")])
def test_the_first_net_whose_epochs_fit_is_chosen(step_times, seconds, chosen):
    config = apply_overrides(
        load_recipe("digits"), {"model.by_budget": NETS, "train.time": 600, "train.epochs": 1000}
    )
    config, record = net_choice.choose_net(
        config, DATA, amp=False, channels_last=True, seconds_left=seconds
    )
    assert record["chosen"] == chosen
    assert config.model.depth == {"big": 14, "small": 8}[chosen] and config.model.by_budget == []
    big = record["candidates"][0]
    # Steps of 0.1 s per epoch + validation (a third of a step per batch) + a checkpoint guess.
    b = config.data.batch_size
    per_epoch = math.ceil(1000 / b) * 0.1 + 0.1 / b * 100 / 3 + 0.5
    assert big["epochs_fit"] == pytest.approx(seconds / per_epoch, abs=0.05)
    assert net_choice.describe(record, 600).startswith(f"net for a 10 min budget: {chosen}")


def test_the_command_line_architecture_overrides_the_recipes_choice():
    parser = build_parser()
    plain = build_config(parser.parse_args(["train", "--recipe", "cifar-cpu", "--time", "30m"]))
    assert [n.note for n in plain.model.by_budget] == ["wide14-s2", "wide8-s2"]
    for flags in (
        ["--preset", "preresnet20"],
        ["--depth", "8"],
        ["--units", "2,2,2"],
        ["--widths", "32,64,128"],
    ):
        config = build_config(parser.parse_args(["train", "--recipe", "cifar-cpu", *flags]))
        assert config.model.by_budget == [], flags
    headed = build_config(parser.parse_args(["train", "--recipe", "cifar-cpu", "--head", "dense"]))
    assert len(headed.model.by_budget) == 2  # a head option does not name the backbone


def test_an_unbuildable_candidate_is_refused_at_validation():
    bad = [{"min_epochs": 0, "depth": 13}]
    with pytest.raises(ConfigError, match=r"model\.by_budget\[0\]: depth 13 cannot be built"):
        apply_overrides(load_recipe("digits"), {"model.by_budget": bad})


def test_the_epoch_cap_counts_against_a_candidate(step_times):
    config = apply_overrides(
        load_recipe("digits"), {"model.by_budget": NETS, "train.time": 600, "train.epochs": 30}
    )
    _, record = net_choice.choose_net(
        config, DATA, amp=False, channels_last=True, seconds_left=600.0
    )
    assert record["chosen"] == "small" and record["candidates"][0]["epochs_fit"] == 30


def test_a_budgeted_run_trains_and_records_the_chosen_net(
    tmp_path, make_config, step_times, monkeypatch
):
    monkeypatch.setattr(budget, "now", lambda: 100.0)  # no time passes: the cap ends the run
    config = make_config(**{"model.by_budget": NETS, "train.time": 30, "train.epochs": 2})
    result = train(config, out=tmp_path / "run", progress=False, quiet=True)
    record = result.results["net_choice"]
    assert record["chosen"] == "small" and record["candidates"][0]["epochs_fit"] == 2
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["depth"] == 8 and saved["model"]["by_budget"] == []
    assert saved["model"]["options"] == {"widths": [4, 8, 16]}
    assert json.loads((tmp_path / "run" / "spec.json").read_text())["stages"]


def test_without_a_budget_the_recipes_own_net_trains(tmp_path, make_config):
    config = make_config(**{"model.by_budget": NETS, "train.epochs": 1})
    result = train(config, out=tmp_path / "run", progress=False, quiet=True)
    assert "net_choice" not in result.results
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["depth"] == 8 and saved["model"]["by_budget"] == []
