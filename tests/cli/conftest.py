"""Fixtures the command-line fault tests share: a tiny trained run, an image, class folders."""

import numpy as np
import pytest
from PIL import Image

from resnetv2.cli import main

TINY = ["--depth", "8", "--widths", "4,8,16", "--threads", "1", "--quiet", "--epochs", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder trained for one epoch on digits by the tiny net (once per module)."""
    folder = tmp_path_factory.mktemp("out") / "run"
    assert main(["train", *TINY, "--out", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """An 8x8 grayscale PNG: the digits model's own input size."""
    path = tmp_path_factory.mktemp("img") / "digit.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    return path


def write_class_folder(root, classes=("a", "b"), per_class=6, seed=0, size=8):
    """``root/<class>/<i>.png`` with random RGB pixels; returns ``root``."""
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def make_folder():
    """:func:`write_class_folder`, for tests that build class folders."""
    return write_class_folder


@pytest.fixture
def one_line_error(capsys):
    """``check(*needles)``: the command printed exactly one ``error:`` line, no traceback, and
    the line holds every needle; returns the line."""

    def check(*needles):
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and "Traceback" not in err, err
        for needle in needles:
            assert needle in errors[0], errors[0]
        return errors[0]

    return check
