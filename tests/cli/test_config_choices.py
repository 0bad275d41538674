"""Choices a config file names are checked against their registries at validation, before any
data is read: a typo is refused in one line that names the closest valid value."""

import pytest

from resnetv2.cli import main
from resnetv2.config import config_from_dict
from resnetv2.config.sections import ConfigError
from resnetv2.data.augment import AUGMENTATIONS


def test_a_mistyped_augmentation_in_a_yaml_config_is_refused_before_the_data(tmp_path, capsys):
    # The source does not exist: had the data been read first, that would be the error.
    config = tmp_path / "typo.yaml"
    config.write_text(
        "model:\n  depth: 8\ndata:\n  source: /nonexistent/folder\n  augment: cutot\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "data.augment" in err and "did you mean 'cutout'" in err
    assert "nonexistent" not in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def _config(augment: str) -> dict:
    return {"model": {"depth": 8}, "data": {"augment": augment}}


def test_every_registered_augmentation_and_auto_are_accepted():
    for name in ("auto", *AUGMENTATIONS):
        assert config_from_dict(_config(name)).data.augment == name


def test_the_allowed_values_are_the_registry_keys(monkeypatch):
    """A preset added to the registry is accepted with no change to the config code."""
    import resnetv2.data.augment as augment

    with pytest.raises(ConfigError, match="must be one of"):
        config_from_dict(_config("mixup"))
    monkeypatch.setattr(augment, "AUGMENTATIONS", (*AUGMENTATIONS, "mixup"))
    assert config_from_dict(_config("mixup")).data.augment == "mixup"
