"""Shipped YAML recipes, config files, command-line overrides and YAML output."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from resnetv2.config.sections import DEFAULT_RECIPE, ConfigError, TrainConfig
from resnetv2.config.validate import config_from_dict, config_to_dict
from resnetv2.config.yamlfile import read_yaml_file
from resnetv2.errors import suggest


def list_recipes() -> list[str]:
    """Names of the shipped recipes (``resnetv2/recipes/*.yaml``)."""
    folder = resources.files("resnetv2") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def recipe_path(name: str) -> Path:
    """The YAML file of a shipped recipe."""
    names = list_recipes()
    if name not in names:
        raise ConfigError(
            f"unknown recipe {name!r}{suggest(name, names, cutoff=0.5)}; shipped: {names}"
        )
    return Path(str(resources.files("resnetv2") / "recipes" / f"{name}.yaml"))


def _read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    data = read_yaml_file(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Load and validate a YAML config file; error messages name the file."""
    try:
        return config_from_dict(_read_yaml(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_recipe(name: str = DEFAULT_RECIPE) -> TrainConfig:
    """Load a shipped recipe by name (``digits``, ``cifar-paper``, ``cifar-fast``, ``seed``)."""
    return load_config(recipe_path(name))


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """A copy of ``config`` with dotted-key overrides (``{"optim.lr": 0.05}``), validated.

    ``None`` values are skipped: they stand for command-line flags that were not given.
    """
    data = config_to_dict(config)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return config_from_dict(data)


def dump_yaml(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(config_to_dict(config), sort_keys=False)
