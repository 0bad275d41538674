"""Atomic file writes: a file is either its old bytes or its complete new bytes, never a mix.

Each write goes to a hidden temporary file in the same folder (so the rename cannot cross a
filesystem), is fsynced, renamed over the target with :func:`os.replace`, and the folder is
fsynced so the rename survives a power cut. On any exception (``KeyboardInterrupt`` included)
the temporary file is removed and the target keeps its old bytes; a full disk becomes
:class:`~resnetv2.io.errors.CheckpointWriteError` naming the target. A writer killed by SIGKILL
leaves a temporary file that :func:`is_temp_name` recognises, so readers ignore it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import CheckpointWriteError

TEMP_MARKER = ".tmp-"
_DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
# Directory fsync is refused by some filesystems (and Windows); the data is fsynced by then.
_DIR_FSYNC_IGNORED = frozenset(
    {errno.EINVAL, errno.EBADF, errno.EACCES, getattr(errno, "ENOTSUP", errno.EINVAL)}
)


@dataclass(frozen=True)
class FileDigest:
    """Size in bytes and sha256 (hex) of a file as written: a checkpoint manifest's entry."""

    size: int
    sha256: str


def temp_path_for(path: str | os.PathLike[str]) -> Path:
    """A fresh hidden temporary path next to ``path``, keeping the suffix for picky writers
    (``model.onnx`` becomes ``.model.tmp-<pid>-<random>.onnx``)."""
    target = Path(path)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return target.with_name(f".{target.stem}{TEMP_MARKER}{token}{target.suffix}")


def is_temp_name(name: str) -> bool:
    """Whether a file name was made by :func:`temp_path_for` (a write that never finished)."""
    return name.startswith(".") and TEMP_MARKER in name


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``OSError`` meaning "no space left" (disk or quota)."""
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """fsync a directory so renames and creations inside it are durable."""
    fd = None
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_IGNORED and os.name != "nt":
            raise
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path; once the body has written and fsynced it, it replaces ``path``."""
    tmp = temp_path_for(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if is_disk_full(exc):
            raise CheckpointWriteError(
                exc.errno or errno.ENOSPC,  # type: ignore[union-attr]
                f"No space left on the device while writing {os.fspath(path)!r}; the previous "
                "file (if any) is unchanged. Free disk space (or lower the number of kept "
                "checkpoints) and try again",
                os.fspath(path),
            ) from exc
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes | bytearray | memoryview
) -> FileDigest:
    """Atomically replace ``path`` with ``data``; return the size and sha256 written."""
    view = memoryview(data).cast("B")
    written = FileDigest(size=view.nbytes, sha256=hashlib.sha256(view).hexdigest())
    with _replacing(Path(path)) as tmp:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o666)
        try:
            while view:  # os.write may write less than asked (signals, > 2 GiB)
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    return written


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Atomically replace ``path`` with ``text`` encoded as ``encoding``."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_with(path: str | os.PathLike[str], writer: Callable[[Path], object]) -> None:
    """Atomically produce ``path`` with a library that insists on writing a file by name.

    ``writer`` receives a temporary path in the same folder and must write the whole file
    there (e.g. ``lambda tmp: onnx.save(model, tmp)``); it is then fsynced and renamed.
    """
    with _replacing(Path(path)) as tmp:
        writer(tmp)
        if not tmp.exists():
            raise FileNotFoundError(
                errno.ENOENT, f"the writer did not create the file it was given for {path}", tmp
            )
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing (``"wb"`` or ``"w"``); a clean exit from the ``with``
    block atomically replaces ``path``, an exception leaves it untouched."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports mode 'wb' or 'w', not {mode!r}")
    encoding = encoding or ("utf-8" if mode == "w" else None)
    with _replacing(Path(path)) as tmp, open(tmp, mode.replace("w", "x"), encoding=encoding) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())
