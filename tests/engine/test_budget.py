"""--time budgets: plan arithmetic, re-planning under a fake clock, exact resume, refusals."""

import json
import math
import sys

import pytest
import torch

from resnetv2.cli import main
from resnetv2.config import ConfigError, ScheduleConfig, apply_overrides
from resnetv2.config.duration import parse_duration
from resnetv2.engine import budget, train
from resnetv2.engine.budget import BudgetPlanner
from resnetv2.engine.schedules import StepSchedule
from resnetv2.io import CheckpointManager


class FakeClock:
    """Time that passes only where the planner records an event: ``step`` seconds per
    training step, ``val`` per validation, nothing elsewhere — the same in every process."""

    def __init__(self, step: float = 0.05, val: float = 0.2) -> None:
        self.t = 1000.0
        self.step = step
        self.val = val

    def __call__(self) -> float:
        event = sys._getframe(2).f_code.co_name  # now() <- _tick() <- the planner's event
        if event == "after_step":
            self.t += self.step
        elif event == "end_validation":
            self.t += self.val
        return self.t


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(budget, "now", fake)
    return fake


# ---------------------------------------------------------------------------- durations
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1.5h", 5400), ("1h30m", 5400), ("45", 45), (12.5, 12.5)],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "-5m", "0", "m", "10m5", "nan", "inf", True, "99d"])
def test_bad_durations_name_the_flag_and_the_forms(text):
    with pytest.raises(ConfigError, match=r"--time \(train\.time\) must be a duration such as"):
        parse_duration(text)


# ---------------------------------------------------------------------------- the plan
def _simulate(
    planner: BudgetPlanner,
    clock: FakeClock,
    *,
    slow_from: int | None = None,
    checkpoint_cost: float | None = None,
):
    """Drive the planner like the trainer does (with checkpoints of ``checkpoint_cost``
    seconds when given); return the steps run."""
    step = 0
    planner.begin_session(0)
    while planner.planned_steps is None or step < planner.planned_steps:
        if slow_from is not None and step == slow_from:
            clock.step *= 2
        step += 1
        planner.after_step(step)
        if planner.planned_steps is not None and step >= planner.planned_steps:
            break
        if step % planner.steps_per_epoch == 0:
            planner.begin_validation()
            planner.end_validation()
            planner.end_epoch(step)
            if checkpoint_cost is not None:
                planner.begin_checkpoint()
                clock.t += checkpoint_cost
                planner.end_checkpoint()
    return step


def test_the_first_plan_fills_the_budget_exactly(clock):
    planner = BudgetPlanner(
        60.0, steps_per_epoch=50, max_steps=10**6, batch_size=100, num_val=900, started=clock()
    )
    planner.begin_session(0)
    for step in range(1, 21):
        planned = planner.after_step(step)
    assert planned and planner.plans == 1
    assert planner.step_seconds == pytest.approx(0.05)
    # Validation estimated as a third of a step per batch; a guessed checkpoint; the reserve.
    per_val = 0.05 / 100 * 900 / 3 + BudgetPlanner.CHECKPOINT_GUESS
    available = 60.0 - (clock.t - 1000.0) - planner.finish_seconds

    def cost(total):
        steps = total - 20
        return steps * 0.05 + math.ceil(total / 50) * per_val

    assert cost(planner.planned_steps) <= available < cost(planner.planned_steps + 1)
    assert "budget 60 s:" in planner.describe() and "epochs × 50 steps" in planner.describe()


@pytest.mark.parametrize("change", ["slow-down", "speed-up"])
def test_replanning_follows_a_change_of_speed(clock, change):
    planner = BudgetPlanner(
        120.0, steps_per_epoch=40, max_steps=10**6, batch_size=64, num_val=200, started=clock()
    )
    planner.begin_session(0)
    for step in range(1, 41):
        planner.after_step(step)
    first = planner.planned_steps
    clock.step = 0.1 if change == "slow-down" else 0.025
    for step in range(41, 81):
        planner.after_step(step)
    planner.begin_validation()
    planner.end_validation()
    planner.end_epoch(80)
    assert planner.plans >= 2
    assert (
        (planner.planned_steps < first)
        if change == "slow-down"
        else (planner.planned_steps > first)
    )


