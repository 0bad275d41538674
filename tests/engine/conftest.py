"""Tiny training configs: a depth-8 net with 4-16 channels on digits trains an epoch in ~1 s."""

import pytest

from resnetv2.config import apply_overrides, load_recipe


def tiny_config(**overrides):
    base = {
        "model.depth": 8,
        "model.options": {"widths": [4, 8, 16]},
        "train.epochs": 2,
        "train.threads": 1,
        "train.deterministic": True,
        "data.batch_size": 64,
    }
    return apply_overrides(load_recipe("digits"), {**base, **overrides})


@pytest.fixture
def make_config():
    return tiny_config
