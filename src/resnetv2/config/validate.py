"""Strict conversion of plain data (YAML) into a :class:`TrainConfig`, and back."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

from resnetv2.config.sections import ConfigError, ScheduleConfig, TrainConfig
from resnetv2.config.yamlfile import short_repr
from resnetv2.errors import suggest
from resnetv2.limits import MAX_BATCH_SIZE, MAX_THREADS, MAX_WORKERS, check_count
from resnetv2.lr_schedules import SCHEDULES
from resnetv2.optimizers import OPTIMIZERS, takes, taking


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
        raise ConfigError(f"{where} must be {_type_name(tp)}, got {short_repr(value)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            hint = (
                suggest(value, [str(c) for c in choices], cutoff=0.5)
                if isinstance(value, str)
                else ""
            )
            raise ConfigError(
                f"{where} must be one of {', '.join(map(str, choices))}; got {short_repr(value)}{hint}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        if value is True:  # `early_stopping: true` means "on, with defaults"
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where} must be a mapping of {tp.__name__} fields, got {short_repr(value)}"
            )
        return _build(tp, value, where)
    if origin is list:
        (item,) = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {short_repr(value)}")
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {short_repr(value)}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {short_repr(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {short_repr(value)}")
        if not -(2**63) <= value < 2**63:  # beyond every counter PyTorch and NumPy accept
            raise ConfigError(
                f"{where} is out of range (a 64-bit integer), got {short_repr(value)}"
            )
        return value
    if tp is float:
        if isinstance(value, str):
            try:  # YAML 1.1 reads `1e-4` (no dot) as a string
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {short_repr(value)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {short_repr(value)}")
        try:
            value = float(value)
        except OverflowError:  # an int beyond the float range
            value = math.inf
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {short_repr(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {short_repr(value)}")
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
                f"unknown key {short_repr(path)}{suggest(str(key)[:100], names, cutoff=0.5)}; valid keys"
                f"{' in ' + where if where else ''}: {', '.join(names)}"
            )
        kwargs[key] = _convert(value, hints[key], f"{where}.{key}" if where else key)
    return cls(**kwargs)


MAX_EPOCHS = 1_000_000
"""Most epochs a config may ask for: far beyond any real run, small enough for every counter."""

MAX_SEED = 2**63 - 1
"""Largest seed: PyTorch, NumPy and the data layer's derived seeds all take 63-bit seeds."""


def _check_name(name: str) -> None:
    """``name`` becomes the run folder's name under ``runs/``, so it must be one plain path
    component: no separators, no ``..``, not absolute, nothing hidden."""
    bad = (
        not name
        or len(name) > 100
        or name in (".", "..")
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or any(not ch.isprintable() for ch in name)
    )
    if bad:
        raise ConfigError(
            f"name must be one plain folder name (letters, digits, '-', '_'; no '/', '..' or "
            f"leading '.'), got {short_repr(name)}"
        )


def augment_choices() -> tuple[str, ...]:
    """``data.augment``'s allowed values: ``auto`` and the keys of the data layer's
    augmentation registry (:data:`resnetv2.data.augment.AUGMENTATIONS`), so a preset added
    there is accepted here with no other change.

    Imported when a config is validated, not with this module: the data layer loads torch,
    which reading or listing configs does not otherwise need.
    """
    from resnetv2.data.augment import AUGMENTATIONS

    return ("auto", *AUGMENTATIONS)


def _check_choice(value: str, choices, where: str) -> None:
    """Refuse a name that is not one of ``choices`` (a registry's keys) as a ``Literal``
    field is refused, "did you mean" included."""
    _convert(value, Literal[tuple(choices)], where)


def _or_list(names: list[str]) -> str:
    """``a, b or c`` (``none`` for no names)."""
    if len(names) <= 1:
        return names[0] if names else "none"
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _time_needs_progress() -> str:
    """Why ``--time`` refuses a schedule that follows the validation metric, naming those it
    can plan (the default first)."""
    planned = sorted(
        (name for name, entry in SCHEDULES.items() if entry.of_progress),
        key=lambda name: name != ScheduleConfig.name,
    )
    metric = [f"schedule.name {n}" for n, entry in SCHEDULES.items() if not entry.of_progress]
    return (
        "--time (train.time) plans the learning-rate schedule as a function of progress; "
        f"reduce-on-plateau ({' / '.join([*metric, 'schedule.plateau'])}) follows the "
        "validation metric instead and cannot be planned: use --schedule "
        f"{_or_list(planned)} with --time"
    )


def _check_image_size(size: int | list[int]) -> None:
    """The decoder's size rule (:func:`resnetv2.data.load.check_image_size`) at validation,
    before a run folder or any buffer exists."""
    from resnetv2.data.load import check_image_size

    try:
        check_image_size((size, size) if isinstance(size, int) else tuple(size))
    except ValueError as exc:
        raise ConfigError(f"data.{exc}") from None


