"""Time estimates: the expected run time after the first steps and the per-epoch ETA."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from resnetv2.engine import progress
from resnetv2.engine.progress import RunTimer, format_duration, format_summary

ROW = {
    "epoch": 3,
    "train_loss": 0.5,
    "train_acc": 0.8,
    "val_loss": 0.4,
    "val_acc": 0.85,
    "val_top5": 0.99,
    "lr": 0.1,
    "seconds": 12.0,
    "images_per_second": 1000.0,
}


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0 s"),
        (42.4, "42 s"),
        (89, "89 s"),
        (90, "2 min"),
        (1799, "30 min"),
        (3600, "1 h 00 min"),
        (5430, "1 h 30 min"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_summary_carries_the_eta_while_epochs_remain():
    assert format_summary(ROW, 10, False, eta=125).endswith("ETA 2 min")
    last = dict(ROW, epoch=10)
    assert "ETA" not in format_summary(last, 10, True, eta=0.0)
    assert "ETA" not in format_summary(ROW, 10, False)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", fake)
    return fake


def test_expected_time_after_the_first_steps(clock):
    timer = RunTimer(
        epochs=2,
        steps_per_epoch=100,
        start_epoch=0,
        start_position=0,
        batch_size=100,
        num_val=3000,
        session_started=40.0,  # 60 s of start-up before the loop
    )
    messages = []
    for step in range(1, 21):
        clock.now += 5.0 if step <= 3 else 1.0  # slow warm-up steps, then 1 s/step
        messages.append(timer.step())
    estimate = [m for m in messages if m]
    assert len(estimate) == 1 and messages[19] == estimate[0]
    # 60 s start-up + 15 s warm-up + 17 s since, then 180 steps at 1 s, plus validation:
    # 1 s / 100 images / 3 * 3000 images = 10 s per epoch, for 1.8 epochs left.
    expected = 60 + 15 + 17 + 180 + 10 * 1.8
    assert f"about {format_duration(expected)}" in estimate[0]
    assert "1000 ms/step over steps 4-20" in estimate[0]
    assert all(timer.step() is None for _ in range(50))  # said once


def test_short_runs_estimate_after_the_warm_up(clock):
    timer = RunTimer(
        epochs=1, steps_per_epoch=6, start_epoch=0, start_position=0, batch_size=8, num_val=8
    )
    said = []
    for _ in range(6):
        clock.now += 1.0
        said.append(timer.step())
    assert said[4] is not None and sum(m is not None for m in said) == 1


def test_eta_is_the_mean_epoch_time_times_epochs_left_and_elapsed_spans_resumes(clock):
    timer = RunTimer(
        epochs=10,
        steps_per_epoch=10,
        start_epoch=4,
        start_position=0,
        batch_size=10,
        num_val=10,
        elapsed_before=500.0,
    )
    clock.now += 30.0
    assert timer.end_epoch(5) == pytest.approx(30.0 * 5)
    clock.now += 50.0
    assert timer.end_epoch(6) == pytest.approx(40.0 * 4)
    assert timer.elapsed == pytest.approx(580.0)


def test_a_run_records_its_precision_and_prints_its_time_estimates(tmp_path, make_config):
    from resnetv2.engine import train
    from resnetv2.engine.precision import choose_precision

    run = tmp_path / "run"
    train(make_config(**{"train.epochs": 2, "train.amp": "auto"}), out=run, quiet=True)
    results = json.loads((run / "results.json").read_text())
    expected = choose_precision("auto", torch.device("cpu"))
    assert results["precision"] == expected.name
    assert results["precision_reason"] == expected.reason
    assert results["wall_seconds"] > 0
    log = (run / "train.log").read_text()
    assert f"precision: {expected.describe()}" in log
    assert "expected time for this run: about" in log
    first_epoch = next(line for line in log.splitlines() if "epoch 1/2" in line)
    assert "ETA " in first_epoch
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert 0 < float(rows[0]["elapsed"]) < float(rows[1]["elapsed"]) <= results["wall_seconds"]


def test_the_epoch_bar_shows_an_unknown_count_until_a_budget_plans_one():
    """Before a --time run's first plan the config's epochs are only a cap (1,000,000 by
    default): the bar says ``?``, then the planned count."""
    from resnetv2.engine.progress import EpochProgress

    bar = EpochProgress(0, None, steps=10, start=0, enabled=True)
    try:
        assert bar.bar.desc.startswith("epoch 1/?")
        bar.set_epochs(37)
        assert bar.bar.desc.startswith("epoch 1/37")
    finally:
        bar.close()
    assert EpochProgress(2, 5, steps=10, start=0, enabled=False).bar is None
