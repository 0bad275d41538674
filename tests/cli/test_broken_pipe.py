"""A command that prints, with a reader that has gone (``resnetv2 compare --json | head``):
exit 0 and nothing on stderr — no ``BrokenPipeError`` traceback, no "Exception ignored".
One command of each kind of output: a table, JSON, a report, streamed CSV rows and the
training log (summary and plot print through the same ``main``; all seven were checked by
hand)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnetv2.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch digits run (in-process) and an image to predict."""
    root = tmp_path_factory.mktemp("pipe")
    assert main(["train", "--epochs", "1", "--out", str(root / "run"), "--quiet"]) == 0
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a.png")
    return root


def _closed_stdout(argv: list[str]) -> tuple[int, str]:
    """Run ``resnetv2 ARGV`` with its stdout a pipe whose reading end is already closed, so
    its first write fails (deterministically, whatever the output's size)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "resnetv2", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    process.stdout.close()
    err = process.stderr.read().decode()
    return process.wait(timeout=300), err


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [
        ["depths"],
        ["compare", "{root}/run", "--json"],
        ["evaluate", "{root}/run", "--mistakes", "0", "--out", "{root}/eval"],
        ["predict", "{root}/run", "{root}/a.png"],
        ["train", "--epochs", "1", "--out", "{root}/train"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_closed_pipe_is_not_an_error(run, argv):
    code, err = _closed_stdout([a.format(root=run) for a in argv])
    assert (code, err) == (0, "")
