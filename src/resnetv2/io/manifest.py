"""Checkpoint manifests: the record, written last, that makes a checkpoint directory valid.

``manifest.json`` names the step and, for every file of the checkpoint, its size and sha256:
the checkpoint's one checksum. :func:`verify_checkpoint` accepts a directory only if the
manifest parses, matches the directory's step, and every listed file has exactly the recorded
size and digest, so a save that never finished (no manifest), a truncated file or a single
flipped byte is caught before any tensor is loaded.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from .errors import CorruptCheckpointError
from .safetensors_file import FileDigest, library_version

MANIFEST = "manifest.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.pt"
MANIFEST_FORMAT = "resnetv2.checkpoint"
STEP_DIR_PATTERN = re.compile(r"step-(\d+)")


def step_dir_name(step: int) -> str:
    """The directory name of the checkpoint for ``step`` (zero-padded, but never sorted by)."""
    return f"step-{step:09d}"


def digest(data: bytes) -> FileDigest:
    """Size and sha256 of bytes about to be written."""
    return FileDigest(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def build_manifest(step: int, files: dict[str, FileDigest]) -> dict[str, Any]:
    """The manifest document for a checkpoint of ``step`` made of ``files``."""
    return {
        "format": MANIFEST_FORMAT,
        "format_version": 1,
        "library_version": library_version(),
        "step": step,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "files": {name: {"size": d.size, "sha256": d.sha256} for name, d in files.items()},
    }


def corrupt_checkpoint(path: Path, problem: str) -> CorruptCheckpointError:
    """The error for a checkpoint directory that cannot be used, and why."""
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
    """Check a checkpoint directory against its manifest; return the manifest.

    Raises :class:`CorruptCheckpointError` if the manifest is missing or malformed, names a
    step other than the directory's, or any listed file is missing or differs in size or sha256.
    """
    directory = Path(path)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
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