def _check_ranges(config: TrainConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    d, o, s, t = config.data, config.optim, config.schedule, config.train
    # Refused here, before any data is read, with "did you mean" (a Literal's check).
    _check_choice(d.augment, augment_choices(), "data.augment")
    _check_choice(o.name, OPTIMIZERS, "optim.name")
    _check_choice(s.name, SCHEDULES, "schedule.name")
    # The bounds every command shares (resnetv2.limits): the same values as predict's flags.
    check_count("data.batch_size", d.batch_size, 1, MAX_BATCH_SIZE, ConfigError)
    if d.eval_batch_size is not None:
        check_count("data.eval_batch_size", d.eval_batch_size, 1, MAX_BATCH_SIZE, ConfigError)
    check_count("data.workers", d.workers, 0, MAX_WORKERS, ConfigError)
    need(
        d.val_split is None or 0 < d.val_split < 1,
        f"data.val_split must be a fraction in (0, 1), got {d.val_split}",
    )
    need(o.lr > 0 and math.isfinite(o.lr), f"optim.lr must be a positive number, got {o.lr}")
    need(o.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {o.weight_decay}")
    need(0 <= o.momentum < 1, f"optim.momentum must be in [0, 1), got {o.momentum}")
    need(
        0 < o.norm_bias_lr_scale <= 1e4,
        f"optim.norm_bias_lr_scale must be in (0, 10000], got {o.norm_bias_lr_scale}",
    )
    need(len(o.betas) == 2, f"optim.betas must have two numbers, got {o.betas}")
    need(
        not o.nesterov or (takes(o.name, "nesterov") and o.momentum > 0),
        f"optim.nesterov needs optim.name {_or_list(taking('nesterov'))} with momentum > 0; "
        "set optim.nesterov: false (train --no-nesterov)",
    )
    need(
        o.amsgrad is False or takes(o.name, "amsgrad"),
        f"optim.amsgrad needs {_or_list(taking('amsgrad'))}",
    )
    need(1 <= t.epochs <= MAX_EPOCHS, f"train.epochs must be in 1..{MAX_EPOCHS:,}, got {t.epochs}")
    if t.time is not None:
        from resnetv2.config.duration import parse_duration

        t.time = parse_duration(t.time)
        if not SCHEDULES[s.name].of_progress or s.plateau is not None:
            raise ConfigError(_time_needs_progress())
    need(
        0 <= t.seed <= MAX_SEED,
        f"train.seed must be in 0..{MAX_SEED} (2**63 - 1), got {short_repr(t.seed)}",
    )
    _check_name(config.name)
    need(0 <= t.label_smoothing < 1, "train.label_smoothing must be in [0, 1)")
    need(t.grad_clip is None or t.grad_clip > 0, "train.grad_clip must be > 0 (or null)")
    need(0 < t.ema_decay < 1, f"train.ema_decay must be in (0, 1), got {t.ema_decay}")
    need(
        not (t.ema and t.lookahead),
        "train.ema and train.lookahead both average the weights; choose one",
    )
    need(t.lookahead_steps >= 1, f"train.lookahead_steps must be >= 1, got {t.lookahead_steps}")
    need(
        0 < t.lookahead_alpha <= 1,
        f"train.lookahead_alpha must be in (0, 1], got {t.lookahead_alpha}",
    )
    need(
        t.bn_momentum is None or 0 < t.bn_momentum <= 1,
        f"train.bn_momentum must be in (0, 1] (or null), got {t.bn_momentum}",
    )
    if t.threads is not None:
        check_count("train.threads", t.threads, 1, MAX_THREADS, ConfigError)
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
    if d.image_size is not None:
        _check_image_size(d.image_size)
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
    need(
        m.whiten_stem == "off" or m.init_weights is None,
        "model.whiten_stem fits a fresh stem to the data; it cannot be combined with "
        "model.init_weights (the pretrained stem)",
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
    sections = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in config.plan.keep:
        need(
            key.split(".")[0] in sections,
            f"plan.keep: {short_repr(key)} is not a config key (section.key, e.g. data.batch_size)",
        )
    from resnetv2.options import OPTION_NAMES

    for key in config.model.options:
        if key in ("depth",):
            raise ConfigError("model.options.depth: give the depth as model.depth")
        if key not in OPTION_NAMES:
            raise ConfigError(
                f"unknown key 'model.options.{key}'{suggest(key, sorted(OPTION_NAMES), cutoff=0.5)}; "
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
        for i, net in enumerate(config.model.by_budget):
            if not 0 <= net.min_epochs <= MAX_EPOCHS:
                raise ConfigError(f"model.by_budget[{i}].min_epochs must be in 0..{MAX_EPOCHS:,}")
            try:
                config.with_net(net).build_spec(num_classes=10, in_channels=3)
            except SpecError as exc:
                raise ConfigError(f"model.by_budget[{i}]: {exc}") from exc
    return config


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as plain data (what ``config.yaml`` holds): tuples become lists."""
    import json

    return json.loads(json.dumps(dataclasses.asdict(config)))


# --------------------------------------------------------------------------- files
