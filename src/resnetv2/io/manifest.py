"""Checkpoint manifests: the record, written last, that makes a checkpoint directory valid.

``manifest.json`` names the step and, for every file of the checkpoint, its size and sha256.
:func:`verify_checkpoint` accepts a directory only if the manifest parses, matches the
directory's step, and every listed file has exactly the recorded size and digest, so a save
that never finished (no manifest), a truncated file or a single flipped byte is caught before
any tensor is loaded.
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

__all__ = [
    "MANIFEST",
    "MODEL_FILE",
    "STATE_FILE",
    "STEP_DIR_PATTERN",
    "build_manifest",
    "corrupt_checkpoint",
    "step_dir_name",
    "verify_checkpoint",
]

MANIFEST = "manifest.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"
MANIFEST_FORMAT = "resnetv2.checkpoint"
MANIFEST_VERSION = 1
STEP_DIR_PATTERN = re.compile(r"step-(\d+)")
_HASH_CHUNK = 1 << 20


def step_dir_name(step: int) -> str:
    """The directory name of the checkpoint for ``step`` (zero-padded, but never sorted by)."""
    return f"step-{step:09d}"


def build_manifest(step: int, files: dict[str, FileDigest]) -> dict[str, Any]:
    """The manifest document for a checkpoint of ``step`` made of ``files``."""
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "library_version": library_version(),
        "step": step,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "files": {name: {"size": d.size, "sha256": d.sha256} for name, d in files.items()},
    }


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def corrupt_checkpoint(path: Path, problem: str) -> CorruptCheckpointError:
    """The error for a checkpoint directory that cannot be used, and why."""
    return CorruptCheckpointError(
        f"checkpoint {str(path)!r} is not usable: {problem}. It is skipped when resuming; "
        "delete it, or restore it from a backup"
    )


def verify_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a checkpoint directory against its manifest; return the manifest.

    Raises :class:`CorruptCheckpointError` if the manifest is missing or malformed, names a
    step other than the directory's, or any listed file is missing, has the wrong size or the
    wrong sha256. Sizes are compared before hashing, so truncation is found without reading.
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
        # A manifest is data from disk: never let it point outside its own directory.
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise corrupt_checkpoint(directory, f"the manifest lists an invalid file name {name!r}")
        if not isinstance(entry, dict):
            raise corrupt_checkpoint(directory, f"the manifest entry for {name} is malformed")
        file_path = directory / name
        try:
            size = file_path.stat().st_size
        except FileNotFoundError:
            raise corrupt_checkpoint(directory, f"{name} is missing") from None
        if size != entry.get("size"):
            raise corrupt_checkpoint(
                directory, f"{name} has {size} bytes, the manifest says {entry.get('size')}"
            )
        digest = _file_sha256(file_path)
        if digest != entry.get("sha256"):
            raise corrupt_checkpoint(
                directory, f"{name} fails its sha256 check (the file was altered)"
            )
    return manifest
