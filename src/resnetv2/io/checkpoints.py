"""Training-run checkpoints that are either complete and verified, or ignored.

Layout and guarantees: ``docs/checkpoints.md``. A checkpoint (``model.safetensors``,
``state.pt``, then ``manifest.json`` with the step and each file's size and sha256, its one
checksum) is built in a hidden ``.tmp-step-*`` directory and renamed to ``step-XXXXXXXXX``:
that rename, with the run directory fsynced, is the commit. Old checkpoints are renamed to a
hidden ``.trash-*`` name before deletion, so a half-deleted one never looks like a checkpoint.
Resuming takes the highest step whose files match the manifest byte for byte.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from resnetv2 import jsontext

from .atomic import atomic_write_bytes, atomic_write_text, fsync_dir, is_disk_full, is_temp_name
from .errors import (
    CheckpointError,
    CheckpointWarning,
    CheckpointWriteError,
    CorruptCheckpointError,
    CorruptWeightsError,
    NoValidCheckpointError,
)
from .safe_load import encode_state, load_state_file
from .weights import (
    library_version,
    load_weights,
    refuse_non_finite,
    save_weights,
    strip_prefixes,
)

try:  # advisory locking keeps two writers from interleaving; absent on Windows
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.pt"
MANIFEST_FORMAT = "resnetv2.checkpoint"
STEP_DIR_PATTERN = re.compile(r"step-(\d+)")
BEST_FILE = "best.json"
_T = TypeVar("_T")


def step_dir_name(step: int) -> str:
    """The directory name of the checkpoint for ``step`` (zero-padded, but never sorted by)."""
    return f"step-{step:09d}"


def corrupt_checkpoint(path: Path, problem: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"checkpoint {str(path)!r} is not usable: {problem}. It is skipped when resuming; "
        "delete it, or restore it from a backup"
    )


def _check_file(directory: Path, name: Any, entry: Any) -> None:
    # A manifest is data from disk: never let it point outside its own directory.
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise corrupt_checkpoint(directory, f"the manifest lists an invalid file name {name!r}")
    if not isinstance(entry, dict):
        raise corrupt_checkpoint(directory, f"the manifest entry for {name} is malformed")
    try:
        size = (directory / name).stat().st_size
    except FileNotFoundError:
        raise corrupt_checkpoint(directory, f"{name} is missing") from None
    if size != entry.get("size"):  # sizes first: truncation is found without reading
        raise corrupt_checkpoint(
            directory, f"{name} has {size} bytes, the manifest says {entry.get('size')}"
        )
    hasher = hashlib.sha256()
    with open(directory / name, "rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    if hasher.hexdigest() != entry.get("sha256"):
        raise corrupt_checkpoint(directory, f"{name} fails its sha256 check (the file was altered)")


def verify_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a checkpoint directory against its manifest (see the module docstring); return
    the manifest or raise :class:`CorruptCheckpointError`."""
    directory = Path(path)
    try:
        manifest = jsontext.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise corrupt_checkpoint(
            directory, "manifest.json is missing (the save never finished)"
        ) from None
    except (OSError, ValueError) as exc:
        raise corrupt_checkpoint(directory, f"manifest.json is unreadable ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise corrupt_checkpoint(directory, "manifest.json is not a resnetv2 checkpoint manifest")
    match = STEP_DIR_PATTERN.fullmatch(directory.name)
    if match and manifest.get("step") != int(match.group(1)):
        raise corrupt_checkpoint(directory, f"the manifest is for step {manifest.get('step')!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not {MODEL_FILE, STATE_FILE} <= set(files):
        raise corrupt_checkpoint(directory, "the manifest does not list model and state files")
    for name, entry in files.items():
        _check_file(directory, name, entry)
    return manifest


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint that passed verification: its step, directory and manifest."""

    step: int
    path: Path
    manifest: dict[str, Any] = field(repr=False)


@dataclass
class Checkpoint:
    """A loaded checkpoint: CPU tensors for the model, the training state object, metadata."""

    step: int
    path: Path
    model_state: dict[str, torch.Tensor] = field(repr=False)
    train_state: Any = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)


class CheckpointManager:
    """Saves, prunes, verifies and loads the checkpoints of one training run.

    After each commit the newest ``keep_last`` checkpoints (by step, among steps up to the one
    just saved) plus the best one are kept; ``keep_last=None`` keeps everything. Before a
    commit, checkpoints beyond the newest ``keep_last`` are removed too (there are some only
    when ``keep_last`` was lowered since they were saved), so lowering it makes room. Concurrent
    savers are serialised by an advisory lock.
    """

    def __init__(self, directory: str | os.PathLike[str], keep_last: int | None = 2) -> None:
        if keep_last is not None and (type(keep_last) is not int or keep_last < 1):
            raise ValueError(f"keep_last must be a positive int or None, got {keep_last!r}")
        self.directory = Path(directory)
        self.keep_last = keep_last

    def _committed(self) -> list[tuple[int, Path]]:
        """Directories named like checkpoints, ascending by step number (not by name)."""
        if not self.directory.is_dir():
            return []
        found = [
            (int(match.group(1)), entry)
            for entry in self.directory.iterdir()
            if (match := STEP_DIR_PATTERN.fullmatch(entry.name)) and entry.is_dir()
        ]
        return sorted(found, key=lambda item: (item[0], item[1].name))

    def steps(self) -> list[int]:
        """Steps that have a checkpoint directory, ascending (not verified)."""
        return [step for step, _ in self._committed()]

    def best_step(self) -> int | None:
        """The step recorded as best, or ``None`` if no save was marked ``is_best``."""
        best_file = self.directory / BEST_FILE
        try:
            record = jsontext.loads(best_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CorruptCheckpointError(
                f"{str(best_file)!r} is unreadable ({exc}); delete it (the next save with "
                "is_best=True rewrites it)"
            ) from exc
        step = record.get("step") if isinstance(record, dict) else None
        if type(step) is not int:
            raise CorruptCheckpointError(f"{str(best_file)!r} does not name a step; delete it")
        return step

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:  # some network filesystems cannot lock: save unlocked
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
            yield
        finally:
            os.close(fd)  # closing releases the lock, as does the process dying

    def _remove_leftovers(self) -> None:  # left by saves that were killed
        for entry in self.directory.iterdir():
            if entry.name.startswith((".tmp-step-", ".trash-")) or is_temp_name(entry.name):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()

    def save(
        self,
        step: int,
        *,
        model_state: Mapping[str, torch.Tensor],
        train_state: Any = None,
        metadata: Mapping[str, Any] | None = None,
        is_best: bool = False,
    ) -> Path:
        """Commit the checkpoint for ``step`` (replacing any) and return its directory.

        NaN/Inf in ``model_state``, metadata that is not JSON and a ``train_state`` that
        :func:`~resnetv2.io.safe_load.encode_state` refuses are caught before anything is
        written. If anything fails part-way the partial checkpoint is removed, earlier ones are
        untouched and the error propagates (a full disk as :class:`CheckpointWriteError`).
        """
        if type(step) is not int or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        final = self.directory / step_dir_name(step)
        refuse_non_finite(model_state, f"checkpoint {str(final)!r}")
        model = strip_prefixes(model_state)
        meta = {**(metadata or {}), "step": step}
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"checkpoint metadata must be JSON-serialisable: {exc}") from exc
        state_bytes = encode_state(train_state)

        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock():
            self._remove_leftovers()
            if newer := [s for s in self.steps() if s > step]:
                warnings.warn(
                    f"saving step {step} in {str(self.directory)!r}, which already holds later "
                    f"checkpoints {newer[:5]}; resuming picks the highest step, so delete those "
                    "if they belong to an abandoned run",
                    CheckpointWarning,
                    stacklevel=2,
                )
            # Checkpoints beyond keep_last (kept lower than when they were saved, e.g. to make
            # room on a full disk) go first; at least keep_last complete ones always remain.
            self._prune(step - 1)
            self._commit(step, final, model, state_bytes, meta)
            if is_best:
                record = {"step": step, "checkpoint": step_dir_name(step)}
                atomic_write_text(self.directory / BEST_FILE, json.dumps(record, indent=2))
            self._prune(step)
        return final

    def _commit(self, step: int, final: Path, model: dict, state: bytes, meta: dict) -> None:
        tmp = self.directory / f".tmp-{final.name}-{os.getpid()}-{secrets.token_hex(4)}"
        displaced: Path | None = None
        try:
            tmp.mkdir()
            files = {  # the manifest's sha256 is the files' one checksum; they carry none
                MODEL_FILE: save_weights(
                    tmp / MODEL_FILE, model, meta, checksum=False, allow_non_finite=True
                ),
                STATE_FILE: atomic_write_bytes(tmp / STATE_FILE, state),
            }
            manifest = {
                "format": MANIFEST_FORMAT,
                "format_version": 1,
                "library_version": library_version(),
                "step": step,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "files": {name: {"size": d.size, "sha256": d.sha256} for name, d in files.items()},
            }
            atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            if final.exists():
                displaced = self.directory / f".trash-{final.name}-{secrets.token_hex(4)}"
                os.rename(final, displaced)
            os.rename(tmp, final)
            fsync_dir(self.directory)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if displaced is not None and not final.exists():
                with contextlib.suppress(OSError):
                    os.rename(displaced, final)
            if isinstance(exc, CheckpointWriteError) or is_disk_full(exc):
                raise CheckpointWriteError(
                    exc.errno or errno.ENOSPC,  # type: ignore[union-attr]
                    f"No space left on the device while saving checkpoint {str(final)!r} "
                    f"(writing {getattr(exc, 'filename', None) or 'it'}); nothing was "
                    "committed and earlier checkpoints are intact. Free disk space, or keep "
                    "fewer checkpoints (train --resume RUN --keep-checkpoints 1; keep_last in "
                    "the API), then save again",
                    str(final),
                ) from exc
            raise
        if displaced is not None:
            shutil.rmtree(displaced, ignore_errors=True)

    def _prune(self, current: int) -> None:
        if self.keep_last is None:
            return
        try:
            best = self.best_step()
        except CorruptCheckpointError:
            best = None
        candidates = [(s, p) for s, p in self._committed() if s <= current]
        complete = [s for s, p in candidates if (p / MANIFEST).exists()]
        keep = {*complete[-self.keep_last :], current, best}
        for step, path in candidates:
            if step in keep:
                continue
            # Rename first: a kill during rmtree must leave no half-deleted "step-*" directory.
            trash = self.directory / f".trash-{path.name}-{secrets.token_hex(4)}"
            try:
                os.rename(path, trash)
                shutil.rmtree(trash)
            except OSError as exc:
                warnings.warn(
                    f"could not delete old checkpoint {str(path)!r}: {exc}",
                    CheckpointWarning,
                    stacklevel=3,
                )

    def _load_dir(self, step: int, path: Path) -> Checkpoint:
        verify_checkpoint(path)
        try:
            model_state, metadata = load_weights(path / MODEL_FILE)
            train_state = load_state_file(path / STATE_FILE)
        except CorruptWeightsError as exc:
            raise corrupt_checkpoint(path, str(exc)) from exc
        return Checkpoint(step, path, model_state, train_state, metadata)

    def _newest(self, load: Callable[[int, Path], _T]) -> _T | None:
        for step, path in reversed(self._committed()):
            try:
                return load(step, path)
            except (CheckpointError, OSError) as exc:
                warnings.warn(
                    f"skipping checkpoint {str(path)!r}: {exc}", CheckpointWarning, stacklevel=3
                )
        return None

    def latest_valid(self) -> CheckpointInfo | None:
        """The newest checkpoint that verifies (corrupt ones are skipped with a
        :class:`CheckpointWarning`), or ``None``."""
        return self._newest(lambda step, path: CheckpointInfo(step, path, verify_checkpoint(path)))

    def load_latest(self) -> Checkpoint | None:
        """Load the newest valid checkpoint, falling back past corrupt ones (with a warning).

        ``None`` when the directory holds no checkpoint at all (a fresh run);
        :class:`NoValidCheckpointError` when checkpoints exist but none verifies, so a
        damaged run is never silently restarted from scratch.
        """
        found = self._newest(self._load_dir)
        if found is None and (count := len(self._committed())):
            raise NoValidCheckpointError(
                f"none of the {count} checkpoints in {str(self.directory)!r} verifies (see the "
                "warnings above); restore one from a backup, or delete them to start from scratch"
            )
        return found

    def load(self, step: int) -> Checkpoint:
        """Load the checkpoint for ``step``; raise rather than fall back if it is corrupt."""
        for found, path in self._committed():
            if found == step:
                return self._load_dir(step, path)
        raise NoValidCheckpointError(
            f"there is no checkpoint for step {step} in {str(self.directory)!r} (available: "
            f"{self.steps()[-10:]})"
        )

    def load_best(self) -> Checkpoint:
        """Load the checkpoint recorded as best; raise if none is recorded or it is corrupt."""
        best = self.best_step()
        if best is None:
            raise NoValidCheckpointError(
                f"no best checkpoint is recorded in {str(self.directory)!r}; pass is_best=True "
                "to save() to record one"
            )
        return self.load(best)
