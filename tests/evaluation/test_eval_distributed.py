"""docs/reliability.md "eval" row: 2 processes (gloo on CPU), a dataset size not divisible by the batch
size or the world size — the merged result equals the single-process one exactly."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from resnetv2.evaluation import evaluate

WORKER = Path(__file__).with_name("dist_eval_worker.py")
WORLD = 2


def _load_worker():
    spec = importlib.util.spec_from_file_location("dist_eval_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_process_evaluation_equals_single_process(tmp_path):
    init = tmp_path / "init"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(rank), str(WORLD), str(init), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(WORLD)
    ]
    outputs = [p.communicate(timeout=200)[0] for p in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output
    worker = _load_worker()
    model, images, labels = worker.model_and_data()
    single = worker.summary(evaluate(model, (images, labels), batch_size=4))
    assert single["count"] == worker.N
    for rank in range(WORLD):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["padded_refused"], "a padding DistributedSampler would count samples twice"
        for key in ("tensors", "loader"):
            result = got[key]
            assert result["count"] == worker.N
            assert result["confusion"] == single["confusion"]
            assert result["top1"] == single["top1"] and result["top5"] == single["top5"]
            assert np.isclose(result["loss"], single["loss"], rtol=1e-12, atol=0)
