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


#: What a run writes before its first checkpoint: a folder holding only these (and no
#: committed checkpoint) is a start that failed or was killed, and a new ``--out`` reuses it.
STARTUP_FILES = frozenset({"config.yaml", "spec.json", "train.log", "checkpoints", "tensorboard"})


def committed_checkpoints(run_dir: Path) -> list[Path]:
    """The ``checkpoints/step-*`` folders of ``run_dir`` (committed saves; not verified)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith("step-") and p.is_dir())


def is_unstarted_run(path: Path) -> bool:
    """Whether ``path`` holds only what a run writes before its first checkpoint."""
    entries = {entry.name for entry in path.iterdir()}
    return entries <= STARTUP_FILES and "train.log" in entries and not committed_checkpoints(path)


def clear_unstarted_run(path: Path) -> None:
    """Delete the start-up files of a run that never checkpointed (see :data:`STARTUP_FILES`)."""
    import shutil

    for name in STARTUP_FILES:
        entry = path / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()


def discard_unstarted_run(path: Path) -> bool:
    """Remove the folder of a run that failed before its first checkpoint; True if removed.

    Called when a fresh run dies during start-up (bad data, NaN in epoch 1, Ctrl-C): the
    folder holds nothing worth keeping and would otherwise block the same ``--out``.
    """
    try:
        if not path.is_dir() or not (is_unstarted_run(path) or not any(path.iterdir())):
            return False
        clear_unstarted_run(path)
        path.rmdir()
    except OSError:
        return False
    return True


def new_run_dir(out: str | os.PathLike | None, recipe: str, root: str = "runs") -> Path:
    """The folder of a fresh run: ``out`` if it is absent, empty or a failed start (only
    start-up files, no checkpoint: cleared and reused), else an error; without ``out``,
    ``runs/<recipe>-YYYYmmdd-HHMMSS`` (suffixed ``-2``, ``-3``... when taken)."""
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise RunFolderError(
                f"--out {path} is an existing file, not a folder; choose another --out"
            )
        if path.is_dir() and any(path.iterdir()):
            if committed_checkpoints(path):
                raise RunFolderError(
                    f"run folder {path} already holds a run; pass --resume {path} to "
                    "continue it, or choose another --out"
                )
            if not is_unstarted_run(path):
                raise RunFolderError(
                    f"--out {path} is a folder with other files in it; choose a new or empty folder"
                )
            RunLock(path).acquire().release()  # not a start that is still running
            clear_unstarted_run(path)
        path.mkdir(parents=True, exist_ok=True)
        return path
    if Path(recipe).name != recipe or recipe in ("", ".", ".."):
        raise RunFolderError(f"run name {recipe!r} must be one plain folder name")
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
    if not path.is_dir():
        raise RunFolderError(
            f"--resume {path}: no such run folder; give the folder of an earlier "
            "`resnetv2 train` run"
        )
    if not committed_checkpoints(path):
        if is_unstarted_run(path):
            raise RunFolderError(
                f"--resume {path}: that run stopped before its first checkpoint, so there is "
                f"nothing to resume; start it again with --out {path}"
            )
        raise RunFolderError(
            f"--resume {path}: no checkpoints there; give the folder of an earlier "
            "`resnetv2 train` run"
        )
    return path


class RunLock:
    """An exclusive lock on a run folder for the life of one training process.

    ``flock`` on the folder itself: nothing is written into the run (a refused command
    leaves it unchanged), the kernel releases the lock when the process exits or is killed
    (so a stale lock cannot outlive its owner), and a second ``train`` on the same folder
    is refused at once instead of both writing checkpoints.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; training proceeds unlocked
            return self
        import errno

        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunFolderError(
                    f"{self.path} is in use by another `resnetv2 train` (it holds the run's "
                    "lock); wait for it to finish, or stop it first"
                ) from None
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                return self  # a filesystem without locks: run unlocked rather than not at all
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


class _OneLine(logging.Formatter):
    """Captured warnings end in a newline of their own; drop it (no blank lines)."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).rstrip()


class _Console(logging.StreamHandler):
    """The console handler; when stdout is a pipe whose reader has gone (``train | head``)
    it stops writing instead of printing a logging traceback per line (train.log goes on)."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            self.stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
            return
        super().handleError(record)


def setup_logging(
    run_dir: Path | None, *, quiet: bool, main: bool, defer_file: bool = False
) -> logging.Logger:
    """Console (message only) + ``train.log`` (timestamped) on the main process.

    Python warnings raised during the run (skipped images, skipped checkpoints...) are
    routed through logging too, so they also land in ``train.log``. With ``defer_file``
    (a resume) the log file's records are held in memory until :func:`commit_log_file`,
    so a resume that is refused leaves ``train.log`` untouched.
    """
    log = logging.getLogger(LOGGER_NAME)
    close_logging(log)
    log.setLevel(logging.INFO)
    log.propagate = False
    if not main:
        log.addHandler(logging.NullHandler())
        return log
    console = _Console(sys.stdout)
    console.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(console)
    warnings_log = logging.getLogger("py.warnings")
    warning_console = logging.StreamHandler(sys.stderr)
    warning_console.setFormatter(_OneLine("%(message)s"))
    warning_console._resnetv2 = True  # marks it for removal in close_logging
    warnings_log.addHandler(warning_console)
    if run_dir is not None:
        handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        if defer_file:
            from logging.handlers import MemoryHandler

            handler = MemoryHandler(
                1_000_000, flushLevel=logging.CRITICAL + 1, target=handler, flushOnClose=False
            )
        log.addHandler(handler)
        warnings_log.addHandler(handler)
    warnings_log.propagate = False
    logging.captureWarnings(True)
    return log


def commit_log_file(log: logging.Logger) -> None:
    """Write the records held back by ``setup_logging(defer_file=True)`` to ``train.log``
    and log straight to it from now on (the resume was accepted)."""
    from logging.handlers import MemoryHandler

    warnings_log = logging.getLogger("py.warnings")
    for handler in list(log.handlers):
        if isinstance(handler, MemoryHandler) and handler.target is not None:
            target = handler.target
            handler.flush()
            for logger in (log, warnings_log):
                if handler in logger.handlers:
                    logger.removeHandler(handler)
                    logger.addHandler(target)
            handler.close()


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
