"""Which data a run used: absolute folder paths plus a fingerprint of their files.

A data source stored as typed (``source: photos``) would make ``evaluate RUN`` or ``--resume
RUN`` from another directory fail, or silently use whatever folder of that name was there.
So a run records the absolute path and a fingerprint — the number of image files and a hash
of their relative names and sizes — and both commands compare the folder they find with it,
refusing a moved, swapped or edited dataset with the difference.
Names and sizes (not contents) keep the check to one ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

from resnetv2.errors import DataError

BUILTIN_SOURCES = ("digits", "cifar10", "cifar100")


def is_folder_source(source: str | None) -> bool:
    """Whether ``source`` names a folder (anything but a built-in dataset name)."""
    return source is not None and source not in BUILTIN_SOURCES


def absolute_source(source: str | None) -> str | None:
    """``source`` as an absolute, user-expanded path; built-in names and ``None`` unchanged."""
    if not is_folder_source(source):
        return source
    return os.path.abspath(os.path.expanduser(source))


def folder_fingerprint(root: str | os.PathLike) -> dict[str, Any]:
    """``{"files": N, "sha256": ...}`` over the sorted ``relative name, size`` of every image
    a scan of ``root`` indexes (the same files training uses)."""
    from resnetv2.data.folders import scan_class_folders

    with warnings.catch_warnings():  # the training scan already reported skipped entries
        warnings.simplefilter("ignore")
        index = scan_class_folders(root)
    digest = hashlib.sha256()
    for name, path in zip(index.names, index.files, strict=True):
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1
        digest.update(f"{name}\0{size}\n".encode("utf-8", "surrogateescape"))
    return {"files": len(index), "sha256": digest.hexdigest()}


def data_fingerprint(source: str | None, val_data: str | None = None) -> dict[str, Any] | None:
    """The fingerprint of a run's folder data (``source`` and ``val_data``); ``None`` for
    built-in datasets, whose content is fixed."""
    if not is_folder_source(source):
        return None
    record = {"source": folder_fingerprint(source)}
    if is_folder_source(val_data):
        record["val_data"] = folder_fingerprint(val_data)
    return record


def check_fingerprint(
    saved: dict[str, Any] | None,
    source: str | None,
    val_data: str | None,
    *,
    what: str,
    fix: str = "pass the data explicitly (--data DIR)",
) -> None:
    """Raise :class:`DataError` when the folders found differ from the ``saved`` record.

    ``what`` names the command for the message (``"--resume RUN"``, ``"evaluate RUN"``),
    ``fix`` the way out. A run without a record (older versions, built-in data) is not
    checked.
    """
    if not saved or not is_folder_source(source):
        return
    if not Path(source).is_dir():
        raise DataError(
            f"{what}: the run's data folder {source} no longer exists; move it back, or {fix}"
        )
    now = data_fingerprint(source, val_data) or {}
    for key, folder in (("source", source), ("val_data", val_data)):
        before, after = saved.get(key), now.get(key)
        if before is not None and before != after:
            count = after["files"] if after else 0
            raise DataError(
                f"{what}: the data folder {folder} is not the one the run used: it held "
                f"{before.get('files')} image files then and {count} now, or their names or "
                f"sizes changed; restore it, or {fix}"
            )
