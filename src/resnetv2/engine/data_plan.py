"""Plan a run from its data: the choices a recipe leaves open, made from what the images are.

A recipe is written for one kind of data (``images`` for CIFAR-sized photos); a folder of
large photos, or of a few hundred images, needs other settings to train in reasonable time.
For a folder source, before anything is decoded, :func:`plan_run` chooses

* the input size and stem from the images' size: never the CIFAR stem (3×3, stride 1) at
  full resolution on large photos (its cost grows with the pixel count: 64× at 256 px), but
  the ImageNet stem (7×7 stride 2 + max-pool) at an input size that gives the stages the
  resolution they were built for;
* a batch size small enough for :data:`TARGET_STEPS` optimiser steps in the run, with the
  learning rate scaled linearly with it (Goyal et al. 2017);
* a validation split when the folder has none;
* fine-tuning learning rates that move a new head;

and warns when the plan is likely poor (few steps, few images per class, unbalanced
classes). Every choice comes with its reason, logged once in ``train.log``. A value the user
set (a flag, or a key of their own config file: ``plan.keep``) is never changed, and
``plan.auto: false`` turns the planning off; a run's saved ``config.yaml`` holds the planned
values with ``plan.auto: false``, so resuming it or training it again plans nothing.

The functions that decide are pure (facts in, :class:`Choice` out) and tested as such;
:func:`folder_facts` is the only one that looks at files (names and image headers only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Optimiser steps a run should have at least; fewer and the schedule (warm-up, decay) is
#: a handful of updates, and small folders end near chance (docs/training.md).
TARGET_STEPS = 300
#: The smallest batch the plan chooses (BatchNorm statistics get noisy below it).
MIN_BATCH = 16
#: Images whose shorter side is at most this train at their own size with the recipe's stem.
SMALL_IMAGE = 64
#: Input size for a 3-stage (CIFAR-layout) net with the CIFAR stem: the resolution it was
#: built for. Measured on 256 px photos: as accurate as 64 px, or 128 px with the ImageNet
#: stem, at a fraction of the cost (docs/training.md, "Planned from the data").
CIFAR_NET_SIZE = 32
#: Input size for a 3-stage net behind a stem that divides by 4: its stages see 32 px.
CIFAR_NET_SIZE_DOWNSAMPLED = 128
#: Input size cap for 4-stage (ImageNet-layout) nets, the size they are usually trained at.
IMAGENET_NET_SIZE = 224
#: The stem the plan puts in front of large photos.
DOWNSAMPLING_STEM = "conv7x7_maxpool"
#: Validation fractions the plan uses when a folder has no validation data: small folders
#: hold out more so that the held-out accuracy means something.
VAL_SPLIT_SMALL, VAL_SPLIT = 0.2, 0.1
SMALL_FOLDER = 1000
#: Fine-tuning: the new head's learning rate over the recipe's (the backbone keeps the
#: recipe's lr with ``freeze: none``; measured in docs/training.md).
HEAD_LR_SCALE = 10.0
#: Warnings: fewer training images per class, or a larger largest/smallest class ratio.
FEW_PER_CLASS = 20
UNBALANCED = 3.0


@dataclass(frozen=True)
class DataFacts:
    """What the plan knows about a folder before decoding it."""

    class_counts: tuple[int, ...]  # training images per class (after the validation split)
    image_size: tuple[int, int] | None  # the most common (H, W); None when unreadable
    has_val: bool = True  # a validation folder or fraction is given
    num_images: int | None = None  # all images in the folder (before any split)

    @property
    def num_train(self) -> int:
        return sum(self.class_counts)


@dataclass(frozen=True)
class Choice:
    """One planned value: the dotted config key, the value, and why."""

    key: str
    value: Any
    reason: str


@dataclass
class Plan:
    choices: list[Choice] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def overrides(self) -> dict[str, Any]:
        return {c.key: c.value for c in self.choices}

    def lines(self) -> list[str]:
        """One log line per choice, ``flag (key) = value: reason``."""
        return [f"{FLAGS.get(c.key, c.key)} {_show(c.value)}: {c.reason}" for c in self.choices]


#: The flag that sets each planned key (what the user passes to override the plan).
FLAGS = {
    "data.image_size": "--input-size",
    "model.options.stem_type": "--stem-type",
    "data.batch_size": "--batch-size",
    "optim.lr": "--lr",
    "data.val_split": "--val-split",
    "model.backbone_lr_scale": "--backbone-lr-scale",
}


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "x".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --------------------------------------------------------------------------- decisions
def plan_val_split(num_images: int) -> Choice:
    """The fraction held out when a folder has no validation data."""
    fraction = VAL_SPLIT_SMALL if num_images < SMALL_FOLDER else VAL_SPLIT
    return Choice(
        "data.val_split",
        fraction,
        f"the folder has no validation data: holding out {fraction:.0%} of its "
        f"{num_images:,} images (stratified, seeded); pass --val-split F or --val-data DIR",
    )


def plan_input(
    image_size: tuple[int, int], *, stem_type: str, num_stages: int, size_given: bool
) -> list[Choice]:
    """Input size and stem for images of ``image_size`` (H, W) on a net with ``stem_type``
    and ``num_stages`` stages. ``size_given``: the size is the user's; only the stem is
    planned then.

    A 3-stage net with the CIFAR stem gets the 32 px it was built for; a 4-stage net gets up
    to 224 px behind the ImageNet stem; whatever the size, inputs above 64 px never go
    through the CIFAR stem (3x3, stride 1: full resolution in the first stage)."""
    h, w = image_size
    choices = []
    cifar_stem = stem_type in ("conv3x3", "conv3x3_bn_relu")
    if not size_given and min(h, w) > SMALL_IMAGE:
        short = min(h, w)
        if num_stages >= 4:
            target = IMAGENET_NET_SIZE
        else:
            target = CIFAR_NET_SIZE if cifar_stem else CIFAR_NET_SIZE_DOWNSAMPLED
        if short > target:
            scale = target / short
            new = [max(1, round(h * scale)), max(1, round(w * scale))]
            choices.append(
                Choice(
                    "data.image_size",
                    new[0] if new[0] == new[1] else new,
                    f"the images are {h}x{w}; this {num_stages}-stage net is built for "
                    f"{target} px inputs ({short * short / target**2:.0f}x less work per image "
                    "than at full size)",
                )
            )
            h, w = new
    if min(h, w) > SMALL_IMAGE and cifar_stem:
        choices.append(
            Choice(
                "model.options.stem_type",
                DOWNSAMPLING_STEM,
                f"{h}x{w} inputs through the CIFAR stem (3x3, stride 1) keep full resolution "
                "in the first stage; the ImageNet stem (7x7 stride 2 + max-pool) divides it by 4",
            )
        )
    return choices


def plan_batch(
    num_train: int, *, epochs: int, batch_size: int, lr: float, lr_given: bool
) -> list[Choice]:
    """A batch that gives the run :data:`TARGET_STEPS` steps (never above the recipe's, never
    below :data:`MIN_BATCH`), with the lr scaled linearly (Goyal et al. 2017)."""
    steps = epochs * math.ceil(num_train / batch_size)
    if steps >= TARGET_STEPS or batch_size <= MIN_BATCH:
        return []
    wanted = num_train * epochs / TARGET_STEPS
    planned = max(MIN_BATCH, 2 ** int(math.floor(math.log2(max(wanted, 1)))))
    if planned >= batch_size:
        return []
    new_steps = epochs * math.ceil(num_train / planned)
    if new_steps <= steps:  # fewer images than a batch: a smaller batch adds no step
        return []
    choices = [
        Choice(
            "data.batch_size",
            planned,
            f"{num_train:,} training images in batches of {batch_size} give {steps} steps in "
            f"{epochs} epochs; batches of {planned} give {new_steps}",
        )
    ]
    if not lr_given:
        scaled = lr * planned / batch_size
        choices.append(
            Choice(
                "optim.lr",
                round(scaled, 6),
                f"lr {lr:g} at batch {batch_size}, scaled with the batch (linear rule, "
                "Goyal et al. 2017)",
            )
        )
    return choices


def plan_finetune(*, freeze: str, lr: float, keep: frozenset[str]) -> list[Choice]:
    """Learning rates that move a new head: :data:`HEAD_LR_SCALE` × the recipe's lr for the
    head; with ``freeze: none`` the pretrained backbone keeps the recipe's lr."""
    if "optim.lr" in keep:
        return []
    head_lr = round(lr * HEAD_LR_SCALE, 6)
    choices = [
        Choice(
            "optim.lr",
            head_lr,
            f"a new head from zero needs a larger step than the pretrained layers: "
            f"{HEAD_LR_SCALE:g}x the recipe's {lr:g}",
        )
    ]
    if freeze == "none" and "model.backbone_lr_scale" not in keep:
        choices.append(
            Choice(
                "model.backbone_lr_scale",
                1 / HEAD_LR_SCALE,
                f"the pretrained backbone at 1/{HEAD_LR_SCALE:g} of the head's lr (the "
                f"recipe's {lr:g})",
            )
        )
    return choices


