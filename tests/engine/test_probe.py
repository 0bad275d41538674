"""The machine probe: which settings it times, how it decides, and that it changes nothing."""

import json

import pytest
import torch

from resnetv2 import create_model
from resnetv2.engine import probe, train
from resnetv2.engine.probe import Setting


def test_candidates_leave_out_what_the_user_set():
    current = Setting(True, 2)
    assert probe.candidates(current, tune_format=True, tune_threads=True, cores=2) == [
        Setting(True, 2),
        Setting(True, 1),
        Setting(False, 2),
        Setting(False, 1),
    ]
    # --channels-last on|off: the format is the user's; --threads N: so are the threads.
    assert probe.candidates(current, tune_format=False, tune_threads=True, cores=2) == [
        Setting(True, 2),
        Setting(True, 1),
    ]
    assert probe.candidates(current, tune_format=True, tune_threads=False, cores=2) == [
        Setting(True, 2),
        Setting(False, 2),
    ]
    assert probe.candidates(Setting(False, 1), tune_format=False, tune_threads=True, cores=1) == [
        Setting(False, 1)
    ]


def test_the_current_setting_stays_unless_another_is_clearly_faster():
    current, other = Setting(True, 2), Setting(False, 1)
    assert probe.choose({current: 0.100, other: 0.098}, current) == current  # within noise
    assert probe.choose({current: 0.100, other: 0.090}, current) == other
    assert probe.choose({current: 0.080, other: 0.090}, current) == current


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"setting": "off"}, "--no-tune"),
        ({"device": torch.device("cuda")}, "cuda runs"),
        ({"deterministic": True}, "--deterministic"),
        ({"resuming": True}, "resumed runs"),
        ({"total_steps": 999}, "a short run (999 steps)"),
        ({"world_size": 2}, "multi-process runs"),
    ],
)
def test_when_the_probe_does_not_run(kwargs, reason):
    base = {
        "setting": "auto",
        "device": torch.device("cpu"),
        "deterministic": False,
        "resuming": False,
        "total_steps": 5000,
        "budget": None,
        "world_size": 1,
    }
    assert reason in probe.should_probe(**{**base, **kwargs})
    assert probe.should_probe(**base) is None
    assert probe.should_probe(**{**base, "total_steps": 10, "budget": 60.0}) is None
    assert probe.should_probe(**{**base, "total_steps": 10, "setting": "on"}) is None


def test_the_probe_times_every_option_and_leaves_the_model_alone():
    model = create_model(8, widths=(4, 8, 16), num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    rng = torch.get_rng_state()
    options = [Setting(True, 1), Setting(False, 1)]
    result = probe.probe(
        model, options[0], options, batch_shape=(8, 3, 16, 16), num_classes=3, amp=False, limit=30
    )
    assert result.skipped is None and set(result.timings) == set(options)
    assert result.chosen in options and all(t > 0 for t in result.timings.values())
    assert "machine probe (" in result.describe() and "ms/step" in result.describe()
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # BN statistics included
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)


def test_a_probe_over_its_limit_keeps_the_current_setting():
    model = create_model(8, widths=(4, 8, 16), num_classes=3)
    options = [Setting(True, 1), Setting(False, 1)]
    result = probe.probe(
        model, options[0], options, batch_shape=(8, 3, 16, 16), num_classes=3, amp=False, limit=0
    )
    assert result.chosen == options[0] and "over its 0.0 s limit" in result.describe()


def test_a_run_records_the_probe_and_a_resume_keeps_its_choice(tmp_path, make_config, monkeypatch):
    forced = Setting(False, 1)  # whatever the machine measures, the probe "chooses" NCHW
    monkeypatch.setattr(probe, "choose", lambda timings, current: forced)
    config = make_config(
        **{"train.tune": "on", "train.deterministic": False, "train.threads": None}
    )
    paused = train(config, out=tmp_path / "r", progress=False, quiet=True, stop_after_epochs=1)
    assert paused.paused
    assert "machine probe (" in (tmp_path / "r" / "train.log").read_text()
    result = train(config, resume=tmp_path / "r", progress=False, quiet=True)
    tuning = json.loads((tmp_path / "r" / "results.json").read_text())["tuning"]
    assert tuning["channels_last"] is False and tuning["threads"] == 1
    assert result.results["tuning"] == tuning


def test_the_probe_does_not_start_a_warm_up_step_that_would_end_past_its_limit(monkeypatch):
    """On a fake clock each step takes 0.2 s and the limit is 0.5 s: two warm-up steps end at
    0.4 s and a third would end at 0.6 s, so the probe stops after two, within its limit."""
    clock = [0.0]

    class FakeTime:
        @staticmethod
        def perf_counter():
            return clock[0]

    def step(*args, **kwargs):
        clock[0] += 0.2
        return 0.2

    monkeypatch.setattr(probe, "time", FakeTime)
    monkeypatch.setattr(probe, "timed_step", step)
    model = create_model(8, widths=(4, 8, 16), num_classes=3)
    options = [Setting(True, 1), Setting(False, 1), Setting(True, 2)]
    result = probe.probe(
        model, options[0], options, batch_shape=(8, 3, 16, 16), num_classes=3, amp=False, limit=0.5
    )
    assert clock[0] == pytest.approx(0.4)  # two steps taken, not three
    assert result.seconds <= 0.5 and result.chosen == options[0] and result.skipped is not None
