"""Atomic file writes: a file is either its old bytes or its complete new bytes, never a mix.

Every write goes to a temporary file in the same folder (so the final rename cannot cross a
filesystem), is flushed and fsynced, renamed over the target with :func:`os.replace`, and the
folder is fsynced so the rename itself survives a power cut. On any exception — including
``KeyboardInterrupt`` — the temporary file is removed, the target keeps its previous bytes and
the exception propagates. A full disk (``ENOSPC``/``EDQUOT``) is re-raised as
:class:`~resnetv2.io.errors.CheckpointWriteError` naming the target path.

A process killed with SIGKILL cannot clean up; its temporary file keeps a recognisable name
(:func:`is_temp_name`) so readers ignore it and the next writer can remove it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import CheckpointWriteError

__all__ = [
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "disk_full_error",
    "fsync_dir",
    "is_disk_full",
    "is_temp_name",
    "temp_path_for",
]

TEMP_MARKER = ".tmp-"
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
# fsync on a directory is meaningless or refused on some filesystems (and on Windows); the data
# itself has been fsynced by then, so these are safe to ignore.
_DIR_FSYNC_IGNORED = frozenset(
    {errno.EINVAL, errno.EBADF, errno.EACCES, getattr(errno, "ENOTSUP", errno.EINVAL)}
)


def temp_path_for(path: str | os.PathLike[str]) -> Path:
    """Return a fresh temporary path next to ``path``; it keeps the suffix for picky writers.

    Some libraries look at (or append) the file extension, so ``model.onnx`` becomes
    ``.model.tmp-<pid>-<random>.onnx``.
    """
    target = Path(path)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return target.with_name(f".{target.stem}{TEMP_MARKER}{token}{target.suffix}")


def is_temp_name(name: str) -> bool:
    """Whether a file name was made by :func:`temp_path_for` (a write that never finished)."""
    return name.startswith(".") and TEMP_MARKER in name


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``OSError`` meaning "no space left" (disk or quota)."""
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS


def disk_full_error(path: str | os.PathLike[str], exc: OSError) -> CheckpointWriteError:
    """Build the error raised when writing ``path`` ran out of space."""
    return CheckpointWriteError(
        exc.errno or errno.ENOSPC,
        f"No space left on the device while writing {os.fspath(path)!r}; the previous file "
        "(if any) is unchanged. Free disk space (or lower the number of kept checkpoints) "
        "and try again",
        os.fspath(path),
    )


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """fsync a directory so renames and creations inside it are durable."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError as exc:
        if exc.errno in _DIR_FSYNC_IGNORED or os.name == "nt":
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_IGNORED:
            raise
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    # Windows refuses fsync on a read-only descriptor; POSIX accepts either.
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _commit(path: Path, write: Callable[[Path], object], *, fsync_written: bool) -> None:
    tmp = temp_path_for(path)
    try:
        write(tmp)
        if not tmp.exists():
            raise FileNotFoundError(
                errno.ENOENT, f"the writer did not create the file it was given for {path}", tmp
            )
        if fsync_written:
            _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        _remove_quietly(tmp)
        if is_disk_full(exc):
            raise disk_full_error(path, exc) from exc  # type: ignore[arg-type]
        raise
    fsync_dir(path.parent)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    # os.write may write less than asked (signals, >2 GiB on Linux); loop until done.
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """Atomically replace ``path`` with ``data`` (see the module docstring for guarantees)."""
    target = Path(path)

    def write(tmp: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o666)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    _commit(target, write, fsync_written=False)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Atomically replace ``path`` with ``text`` encoded as ``encoding``."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_with(path: str | os.PathLike[str], writer: Callable[[Path], object]) -> None:
    """Atomically produce ``path`` with a library that insists on writing a file by name.

    ``writer`` receives a temporary path in the same folder and must write the whole file
    there (e.g. ``lambda tmp: safetensors.torch.save_file(tensors, tmp)`` or
    ``lambda tmp: onnx.save(model, tmp)``). It is then fsynced and renamed over ``path``.
    """
    _commit(Path(path), writer, fsync_written=True)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on a clean exit it atomically replaces ``path``.

    ``mode`` must be ``"wb"`` or ``"w"``. If the ``with`` body raises, the temporary file is
    removed and ``path`` is untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports mode 'wb' or 'w', not {mode!r}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    target = Path(path)
    tmp = temp_path_for(target)
    try:
        with open(tmp, mode.replace("w", "x"), encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        _remove_quietly(tmp)
        if is_disk_full(exc):
            raise disk_full_error(target, exc) from exc  # type: ignore[arg-type]
        raise
    fsync_dir(target.parent)