def plan_warnings(
    facts: DataFacts,
    *,
    steps: int,
    class_names: Sequence[str],
    class_weights: str,
) -> list[str]:
    """Warnings for a plan that is likely poor."""
    out = []
    if steps < TARGET_STEPS // 3:
        out.append(
            f"only {steps} optimiser steps in this run: expect an undertrained net; "
            "raise --epochs (or lower --batch-size)"
        )
    counts = facts.class_counts
    if counts:
        low = min(counts)
        name = class_names[counts.index(low)] if class_names else str(counts.index(low))
        if low < FEW_PER_CLASS:
            out.append(
                f"class {name!r} has only {low} training images (fewer than {FEW_PER_CLASS}): "
                "held-out accuracy will be noisy and the class poorly learned"
            )
        high = max(counts)
        if low and high / low >= UNBALANCED and class_weights == "none":
            out.append(
                f"unbalanced classes: {high} images in the largest, {low} in {name!r}; "
                "--class-weights balanced weights the loss by inverse class frequency"
            )
    return out


def balanced_class_weights(class_counts: Sequence[int]) -> list[float]:
    """``n / (k × n_c)`` per class (scikit-learn's ``balanced``): each class weighs as much
    in the loss as the others, whatever its size; 1.0 everywhere for balanced data."""
    total, k = sum(class_counts), len(class_counts)
    return [total / (k * c) if c else 0.0 for c in class_counts]


