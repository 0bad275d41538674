"""Learning-rate schedules (pure functions of the step) and reduce-on-plateau."""

import math

import pytest

from resnetv2.config import PlateauConfig, ScheduleConfig
from resnetv2.engine.schedules import ReduceOnPlateau, StepSchedule, build_lr_controller


def schedule(name, epochs=10, steps=10, **kw):
    return StepSchedule(ScheduleConfig(name=name, **kw), 0.1, epochs * steps, steps)


def test_multistep_divides_by_ten_at_half_and_three_quarters():
    s = schedule("multistep", epochs=164, steps=391)
    total = 164 * 391
    assert s(0) == pytest.approx(0.1)
    assert s(total // 2 - 1) == pytest.approx(0.1)
    assert s(total // 2) == pytest.approx(0.01)
    assert s(math.ceil(0.75 * total)) == pytest.approx(0.001)


def test_constant_warmup_holds_the_papers_0_01_then_returns_to_the_base_lr():
    s = schedule("multistep", warmup_epochs=1, warmup="constant", warmup_lr=0.01)
    assert [s(0), s(9)] == [pytest.approx(0.01)] * 2
    assert s(10) == pytest.approx(0.1)


def test_cosine_with_linear_warmup():
    s = schedule("cosine", warmup_epochs=2, warmup_lr=0.0)
    assert s(0) == 0.0 and s(10) == pytest.approx(0.05)
    assert s(20) == pytest.approx(0.1)
    assert s(60) == pytest.approx(0.05)  # half-way through the cosine part
    assert s(100) == pytest.approx(0.0, abs=1e-12)


def test_onecycle_peaks_at_pct_start_and_ends_low():
    s = schedule("onecycle", pct_start=0.3, div_factor=10, final_div=100, anneal="linear")
    assert s(0) == pytest.approx(0.01)
    assert s(30) == pytest.approx(0.1)
    assert max(s(i) for i in range(100)) == pytest.approx(0.1)
    assert s(100) == pytest.approx(0.1 / 10 / 100)


def test_plateau_reduces_after_patience_then_respects_cooldown_and_min_lr():
    p = ReduceOnPlateau(
        PlateauConfig(
            monitor="val_loss", factor=0.5, patience=2, cooldown=2, min_lr=0.02, min_delta=0.0
        )
    )
    assert not p.step(1.0, 0.1)  # first value: improvement
    assert not p.step(1.0, 0.1)  # wait 1
    assert p.step(1.0, 0.1)  # wait 2 == patience: reduce
    assert p.clamp(0.1) == pytest.approx(0.05)
    # Keras' counting: two cooldown epochs, during which waiting starts over.
    assert not p.step(1.0, 0.05)
    assert not p.step(1.0, 0.05)
    assert p.step(1.0, 0.05)
    assert p.clamp(0.1) == pytest.approx(0.025)
    for _ in range(10):
        p.step(1.0, p.clamp(0.1))
    assert p.clamp(0.1) == pytest.approx(0.02)  # never below min_lr
    state = p.state_dict()
    q = ReduceOnPlateau(p.config)
    q.load_state_dict(state)
    assert q.state_dict() == state


def test_plateau_on_accuracy_counts_improvement_upwards():
    p = ReduceOnPlateau(PlateauConfig(monitor="val_acc", factor=0.1, patience=1))
    assert not p.step(0.5, 0.1)
    assert not p.step(0.6, 0.1)
    assert p.step(0.6, 0.1)


def test_plateau_schedule_name_enables_the_multiplier():
    controller = build_lr_controller(ScheduleConfig(name="plateau"), 0.1, 5, 4)
    assert controller.plateau is not None and controller.lr_at(19) == pytest.approx(0.1)


def test_linear_to_zero_after_warmup_is_a_function_of_progress():
    # Li, Yumer & Ramanan 2020: lr falls linearly to zero at the last step.
    s = schedule("linear", warmup_epochs=2, warmup_lr=0.0)
    assert s(0) == 0.0 and s(10) == pytest.approx(0.05)
    assert s(20) == pytest.approx(0.1)
    assert s(60) == pytest.approx(0.05)  # half-way through the decay: half the lr
    assert s(80) == pytest.approx(0.025)
    assert s(100) == 0.0
    # the same fraction of a longer run gives the same lr
    longer = schedule("linear", epochs=20, warmup_epochs=4, warmup_lr=0.0)
    assert longer(120) == pytest.approx(s(60))
    assert schedule("linear", min_lr=0.01)(100) == pytest.approx(0.01)
