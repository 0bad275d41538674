"""The run folder: naming, logging to ``train.log``, and the files a finished run leaves.

Layout (the contract other commands rely on; see ``docs/training.md``)::

    RUN/config.yaml        resolved config (feed it back with --config)
    RUN/spec.json          the architecture
    RUN/metrics.csv        one row per epoch
    RUN/results.json       final numbers (best epoch's val_acc/val_top5, params, seconds)
    RUN/checkpoints/       CheckpointManager: step-*/ (model + state + manifest), best.json
    RUN/model.safetensors  best-validation weights (EMA weights when EMA is on)
    RUN/train.log          everything printed, with timestamps
    RUN/curves.png         learning curves (when plotting works)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import torch

from resnetv2.errors import ResNetV2Error

LOGGER_NAME = "resnetv2.train"


class RunFolderError(ResNetV2Error, ValueError):
    """A run folder that cannot be used (exists already, or holds no run to resume)."""


def new_run_dir(out: str | os.PathLike | None, recipe: str, root: str = "runs") -> Path:
    """The folder of a fresh run: ``out`` if it is absent or empty, else an error; without
    ``out``, ``runs/<recipe>-YYYYmmdd-HHMMSS`` (suffixed ``-2``, ``-3``... when taken)."""
    if out is not None:
        path = Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunFolderError(
                f"run folder {path} already exists and is not empty; pass --resume {path} to "
                "continue it, or choose another --out"
            )
        path.mkdir(parents=True, exist_ok=True)
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{recipe}-{stamp}"
    path, counter = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            counter += 1
            path = base.with_name(f"{base.name}-{counter}")


def check_resume_dir(run: str | os.PathLike) -> Path:
    path = Path(run)
    if not (path / "checkpoints").is_dir():
        raise RunFolderError(
            f"--resume {path}: no checkpoints/ folder there; give the folder of an earlier "
            "`resnetv2 train` run"
        )
    return path


def setup_logging(run_dir: Path | None, *, quiet: bool, main: bool) -> logging.Logger:
    """Console (message only) + ``train.log`` (timestamped) on the main process.

    Python warnings raised during the run (skipped images, skipped checkpoints...) are
    routed through logging too, so they also land in ``train.log``.
    """
    log = logging.getLogger(LOGGER_NAME)
    close_logging(log)
    log.setLevel(logging.INFO)
    log.propagate = False
    if not main:
        log.addHandler(logging.NullHandler())
        return log
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(console)
    warnings_log = logging.getLogger("py.warnings")
    warning_console = logging.StreamHandler(sys.stderr)
    warning_console.setFormatter(logging.Formatter("%(message)s"))
    warning_console._resnetv2 = True  # marks it for removal in close_logging
    warnings_log.addHandler(warning_console)
    if run_dir is not None:
        handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        warnings_log.addHandler(handler)
    warnings_log.propagate = False
    logging.captureWarnings(True)
    return log


def close_logging(log: logging.Logger) -> None:
    warnings_log = logging.getLogger("py.warnings")
    ours = set(log.handlers)
    for handler in list(warnings_log.handlers):
        if handler in ours or getattr(handler, "_resnetv2", False):
            warnings_log.removeHandler(handler)
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)
    if ours:
        logging.captureWarnings(False)
        warnings_log.propagate = True


def write_json(path: Path, data: dict) -> None:
    from resnetv2.io import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_text(path: Path, text: str) -> None:
    from resnetv2.io import atomic_write_text

    atomic_write_text(path, text)


def plot_curves_safely(run_dir: Path, log: logging.Logger) -> None:
    """``curves.png`` through :mod:`resnetv2.viz.curves`; a plotting failure never fails
    training — it is logged with the reason."""
    try:
        from resnetv2.viz.curves import plot_curves
    except Exception as exc:  # noqa: BLE001 - optional module
        log.info("curves.png not written: resnetv2.viz.curves unavailable (%s)", exc)
        return
    try:
        plot_curves(run_dir)
    except Exception as exc:  # noqa: BLE001 - plots are a convenience
        log.warning("curves.png not written: plotting failed (%s: %s)", type(exc).__name__, exc)


def save_model_file(path: Path, spec, state: dict[str, torch.Tensor], metadata: dict) -> None:
    """``model.safetensors`` through :func:`resnetv2.loading.save_model` (the one writer of
    the weights-file format), from a fresh model holding ``state``."""
    from resnetv2.io import load_state_dict_strict
    from resnetv2.loading import save_model
    from resnetv2.nn import ResNetV2

    model = ResNetV2(spec)
    load_state_dict_strict(model, state, source=str(path))
    extra = {k: v for k, v in metadata.items() if k not in ("class_names", "preprocessing")}
    save_model(
        model,
        path,
        class_names=metadata["class_names"],
        preprocessing=metadata["preprocessing"],
        extra=extra,
    )
