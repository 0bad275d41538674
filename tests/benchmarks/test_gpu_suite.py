"""The GPU suite's smoke mode runs every step of the script on a CPU in seconds."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def make_folder(root: Path, classes: int = 2, per_class: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            pixels[..., c] = 255  # a learnable cue per class
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.mark.slow
def test_smoke_mode_runs_the_whole_suite(tmp_path):
    data = make_folder(tmp_path / "data")
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, XDG_CACHE_HOME=str(tmp_path))
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "--smoke", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=700,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done; results in" in done.stdout
    rows = list(csv.DictReader((out / "time-to-accuracy" / "time_to_accuracy.csv").open()))
    assert [r["label"] for r in rows] == ["cifar-fast"] and rows[0]["epoch"] == "1"
    assert (out / "time-to-accuracy" / "time_to_accuracy.png").stat().st_size > 0
    throughput = (out / "throughput.txt").read_text()
    assert "preresnet164 32x32" in throughput and "resnetv2_50 224x224" in throughput
    assert throughput.count("bf16+CL") == 2  # eager only in smoke mode


def test_without_a_gpu_the_full_suite_refuses_with_a_hint(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable)
    env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no CUDA device" in done.stderr and "--smoke" in done.stderr