@pytest.mark.parametrize("slow_from", [None, 300])
def test_a_simulated_run_ends_within_the_budget(clock, slow_from):
    planner = BudgetPlanner(
        60.0, steps_per_epoch=100, max_steps=10**6, batch_size=64, num_val=500, started=clock()
    )
    steps = _simulate(planner, clock, slow_from=slow_from)
    assert steps == planner.planned_steps
    used = clock.t - 1000.0 + clock.val  # the cut epoch's validation still runs
    assert 0.9 * 60 <= used + planner.finish_seconds <= 60.0 + clock.step * 2


def test_the_epoch_cap_limits_the_plan(clock):
    planner = BudgetPlanner(
        3600.0, steps_per_epoch=10, max_steps=30, batch_size=64, num_val=100, started=clock()
    )
    planner.begin_session(0)
    for step in range(1, 16):  # a 30-step run plans half-way at the latest
        planner.after_step(step)
    assert planner.planned_steps == 30 and planner.capped
    assert "capped by --epochs" in planner.describe()


# ---------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("name", ["cosine", "linear", "onecycle", "multistep", "constant"])
def test_a_replan_changes_only_the_rest_of_the_schedule(name):
    schedule = StepSchedule(ScheduleConfig(name=name, warmup_epochs=0), 0.1, 10**6, 10)
    schedule.replan(20, 200, first=True)  # the first plan sets the length
    assert schedule.total_steps == 200
    before = schedule(100)
    schedule.replan(100, 400)  # longer: the rate goes on from where it is
    assert schedule(100) == before
    assert schedule(101) == pytest.approx(before, rel=0.05, abs=1e-4)
    end = StepSchedule(ScheduleConfig(name=name, warmup_epochs=0), 0.1, 200, 10)(200)
    assert schedule(400) == pytest.approx(end)  # completed on the new last step
    if name != "constant":
        assert schedule(400) <= 0.1 * 0.1  # annealed, not cut


# ---------------------------------------------------------------------------- training
def _budget_config(make_config, seconds, **overrides):
    return make_config(
        **{"train.time": seconds, "train.epochs": 1000, "schedule.warmup_epochs": 0, **overrides}
    )


def test_a_budgeted_run_plans_replans_and_ends_annealed(tmp_path, make_config, clock):
    config = _budget_config(make_config, 12)
    result = train(config, out=tmp_path / "run", progress=False, quiet=True)
    plan = result.results["budget"]
    assert plan["budget_seconds"] == 12 and plan["plans"] >= 2
    last = CheckpointManager(tmp_path / "run" / "checkpoints").load_latest()
    assert last.step == plan["planned_steps"]
    assert result.history[-1]["lr"] <= 0.1 * max(r["lr"] for r in result.history)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "budget 12 s:" in log and "re-plan after epoch 2:" in log
    assert clock.t - 1000.0 <= 12.0  # the fake time the run spent (no start-up here)


def test_resume_mid_budget_is_bit_exact(tmp_path, make_config, clock):
    config = _budget_config(make_config, 10)
    straight = train(config, out=tmp_path / "a", progress=False, quiet=True)
    paused = train(config, out=tmp_path / "b", progress=False, quiet=True, stop_after_epochs=2)
    assert paused.paused
    resumed = train(config, resume=tmp_path / "b", progress=False, quiet=True)
    a = CheckpointManager(tmp_path / "a" / "checkpoints").load_latest()
    b = CheckpointManager(tmp_path / "b" / "checkpoints").load_latest()
    assert a.step == b.step == straight.results["budget"]["planned_steps"]
    assert straight.results["budget"] == resumed.results["budget"]
    for key, tensor in a.model_state.items():
        assert torch.equal(tensor, b.model_state[key]), key
    assert [r["lr"] for r in straight.history] == [r["lr"] for r in resumed.history]


def test_a_budget_with_reduce_on_plateau_is_refused(make_config):
    with pytest.raises(ConfigError, match="--time .* cannot be planned: use --schedule cosine"):
        apply_overrides(make_config(), {"train.time": "5m", "schedule.name": "plateau"})