# --------------------------------------------------------------------------- the plan
def plan_run(
    config,
    facts: DataFacts,
    *,
    class_names: Sequence[str] = (),
    memory_fits: Callable[[Any], bool] | None = None,
):
    """``(config, plan)``: ``config`` with the planned values and ``plan.auto`` off.

    ``memory_fits(config)`` (the memory pre-flight) may veto a planned input size: the plan
    then halves the batch it chose (or the recipe's) until the run fits, down to
    :data:`MIN_BATCH`.
    """
    from resnetv2.config import apply_overrides
    from resnetv2.config.sections import ConfigError
    from resnetv2.errors import SpecError

    keep = kept_keys(config)
    plan = Plan()
    d = config.data
    finetuning = config.model.init_weights is not None
    if not facts.has_val and "data.val_split" not in keep:
        plan.choices.append(plan_val_split(facts.num_images or facts.num_train))
    if facts.image_size is not None and not finetuning:
        size_given = d.image_size is not None or "data.image_size" in keep
        stem_given = "stem_type" in config.model.options or "model.options.stem_type" in keep
        try:
            spec = config.build_spec(num_classes=max(2, len(facts.class_counts)), in_channels=3)
        except (SpecError, ConfigError):
            spec = None
        if spec is not None:
            # a kept null size is the images' own: the stem is still planned for it
            size = _as_hw(d.image_size) if d.image_size is not None else facts.image_size
            for choice in plan_input(
                size,
                stem_type=spec.stem_type,
                num_stages=len(spec.stages),
                size_given=size_given,
            ):
                if not (choice.key == "model.options.stem_type" and stem_given):
                    plan.choices.append(choice)
    batch_size, lr = d.batch_size, config.optim.lr
    if finetuning:
        plan.choices.extend(plan_finetune(freeze=config.model.freeze, lr=lr, keep=keep))
    if "data.batch_size" not in keep:
        for choice in plan_batch(
            facts.num_train,
            epochs=config.train.epochs,
            batch_size=batch_size,
            lr=plan.overrides().get("optim.lr", lr),
            lr_given="optim.lr" in keep,
        ):
            earlier = [c.reason for c in plan.choices if c.key == choice.key]
            if earlier:  # the fine-tuning lr, then scaled with the batch: both reasons
                choice = Choice(choice.key, choice.value, f"{earlier[0]}; {choice.reason}")
            plan.choices = [c for c in plan.choices if c.key != choice.key] + [choice]
    planned = _apply(config, plan, apply_overrides)
    if memory_fits is not None and "data.batch_size" not in keep:
        planned = _fit_memory(planned, plan, memory_fits, apply_overrides)
    steps = planned.train.epochs * math.ceil(facts.num_train / planned.data.batch_size)
    plan.warnings = plan_warnings(
        facts, steps=steps, class_names=class_names, class_weights=planned.train.class_weights
    )
    return planned, plan


def _apply(config, plan: Plan, apply_overrides):
    overrides: dict[str, Any] = {"plan.auto": False}
    for key, value in plan.overrides().items():
        if key == "model.options.stem_type":
            overrides["model.options"] = {**config.model.options, "stem_type": value}
        else:
            overrides[key] = value
    return apply_overrides(config, overrides)


