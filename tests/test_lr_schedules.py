"""Learning-rate schedules come from one registry (``resnetv2.lr_schedules.SCHEDULES``): the
config's ``schedule.name`` values, the CLI's ``--schedule`` choices, what ``--time`` can plan
and the schedule the trainer runs all read it, so a schedule registered there is usable
everywhere."""

from __future__ import annotations

import pytest

from resnetv2.cli import build_parser
from resnetv2.config import ScheduleConfig, config_from_dict
from resnetv2.config.sections import ConfigError
from resnetv2.engine.schedules import StepSchedule, build_lr_controller
from resnetv2.lr_schedules import SCHEDULES, Schedule, anneal


def _config(name: str, **train) -> dict:
    return {"model": {"depth": 8}, "schedule": {"name": name}, "train": train}


def _parse(*flags: str):
    return build_parser("train").parse_args(["train", *flags])


def test_the_cli_offers_exactly_the_registry_keys():
    train = build_parser("train").commands["train"]
    choices = next(a.choices for a in train._actions if a.dest == "cfg__schedule__name")
    assert tuple(choices) == tuple(SCHEDULES)
    assert tuple(SCHEDULES) == ("constant", "cosine", "linear", "multistep", "onecycle", "plateau")


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_every_schedule_is_accepted_and_time_plans_those_of_progress(name):
    assert config_from_dict(_config(name)).schedule.name == name
    assert _parse("--schedule", name).cfg__schedule__name == name
    if SCHEDULES[name].of_progress:
        assert config_from_dict(_config(name, time="5m")).train.time == 300
        assert build_lr_controller(ScheduleConfig(name=name), 0.1, 2, 5).plateau is None
    else:
        with pytest.raises(ConfigError, match="--time .* cannot be planned"):
            config_from_dict(_config(name, time="5m"))
        assert build_lr_controller(ScheduleConfig(name=name), 0.1, 2, 5).plateau is not None


def test_a_mistyped_schedule_is_refused_naming_the_closest():
    with pytest.raises(ConfigError, match=r"schedule.name must be one of constant, cosine, "):
        config_from_dict(_config("step"))
    with pytest.raises(ConfigError, match=r"did you mean 'cosine'\?"):
        config_from_dict(_config("cosin"))


def test_the_time_refusal_names_the_schedules_it_can_plan():
    with pytest.raises(ConfigError) as refused:
        config_from_dict(_config("plateau", time="5m"))
    message = str(refused.value)
    assert "(schedule.name plateau / schedule.plateau)" in message
    assert message.endswith(
        "use --schedule cosine, constant, linear, multistep or onecycle with --time"
    )


def test_anneal_runs_from_start_to_end():
    for how in ("linear", "cos"):
        assert anneal(1.0, 0.0, 0.0, how) == 1.0 and anneal(1.0, 0.0, 1.0, how) == 0.0
        assert anneal(1.0, 0.0, 0.5, how) == pytest.approx(0.5)


def _halving(c, base_lr, step, total, warmup):
    return base_lr * 0.5 ** (step / total)


def test_a_registered_schedule_is_valid_planned_and_run(monkeypatch):
    """Registering a toy schedule is the whole change: the config and ``--schedule`` accept
    it, ``--time`` plans it, and ``StepSchedule`` runs the shared warm-up and then its shape;
    unregistered, it is refused again."""
    monkeypatch.setitem(SCHEDULES, "halving", Schedule(_halving))
    config = config_from_dict(_config("halving", time="90s"))
    assert config.schedule.name == "halving" and config.train.time == 90
    assert _parse("--schedule", "halving").cfg__schedule__name == "halving"
    schedule = StepSchedule(ScheduleConfig(name="halving", warmup_epochs=1), 0.1, 100, 10)
    assert schedule(0) == pytest.approx(0.01)  # the warm-up starts at a tenth of the lr
    assert schedule(50) == pytest.approx(0.1 * 0.5**0.5)
    assert schedule(100) == pytest.approx(0.05)

    monkeypatch.setitem(SCHEDULES, "halving", Schedule(_halving, warmup=False))
    assert StepSchedule(ScheduleConfig(name="halving", warmup_epochs=1), 0.1, 100, 10)(0) == 0.1

    monkeypatch.setitem(SCHEDULES, "halving", Schedule(_halving, of_progress=False))
    with pytest.raises(ConfigError, match=r"schedule.name plateau / schedule.name halving"):
        config_from_dict(_config("halving", time="90s"))
    assert build_lr_controller(ScheduleConfig(name="halving"), 0.1, 2, 5).plateau is not None

    monkeypatch.undo()
    with pytest.raises(ConfigError, match="schedule.name must be one of"):
        config_from_dict(_config("halving"))
