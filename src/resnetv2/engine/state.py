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
        },
        "seed": config.train.seed,
        "optimizer": config.optim.name,
        # Freezing changes the optimiser's parameter groups; absent (None) when not fine-tuning.
        "finetune": {"init_weights": m.init_weights, "freeze": m.freeze}
        if m.init_weights is not None
        else None,
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


def resume_changes(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """One ``"field: old -> new"`` line per difference (nested spec fields spelled out)."""
    changes: list[str] = []
    _diff(saved, now, "", changes)
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