def test_the_cli_refuses_a_bad_duration_in_one_line(capsys):
    assert main(["train", "--time", "ten minutes"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--time (train.time) must be a duration" in err


def test_time_lifts_the_recipes_epochs_unless_epochs_is_given():
    from resnetv2.cli import build_parser
    from resnetv2.cli.train import build_config
    from resnetv2.config.validate import MAX_EPOCHS

    parser = build_parser()
    config = build_config(parser.parse_args(["train", "--time", "10m"]))
    assert config.train.time == 600 and config.train.epochs == MAX_EPOCHS
    config = build_config(parser.parse_args(["train", "--time", "1.5h", "--epochs", "7"]))
    assert config.train.time == 5400 and config.train.epochs == 7


def test_results_json_records_the_budget(tmp_path, make_config, clock):
    train(_budget_config(make_config, 6), out=tmp_path / "run", progress=False, quiet=True)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(results["budget"]) >= {"budget_seconds", "planned_epochs", "planned_steps"}
    assert results["epochs"] == math.ceil(results["budget"]["planned_epochs"])


def test_a_plan_shorter_than_the_warm_up_still_anneals():
    schedule = StepSchedule(ScheduleConfig(name="cosine", warmup_epochs=1), 0.1, 10**6, 100)
    schedule.replan(20, 60, first=True)
    assert schedule(60) <= 0.1 * 0.1 and max(schedule(s) for s in range(61)) == pytest.approx(0.1)


def test_resuming_a_plain_run_with_more_epochs_stretches_its_schedule(tmp_path, make_config):
    config = make_config(**{"train.epochs": 2, "schedule.warmup_epochs": 0})
    train(config, out=tmp_path / "r", progress=False, quiet=True, stop_after_epochs=1)
    longer = apply_overrides(config, {"train.epochs": 4})
    result = train(longer, resume=tmp_path / "r", progress=False, quiet=True)
    lrs = [row["lr"] for row in result.history]
    assert len(lrs) == 4 and lrs[1] > 0.5 * lrs[0] and lrs[2] > 0.1 * lrs[0]


def test_a_checkpoint_cost_is_budgeted(clock):
    planner = BudgetPlanner(
        60.0, steps_per_epoch=50, max_steps=10**6, batch_size=64, num_val=300, started=clock()
    )
    _simulate(planner, clock, checkpoint_cost=2.0)  # a slow disk: every checkpoint costs 2 s
    used = clock.t - 1000.0 + clock.val + 2.0  # the last epoch's validation and checkpoint
    assert used + planner.finish_seconds <= 60.0 + clock.step


def test_a_long_epoch_is_replanned_before_it_ends(clock):
    planner = BudgetPlanner(
        300.0, steps_per_epoch=10_000, max_steps=10**6, batch_size=64, num_val=100, started=clock()
    )
    planner.begin_session(0)
    step = 0
    for step in range(1, 201):
        planner.after_step(step)
    first = planner.planned_steps
    clock.step *= 2  # the machine halves its speed in the middle of the (only) epoch
    replanned_at = None
    while step < 5000 and replanned_at is None:
        step += 1
        if planner.after_step(step) and planner.planned_steps < 0.8 * first:
            replanned_at = step
    assert replanned_at is not None and replanned_at - 200 <= 2 * planner.replan_every()


def test_a_sudden_slow_down_is_replanned_within_seconds(clock):
    planner = BudgetPlanner(
        1000.0, steps_per_epoch=10_000, max_steps=10**6, batch_size=64, num_val=100, started=clock()
    )
    planner.begin_session(0)
    for step in range(1, 201):
        planner.after_step(step)
    first = planner.planned_steps
    clock.step = 2.0  # 40x slower at once: the step-count trigger alone would wait minutes
    step, waited = 200, 0.0
    while planner.planned_steps >= 0.5 * first:
        step += 1
        planner.after_step(step)
        waited += clock.step
    assert waited <= planner.replan_seconds + 3 * clock.step


def _mid_epoch_plans(planner: BudgetPlanner, clock: FakeClock) -> list[int]:
    """Plans made in one long epoch whose speed is steady on average but noisy: blocks of 50
    steps alternately 15 % faster and slower than 0.1 s (a shared VM's few-second jitter)."""
    planner.begin_session(0)
    plans = []
    for step in range(1, 3001):
        clock.step = 0.1 * (1.15 if (step // 50) % 2 else 0.85)
        if planner.after_step(step) and step > 500:
            plans.append(planner.planned_steps)
    return plans


def test_noise_between_replans_does_not_swing_the_plan(clock, monkeypatch):
    def planner():
        return BudgetPlanner(
            600.0, steps_per_epoch=5000, max_steps=10**6, batch_size=64, num_val=100,
            started=clock(),
        )  # fmt: skip

    plans = _mid_epoch_plans(planner(), clock)
    assert len(plans) >= 10
    assert max(plans) / min(plans) < 1.03
    # The same noise, planned from each window alone (no steady band), swings the plan.
    monkeypatch.setattr(BudgetPlanner, "STEADY_BAND", 0.0)
    clock.t = 1000.0
    raw = _mid_epoch_plans(planner(), clock)
    assert max(raw) / min(raw) > 1.1
