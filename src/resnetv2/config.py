"""Training configuration: typed sections, YAML recipes, strict validation, overrides.

A training run is described by one :class:`TrainConfig` with five sections — ``model``
(preset/depth plus any :func:`resnetv2.make_spec` option), ``data``, ``optim``, ``schedule``
and ``train`` (plus ``callbacks``). Recipes are YAML files with the same sections; the shipped
ones live in ``resnetv2/recipes/`` (``list_recipes()``). Loading is strict (promise 6 of
``RELIABILITY.md``): an unknown key at any level is an error that suggests the nearest valid
key, a value of the wrong type is an error naming the field, and the architecture is resolved
with :func:`make_spec` before anything is allocated. The resolved config is written to each
run folder as ``config.yaml`` and can be fed back with ``--config``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from resnetv2.errors import ResNetV2Error

__all__ = [
    "CallbacksConfig",
    "ConfigError",
    "DataConfig",
    "EarlyStoppingConfig",
    "ModelConfig",
    "OptimConfig",
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

DEFAULT_RECIPE = "digits"


class ConfigError(ResNetV2Error, ValueError):
    """A recipe or config is invalid: unknown key, wrong type or out-of-range value."""


@dataclass
class ModelConfig:
    """The architecture: a preset or a depth, plus any spec option (``resnetv2 depths``).

    ``options`` holds :func:`resnetv2.make_spec` options (``widths``, ``block``,
    ``drop_path_rate``...). ``num_classes`` and ``in_channels`` default to the data's.

    Fine-tuning (the seed tutorial's two modes, :mod:`resnetv2.finetune`): ``init_weights``
    is a weights file, a run folder, ``timm:NAME`` or ``pytorchcv:NAME``
    (:func:`resnetv2.convert.load_init_weights`). Without a preset, depth or backbone option
    the architecture is the weights' own. The model always gets a new classifier head for
    the data's classes (``options.head: dense`` for the tutorial's dense head).
    ``freeze: backbone`` trains the head only (frozen BatchNorm keeps its statistics);
    ``none`` trains everything, the pretrained layers at ``backbone_lr_scale`` × the lr.
    """

    preset: str | None = None
    depth: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    init_weights: str | None = None
    freeze: Literal["backbone", "none"] = "none"
    backbone_lr_scale: float = 1.0

    def architecture_given(self) -> bool:
        """Whether a preset, depth or backbone option is set (not only head options)."""
        return (
            self.preset is not None
            or self.depth is not None
            or any(k not in HEAD_OPTION_NAMES for k in self.options)
        )


#: ``model.options`` that describe the classifier head only; with ``init_weights`` they
#: shape the new head and leave the pretrained backbone's architecture alone.
HEAD_OPTION_NAMES = frozenset(
    {"head", "head_hidden", "head_dropout", "dropout", "classifier", "num_classes", "in_channels"}
)


@dataclass
class DataConfig:
    """Where the images come from and how batches are made (see ``docs/data.md``).

    ``image_size`` (``PX`` or ``[H, W]``) resizes every image; ``mean``/``std`` (both or
    neither) fix the normalisation instead of measuring it on the training split. With
    ``model.init_weights`` all three default to the weights' preprocessing metadata.
    """

    source: str = "digits"
    val_data: str | None = None
    val_split: float | None = None
    data_dir: str | None = None
    download: bool = False
    image_size: int | list[int] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    augment: str = "auto"
    batch_size: int = 128
    eval_batch_size: int | None = None
    workers: int = 0
    drop_last: bool = False


@dataclass
class OptimConfig:
    """Optimiser. Weight decay never applies to norm layers or biases."""

    name: Literal["sgd", "adamw", "adam"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    amsgrad: bool = False
    decay_norm_and_bias: bool = False


@dataclass
class PlateauConfig:
    """Reduce the learning rate when a metric stops improving (Keras' ReduceLROnPlateau)."""

    monitor: Literal["val_loss", "val_acc"] = "val_loss"
    factor: float = 0.1
    patience: int = 10
    min_delta: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, evaluated at every optimiser step.

    ``multistep`` milestones are fractions of the run (He et al.: ``[0.5, 0.75]``, lr ÷10);
    ``warmup_epochs`` of ``linear`` warm-up ramp from ``warmup_lr`` to the base lr, while
    ``constant`` warm-up holds ``warmup_lr`` (He et al.'s 0.01 for ResNet-1001).
    ``onecycle`` ramps up over ``pct_start`` of the run and anneals to ``lr / final_div``.
    ``plateau`` (also usable with any name) multiplies the lr when a metric stalls.
    """

    name: Literal["constant", "cosine", "multistep", "onecycle", "plateau"] = "cosine"
    warmup_epochs: float = 0.0
    warmup: Literal["linear", "constant"] = "linear"
    warmup_lr: float | None = None
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    gamma: float = 0.1
    min_lr: float = 0.0
    pct_start: float = 0.25
    div_factor: float = 25.0
    final_div: float = 1e4
    anneal: Literal["cos", "linear"] = "cos"
    plateau: PlateauConfig | None = None


@dataclass
class EarlyStoppingConfig:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: Literal["val_loss", "val_acc"] = "val_acc"
    patience: int = 10
    min_delta: float = 0.0


@dataclass
class CallbacksConfig:
    """Optional callbacks; the CSV log, checkpoints and the NaN guard are always on."""

    early_stopping: EarlyStoppingConfig | None = None
    tensorboard: bool = False
    keep_checkpoints: int = 2


@dataclass
class TrainSection:
    """The loop: epochs, seed, loss, regularisation and device settings.

    ``amp`` (bf16 autocast) defaults to on for CUDA only; ``channels_last`` to on everywhere,
    since ``benchmarks/train_overhead.py --cpu-settings`` measured it faster on CPU as well
    (docs/bench-training.md).
    ``threads`` sets PyTorch's intra-op CPU threads for the run (``null``: PyTorch's default);
    small nets on a busy machine train far faster with 1 (docs/bench-training.md).
    ``checkpoint_activations`` (``null``: off) recomputes activations in backward to save
    memory (Chen et al. 2016): ``sqrt`` segments, ``unit`` (every residual unit, also ``-1``)
    or a segment count (:mod:`resnetv2.nn.checkpointing`).
    """

    epochs: int = 10
    seed: int = 0
    deterministic: bool = False
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    ema: bool = False
    ema_decay: float = 0.999
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False
    amp: Literal["auto", "on", "off"] = "auto"
    channels_last: Literal["auto", "on", "off"] = "auto"
    sync_bn: bool = False
    threads: int | None = None
    checkpoint_activations: int | str | None = None


@dataclass
class TrainConfig:
    """A complete training configuration (one recipe, after overrides)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainSection = field(default_factory=TrainSection)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    name: str = "custom"
    description: str = ""

    def build_spec(self, *, num_classes: int | None = None, in_channels: int | None = None):
        """The :class:`ResNetV2Spec` this config describes (data-derived fields filled in)."""
        from resnetv2.options import make_spec

        options = dict(self.model.options)
        if num_classes is not None:
            options.setdefault("num_classes", num_classes)
        if in_channels is not None:
            options.setdefault("in_channels", in_channels)
        base: str | int | None = self.model.preset
        if base is None:
            base = self.model.depth
        elif self.model.depth is not None:
            options["depth"] = self.model.depth
        if base is None and "units" not in options:
            raise ConfigError("model: give a preset, a depth or options.units")
        return make_spec(base, **options)


# --------------------------------------------------------------------------- validation


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, dict):
        return getattr(tp, "__name__", str(tp)).replace("typing.", "")
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{where} must be {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            hint = _suggest(str(value), [str(c) for c in choices])
            raise ConfigError(
                f"{where} must be one of {', '.join(map(str, choices))}; got {value!r}{hint}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        if value is True:  # `early_stopping: true` means "on, with defaults"
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping of {tp.__name__} fields, got {value!r}")
        return _build(tp, value, where)
    if origin is list:
        (item,) = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            try:  # YAML 1.1 reads `1e-4` (no dot) as a string
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {where}")  # a bug, not user input


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            path = f"{where}.{key}" if where else str(key)
            raise ConfigError(
                f"unknown key {path!r}{_suggest(str(key), names)}; valid keys"
                f"{' in ' + where if where else ''}: {', '.join(names)}"
            )
        kwargs[key] = _convert(value, hints[key], f"{where}.{key}" if where else key)
    return cls(**kwargs)


def _check_ranges(config: TrainConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    d, o, s, t = config.data, config.optim, config.schedule, config.train
    need(d.batch_size >= 1, f"data.batch_size must be >= 1, got {d.batch_size}")
    need(
        d.eval_batch_size is None or d.eval_batch_size >= 1,
        f"data.eval_batch_size must be >= 1, got {d.eval_batch_size}",
    )
    need(d.workers >= 0, f"data.workers must be >= 0, got {d.workers}")
    need(
        d.val_split is None or 0 < d.val_split < 1,
        f"data.val_split must be a fraction in (0, 1), got {d.val_split}",
    )
    need(o.lr > 0 and math.isfinite(o.lr), f"optim.lr must be a positive number, got {o.lr}")
    need(o.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {o.weight_decay}")
    need(0 <= o.momentum < 1, f"optim.momentum must be in [0, 1), got {o.momentum}")
    need(len(o.betas) == 2, f"optim.betas must have two numbers, got {o.betas}")
    need(
        not o.nesterov or (o.name == "sgd" and o.momentum > 0),
        "optim.nesterov needs optim.name sgd with momentum > 0",
    )
    need(o.amsgrad is False or o.name in ("adam", "adamw"), "optim.amsgrad needs adam or adamw")
    need(t.epochs >= 1, f"train.epochs must be >= 1, got {t.epochs}")
    need(0 <= t.label_smoothing < 1, "train.label_smoothing must be in [0, 1)")
    need(t.grad_clip is None or t.grad_clip > 0, "train.grad_clip must be > 0 (or null)")
    need(0 < t.ema_decay < 1, f"train.ema_decay must be in (0, 1), got {t.ema_decay}")
    need(t.threads is None or t.threads >= 1, "train.threads must be >= 1 (or null)")
    if t.checkpoint_activations is not None:
        from resnetv2.memory import MemoryEstimateError, parse_checkpoint_segments

        try:
            t.checkpoint_activations = parse_checkpoint_segments(str(t.checkpoint_activations))
        except MemoryEstimateError as exc:
            raise ConfigError(f"train.checkpoint_activations: {exc}") from None
    if isinstance(d.image_size, list):
        need(
            len(d.image_size) == 2 and all(v >= 1 for v in d.image_size),
            f"data.image_size must be PX or [H, W], got {d.image_size}",
        )
    else:
        need(d.image_size is None or d.image_size >= 1, "data.image_size must be >= 1")
    need((d.mean is None) == (d.std is None), "data.mean and data.std: give both or neither")
    if d.std is not None:
        need(len(d.mean) == len(d.std), "data.mean and data.std must have the same length")
        need(all(v > 0 for v in d.std), f"data.std values must be > 0, got {d.std}")
    m = config.model
    need(
        0 <= m.backbone_lr_scale <= 1e3 and math.isfinite(m.backbone_lr_scale),
        f"model.backbone_lr_scale must be in [0, 1000], got {m.backbone_lr_scale}",
    )
    need(
        m.init_weights is not None or (m.freeze == "none" and m.backbone_lr_scale == 1.0),
        "model.freeze and model.backbone_lr_scale need model.init_weights (the pretrained "
        "weights to fine-tune)",
    )
    need(
        m.freeze == "none" or m.backbone_lr_scale == 1.0,
        "model.backbone_lr_scale needs model.freeze none (a frozen backbone has no lr)",
    )
    need(s.warmup_epochs >= 0, "schedule.warmup_epochs must be >= 0")
    need(all(0 < m < 1 for m in s.milestones), "schedule.milestones are fractions in (0, 1)")
    need(list(s.milestones) == sorted(s.milestones), "schedule.milestones must increase")
    need(0 < s.gamma <= 1, "schedule.gamma must be in (0, 1]")
    need(0 < s.pct_start < 1, "schedule.pct_start must be in (0, 1)")
    need(s.div_factor >= 1 and s.final_div >= 1, "schedule div factors must be >= 1")
    if s.plateau is not None:
        need(0 < s.plateau.factor < 1, "schedule.plateau.factor must be in (0, 1)")
        need(s.plateau.patience >= 0, "schedule.plateau.patience must be >= 0")
    es = config.callbacks.early_stopping
    if es is not None:
        need(es.patience >= 0, "callbacks.early_stopping.patience must be >= 0")
    need(config.callbacks.keep_checkpoints >= 1, "callbacks.keep_checkpoints must be >= 1")
    from resnetv2.options import OPTION_NAMES

    for key in config.model.options:
        if key in ("depth",):
            raise ConfigError("model.options.depth: give the depth as model.depth")
        if key not in OPTION_NAMES:
            raise ConfigError(
                f"unknown key 'model.options.{key}'{_suggest(key, sorted(OPTION_NAMES))}; "
                "valid spec options: " + ", ".join(sorted(OPTION_NAMES))
            )


def config_from_dict(data: Mapping[str, Any], *, check_spec: bool = True) -> TrainConfig:
    """Validate a config mapping (e.g. parsed YAML) into a :class:`TrainConfig`.

    With ``check_spec`` the architecture is resolved too (data-dependent fields use
    placeholders), so a bad depth fails here rather than after the data is loaded.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    config = _build(TrainConfig, data, "")
    _check_ranges(config)
    if check_spec:
        from resnetv2.errors import SpecError

        try:
            if config.model.init_weights is None or config.model.architecture_given():
                config.build_spec(num_classes=10, in_channels=3)
        except SpecError as exc:
            raise ConfigError(f"model: {exc}") from exc
    return config


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as plain data (what ``config.yaml`` holds): tuples become lists."""
    import json

    return json.loads(json.dumps(dataclasses.asdict(config)))


# --------------------------------------------------------------------------- files


def list_recipes() -> list[str]:
    """Names of the shipped recipes (``resnetv2/recipes/*.yaml``)."""
    folder = resources.files("resnetv2") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def recipe_path(name: str) -> Path:
    """The YAML file of a shipped recipe."""
    names = list_recipes()
    if name not in names:
        raise ConfigError(f"unknown recipe {name!r}{_suggest(name, names)}; shipped: {names}")
    return Path(str(resources.files("resnetv2") / "recipes" / f"{name}.yaml"))


def _read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
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