def _fit_memory(config, plan: Plan, memory_fits, apply_overrides):
    """Halve the batch (and the lr with it, unless given) until ``memory_fits``."""
    keep = kept_keys(config)
    while not memory_fits(config) and config.data.batch_size > MIN_BATCH:
        batch = max(MIN_BATCH, config.data.batch_size // 2)
        changes: dict[str, Any] = {"data.batch_size": batch}
        reason = f"batch {config.data.batch_size} would not fit in memory at this input size"
        if "optim.lr" not in keep:
            changes["optim.lr"] = round(config.optim.lr * batch / config.data.batch_size, 6)
        plan.choices = [c for c in plan.choices if c.key not in changes]
        plan.choices += [Choice(k, v, reason) for k, v in changes.items()]
        config = apply_overrides(config, changes)
    return config


def kept_keys(config) -> frozenset[str]:
    """``plan.keep`` plus each planned key below a kept one (``model.options`` keeps
    ``model.options.stem_type``): the keys the plan must not change."""
    keep = set(config.plan.keep)
    keep.update(k for k in FLAGS for given in config.plan.keep if k.startswith(given + "."))
    return frozenset(keep)


def _as_hw(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


# --------------------------------------------------------------------------- the files
def folder_facts(data_config) -> tuple[DataFacts, list[str]] | None:
    """``(facts, class names)`` for a folder source (file names and up to 256 image
    headers); ``None`` for a built-in source or a folder that cannot be read (the data load
    reports why)."""
    from pathlib import Path

    from resnetv2.data.cached import choose_image_size
    from resnetv2.data.folders import scan_class_folders
    from resnetv2.data.load import BUILTIN_DATASETS
    from resnetv2.data.split import val_count

    d = data_config
    if d.source in BUILTIN_DATASETS or not Path(d.source).expanduser().is_dir():
        return None
    if d.val_data is not None and d.val_split is not None:
        return None  # refused by the data load (engine/data.py), with the flags to fix it
    try:
        index = scan_class_folders(Path(d.source).expanduser())
    except (ValueError, OSError):
        return None
    counts = [0] * len(index.class_names)
    for label in index.labels:
        counts[label] += 1
    has_val = d.val_data is not None or d.val_split is not None
    fraction = d.val_split if has_val else plan_val_split(len(index)).value
    if fraction is not None:
        counts = [c - val_count(c, fraction) for c in counts]
    facts = DataFacts(
        class_counts=tuple(counts),
        image_size=choose_image_size(index.files),
        has_val=has_val,
        num_images=len(index),
    )
    return facts, list(index.class_names)


# --------------------------------------------------------------------------- the engine
def plan_for_run(config, *, device, log, world_size: int = 1):
    """``config`` planned from its folder (:func:`plan_run`), the plan logged once: one line
    per choice with its reason, then the warnings. Built-in sources (digits, CIFAR) are left
    as their recipes set them; so is everything with ``plan.auto`` off."""
    if not config.plan.auto:
        return config
    found = folder_facts(config.data)
    if found is None:
        return config
    facts, class_names = found

    def memory_fits(candidate) -> bool:
        from resnetv2.memory.preflight import MemoryPreflightError, check_training_memory

        size = candidate.data.image_size or facts.image_size
        try:
            check_training_memory(
                candidate.build_spec(num_classes=len(class_names), in_channels=3),
                batch_size=max(1, candidate.data.batch_size // world_size),
                input_size=_as_hw(size),
                checkpoint_segments=candidate.train.checkpoint_activations,
                optimizer=candidate.optim.name,
                device=device,
            )
        except MemoryPreflightError:
            return False
        return True

    check = config.train.memory_check and config.model.init_weights is None and facts.image_size
    planned, plan = plan_run(
        config, facts, class_names=class_names, memory_fits=memory_fits if check else None
    )
    if plan.choices:
        log.info("plan from the data (%s; a flag you pass wins):", _facts_line(facts))
    for line in plan.lines():
        log.info("  plan: %s", line)
    for warning in plan.warnings:
        log.warning("plan: %s", warning)
    return planned


def _facts_line(facts: DataFacts) -> str:
    counts = facts.class_counts
    size = "x".join(map(str, facts.image_size)) if facts.image_size else "unknown size"
    return (
        f"{facts.num_images or facts.num_train:,} images, {len(counts)} classes "
        f"({min(counts)}-{max(counts)} training images each), mostly {size}"
    )


def class_weight_tensor(mode: str, train_labels, num_classes: int, *, device=None):
    """The cross-entropy's ``weight`` for ``train.class_weights`` (``None`` for ``none``)."""
    if mode == "none":
        return None
    import torch

    counts = torch.bincount(train_labels.long(), minlength=num_classes).tolist()
    return torch.tensor(balanced_class_weights(counts), dtype=torch.float32, device=device)


__all__ = [
    "Choice",
    "DataFacts",
    "Plan",
    "balanced_class_weights",
    "class_weight_tensor",
    "folder_facts",
    "plan_batch",
    "plan_finetune",
    "plan_for_run",
    "plan_input",
    "plan_run",
    "plan_val_split",
    "plan_warnings",
]
