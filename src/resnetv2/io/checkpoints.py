"""Training-run checkpoints that are either complete and verified, or ignored.

Layout of a run directory (see ``docs/checkpoints.md``)::

    run/
      step-000000100/          one committed checkpoint per step
        model.safetensors      model weights + JSON metadata (a plain weights file)
        state.pt               training state, read back with weights_only=True only
        manifest.json          written last: step, size and sha256 of both files
      best.json                {"step": 100, "checkpoint": "step-000000100"}, atomic

A checkpoint is built in a hidden ``.tmp-step-*`` directory (every file written atomically,
the manifest last), then renamed to ``step-XXXXXXXXX`` and the run directory fsynced: that
rename is the commit. Old checkpoints are pruned only after a commit, renamed to a hidden
``.trash-*`` name first, so a half-deleted checkpoint never appears under a checkpoint name.
Resuming walks checkpoints from the highest step down and takes the first that verifies.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_bytes, atomic_write_text, fsync_dir, is_disk_full, is_temp_name
from .errors import (
    CheckpointError,
    CheckpointWarning,
    CheckpointWriteError,
    CorruptCheckpointError,
    CorruptWeightsError,
    NonFiniteCheckpointError,
    NoValidCheckpointError,
)
from .manifest import (
    MANIFEST,
    MODEL_FILE,
    STATE_FILE,
    STEP_DIR_PATTERN,
    build_manifest,
    corrupt_checkpoint,
    digest,
    step_dir_name,
    verify_checkpoint,
)
from .state import encode_state, load_state_file
from .weights import load_weights, non_finite_tensors, save_weights, short_list, strip_prefixes

try:  # advisory locking keeps two writers from interleaving; absent on Windows
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


BEST_FILE = "best.json"


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
    just saved) plus the best one are kept; ``keep_last=None`` keeps everything. One process
    should save into a directory; concurrent savers are serialised by an advisory lock.
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
            record = json.loads(best_file.read_text(encoding="utf-8"))
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

    def _remove_leftovers(self) -> None:
        """Delete temporary and trash entries left by saves that were killed."""
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
        """Commit the checkpoint for ``step`` and return its directory.

        ``model_state`` is stored with :func:`~resnetv2.io.weights.save_weights` (``metadata``
        plus ``step`` in its header), ``train_state`` with :func:`~resnetv2.io.state
        .encode_state`. NaN/Inf in the model state raises :class:`NonFiniteCheckpointError`
        and nothing is written. If anything fails part-way the partial checkpoint is removed,
        earlier checkpoints are untouched and the error propagates (a full disk as
        :class:`CheckpointWriteError` naming the checkpoint). Re-saving a step replaces it.
        """
        if type(step) is not int or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        final = self.directory / step_dir_name(step)
        if bad := non_finite_tensors(model_state):
            raise NonFiniteCheckpointError(
                f"Refusing to save checkpoint {str(final)!r}: the model state holds NaN or Inf "
                f"in {len(bad)} tensor(s) ({short_list(bad)}). Training diverged; nothing was "
                "written and earlier checkpoints are intact. Resume from the last good one "
                "with a lower learning rate"
            )
        meta = {**(metadata or {}), "step": step}
        try:  # fail on unserialisable metadata or state before touching the disk
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
            self._commit(step, final, strip_prefixes(model_state), state_bytes, meta)
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
            # The manifest's sha256 is the checkpoint's checksum; the files carry none.
            model_digest = save_weights(tmp / MODEL_FILE, model, meta, checksum=False)
            atomic_write_bytes(tmp / STATE_FILE, state)
            manifest = build_manifest(step, {MODEL_FILE: model_digest, STATE_FILE: digest(state)})
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
                    "committed and earlier checkpoints are intact. Free disk space or lower "
                    "keep_last, then save again",
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

    def _skip(self, path: Path, exc: BaseException) -> None:
        warnings.warn(f"skipping checkpoint {str(path)!r}: {exc}", CheckpointWarning, stacklevel=3)

    def latest_valid(self) -> CheckpointInfo | None:
        """The newest checkpoint that verifies (corrupt ones are skipped with a
        :class:`CheckpointWarning`), or ``None``."""
        for step, path in reversed(self._committed()):
            try:
                return CheckpointInfo(step, path, verify_checkpoint(path))
            except (CheckpointError, OSError) as exc:
                self._skip(path, exc)
        return None

    def load_latest(self) -> Checkpoint | None:
        """Load the newest valid checkpoint, falling back past corrupt ones (with a warning).

        ``None`` when the directory holds no checkpoint at all (a fresh run);
        :class:`NoValidCheckpointError` when checkpoints exist but none verifies, so a
        damaged run is never silently restarted from scratch.
        """
        committed = self._committed()
        for step, path in reversed(committed):
            try:
                return self._load_dir(step, path)
            except (CheckpointError, OSError) as exc:
                self._skip(path, exc)
        if committed:
            raise NoValidCheckpointError(
                f"none of the {len(committed)} checkpoints in {str(self.directory)!r} verifies "
                "(see the warnings above); restore one from a backup, or delete them to start "
                "from scratch"
            )
        return None

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
