"""What a resume must match, and the refusal that lists what changed (promise 3).

A resume is exact only when the model, the global batch, the process count and the data
pipeline are the ones the checkpoint was written with; anything else is refused with one
line per difference unless the user opts in (``--resume-force``). The number of epochs and
the learning rate may change (the schedule then stretches); they are logged, not refused.
"""

from __future__ import annotations

from typing import Any

from resnetv2.errors import ResNetV2Error


class ResumeMismatchError(ResNetV2Error, ValueError):
    """The run would not continue exactly; the message lists every change."""


def resume_key(config, spec, world_size: int) -> dict[str, Any]:
    """The settings an exact resume depends on (stored in every checkpoint)."""
    d, m = config.data, config.model
    return {
        "spec": spec.to_dict(),
        "batch_size": d.batch_size,
        "world_size": world_size,
        "data": {
            "source": d.source,
            "val_data": d.val_data,
            "val_split": d.val_split,
            "image_size": d.image_size,
            "augment": d.augment,
            "drop_last": d.drop_last,
            "mean": d.mean,
            "std": d.std,
            # Only when set, so checkpoints from before the option still match.
            **({"flip": d.flip} if d.flip != "random" else {}),
        },
        "seed": config.train.seed,
        "optimizer": config.optim.name,
        # Freezing changes the optimiser's parameter groups; absent (None) when not fine-tuning.
        "finetune": {"init_weights": m.init_weights, "freeze": m.freeze}
        if m.init_weights is not None
        else None,
        # A frozen stem changes the optimiser's parameters; only when set (older checkpoints).
        **({"whiten_stem": m.whiten_stem} if m.whiten_stem != "off" else {}),
    }


def _diff(saved: Any, now: Any, path: str, out: list[str]) -> None:
    if isinstance(saved, dict) and isinstance(now, dict):
        for key in list(saved) + [k for k in now if k not in saved]:
            _diff(saved.get(key), now.get(key), f"{path}.{key}" if path else key, out)
    elif _plain(saved) != _plain(now):
        out.append(f"{path}: {_plain(saved)!r} -> {_plain(now)!r}")


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _absolute_data(key: dict[str, Any]) -> dict[str, Any]:
    """``key`` with folder sources absolute. Runs record absolute paths; checkpoints written
    by older versions hold them as typed (relative to the directory training ran in), and
    both must compare equal."""
    from resnetv2.data.fingerprint import absolute_source

    data = key.get("data")
    if not isinstance(data, dict):
        return key
    fixed = {k: absolute_source(data.get(k)) for k in ("source", "val_data") if data.get(k)}
    return {**key, "data": {**data, **fixed}}


def resume_changes(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """One ``"field: old -> new"`` line per difference (nested spec fields spelled out)."""
    changes: list[str] = []
    _diff(_absolute_data(saved), _absolute_data(now), "", changes)
    return changes


def check_resume(saved: dict[str, Any], now: dict[str, Any], *, force: bool) -> list[str]:
    """Raise :class:`ResumeMismatchError` listing the changes, unless ``force``."""
    changes = resume_changes(saved, now)
    if changes and not force:
        raise ResumeMismatchError(
            "refusing to resume: the run would not continue exactly because these changed: "
            + "; ".join(changes)
            + ". Undo the changes, or pass --resume-force to continue anyway"
        )
    return changes


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def check_state_ranges(
    state: dict[str, Any], *, steps_per_epoch: int, num_train: int, strict: bool, where: str
) -> None:
    """Refuse a training state whose counters cannot belong to this run.

    A checkpoint's manifest proves the files are the ones written, not that they were written
    by resnetv2: a hand-edited state (re-hashed) could claim a loader position of 10**12 or a
    global step of 10**15 and training would continue from nonsense. The counters are
    checked against the run's own numbers: the position within an epoch is at most the
    epoch's batches (any batch size could not give more batches than images), the global step
    at most one step per image per epoch, the history one row per finished epoch.
    """
    from resnetv2.config.validate import MAX_EPOCHS

    loader = state.get("loader") if isinstance(state.get("loader"), dict) else {}
    epoch, position = _count(loader.get("epoch")), _count(loader.get("position"))
    step, history = _count(state.get("global_step")), state.get("history")
    problems = []
    if epoch is None or epoch > MAX_EPOCHS:
        problems.append(f"loader epoch {loader.get('epoch')!r:.40} is not in 0..{MAX_EPOCHS:,}")
    most_batches = steps_per_epoch if strict else max(num_train, steps_per_epoch)
    if position is None or position > most_batches:
        problems.append(
            f"loader position {loader.get('position')!r:.40} is not in 0..{most_batches:,} "
            "(the batches of one epoch)"
        )
    if not problems:
        most_steps = epoch * max(num_train, steps_per_epoch) + position
        if step is None or step < position or step > most_steps:
            problems.append(
                f"global step {state.get('global_step')!r:.40} is not in {position:,}.."
                f"{most_steps:,} (at most one step per training image per epoch)"
            )
        if not isinstance(history, list) or not epoch <= len(history) <= epoch + 1:
            rows = len(history) if isinstance(history, list) else history
            problems.append(f"{rows!r:.40} history rows for {epoch} finished epochs")
    if problems:
        raise ResumeMismatchError(
            f"refusing to resume from {where}: its training state is inconsistent with this run "
            f"({'; '.join(problems)}); it was damaged or edited. Delete that checkpoint folder "
            "to resume from the one before"
        )
