"""Training configuration: typed sections, YAML recipes, strict validation, overrides.

A training run is described by one :class:`TrainConfig` with five sections — ``model``
(preset/depth plus any :func:`resnetv2.make_spec` option), ``data``, ``optim``, ``schedule``
and ``train`` (plus ``callbacks``). Recipes are YAML files with the same sections; the shipped
ones live in ``resnetv2/recipes/`` (``list_recipes()``). Loading is strict (promise 6 of
docs/reliability.md): an unknown key at any level is an error that suggests the nearest valid
key, a value of the wrong type is an error naming the field, and the architecture is resolved
with :func:`make_spec` before anything is allocated. The resolved config is written to each
run folder as ``config.yaml`` and can be fed back with ``--config``.
"""

from resnetv2.config.recipes import (
    apply_overrides,
    dump_yaml,
    list_recipes,
    load_config,
    load_recipe,
    recipe_path,
)
from resnetv2.config.sections import (
    DEFAULT_RECIPE,
    HEAD_OPTION_NAMES,
    BudgetNet,
    CallbacksConfig,
    ConfigError,
    DataConfig,
    EarlyStoppingConfig,
    ModelConfig,
    OptimConfig,
    PlanSection,
    PlateauConfig,
    ScheduleConfig,
    TrainConfig,
    TrainSection,
)
from resnetv2.config.validate import config_from_dict, config_to_dict

__all__ = [
    "BudgetNet",
    "DEFAULT_RECIPE",
    "HEAD_OPTION_NAMES",
    "dump_yaml",
    "CallbacksConfig",
    "ConfigError",
    "DataConfig",
    "EarlyStoppingConfig",
    "ModelConfig",
    "OptimConfig",
    "PlanSection",
    "PlateauConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainSection",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "list_recipes",
    "load_config",
    "load_recipe",
    "recipe_path",
]
