"""build_run: the parts of a run, built from a config alone and frozen."""

import dataclasses
import logging

import pytest
import torch

from resnetv2.engine.distributed import DistContext
from resnetv2.engine.setup import RunParts, build_run

LOG = logging.getLogger("test-setup")


def _build(tmp_path, config, **kwargs):
    return build_run(
        config, device=torch.device("cpu"), ctx=DistContext(), run_dir=tmp_path, log=LOG, **kwargs
    )


def test_build_run_needs_no_trainer_and_its_parts_agree(tmp_path, make_config):
    parts = _build(tmp_path, make_config(**{"train.ema": True}))
    assert isinstance(parts, RunParts)
    assert parts.steps_per_epoch == len(parts.train_loader) == 23  # 1438 digits / 64
    assert parts.model.spec == parts.spec and parts.resume_key["spec"] == parts.spec.to_dict()
    assert parts.num_params == sum(p.numel() for p in parts.model.parameters())
    assert parts.ema is not None and parts.ema.module is not parts.model
    optimised = {id(p) for g in parts.optimizer.param_groups for p in g["params"]}
    assert optimised == {id(p) for p in parts.model.parameters()}
    assert parts.forward_model is parts.model  # one process, no torch.compile
    assert parts.checkpoints.directory == tmp_path / "checkpoints"
    assert parts.budget is None and parts.early_stopping is None and parts.init_info is None
    assert parts.amp == parts.precision.autocast


def test_run_parts_are_frozen(tmp_path, make_config):
    parts = _build(tmp_path, make_config())
    with pytest.raises(dataclasses.FrozenInstanceError):
        parts.model = torch.nn.Linear(1, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parts.global_step = 3  # nothing can hang new attributes on them either
    changed = dataclasses.replace(parts, channels_last=not parts.channels_last)
    assert changed.model is parts.model and changed.channels_last != parts.channels_last


def test_build_run_trains_on_a_given_bundle_without_loading_the_config_data(tmp_path, make_config):
    first = _build(tmp_path / "a", make_config())
    config = make_config(**{"data.source": str(tmp_path / "no-such-folder")})
    parts = _build(tmp_path / "b", config, data=first.data)
    assert parts.data is first.data and parts.steps_per_epoch == first.steps_per_epoch


def test_a_budget_gets_a_planner_counting_from_the_given_clock(tmp_path, make_config):
    parts = _build(tmp_path, make_config(**{"train.time": 60.0}), clock_started=-5.0)
    budget = parts.budget
    assert budget is not None and budget.budget == 60.0 and budget.session_start == -5.0
    assert budget.steps_per_epoch == parts.steps_per_epoch
    assert budget.max_steps == parts.config.train.epochs * parts.steps_per_epoch
