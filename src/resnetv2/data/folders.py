"""Class-folder datasets: scan ``root/<class>/<image>`` into a sorted list of files and labels.

Rules (the same as torchvision's ``ImageFolder`` where it has one):

* classes are the sub-folders of ``root``, sorted by name, label = position in that order;
* images are found anywhere below a class folder, sorted by relative path;
* anything whose name starts with ``.`` (hidden files, ``.DS_Store``, ``.ipynb_checkpoints``,
  the data cache folder) and files whose extension is not an image's are ignored;
* a class folder with no images is an error naming it; fewer than two classes is an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from resnetv2.data.decode import IMAGE_EXTENSIONS
from resnetv2.errors import DataError


@dataclass(frozen=True)
class FolderIndex:
    """The images of one class-folder tree: parallel tuples of files and integer labels.

    ``names`` are the paths relative to ``root`` with ``/`` separators — the stable keys used
    by splits and caches. Strings rather than ``Path`` objects: pathlib costs seconds on
    50,000 files.
    """

    root: Path
    class_names: tuple[str, ...]
    names: tuple[str, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def files(self) -> list[str]:
        """Full paths of the images, in index order."""
        root = os.fspath(self.root)
        return [os.path.join(root, *name.split("/")) for name in self.names]

    def subset(self, indices: Iterable[int]) -> FolderIndex:
        indices = list(indices)
        return FolderIndex(
            self.root,
            self.class_names,
            tuple(self.names[i] for i in indices),
            tuple(self.labels[i] for i in indices),
        )


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _images_below(root: str, class_name: str, extensions: frozenset[str]) -> list[str]:
    """Relative names (``class/sub/file.jpg``) of the images below ``root/class_name``."""
    found: list[str] = []
    visited: set[tuple[int, int]] = set()
    top = os.path.join(root, class_name)
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        stat = os.stat(dirpath)
        # Symlinked folders are followed (datasets are often assembled from links); the
        # visited set stops a link cycle from walking forever.
        if (stat.st_dev, stat.st_ino) in visited:
            dirnames[:] = []
            continue
        visited.add((stat.st_dev, stat.st_ino))
        dirnames[:] = [d for d in dirnames if not _is_hidden(d)]
        below = os.path.relpath(dirpath, top).replace(os.sep, "/")
        prefix = class_name + "/" if below == "." else f"{class_name}/{below}/"
        found.extend(
            prefix + name
            for name in filenames
            if not _is_hidden(name) and os.path.splitext(name)[1].lower() in extensions
        )
    return sorted(found)


def scan_class_folders(
    root: str | os.PathLike, *, extensions: frozenset[str] = IMAGE_EXTENSIONS
) -> FolderIndex:
    """Index ``root/<class>/<image>``; raise ``ValueError`` naming empty class folders."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder (expected root/<class>/<image>)")
    class_names = sorted(
        entry.name
        for entry in os.scandir(root)
        if not _is_hidden(entry.name) and entry.is_dir(follow_symlinks=True)
    )
    if not class_names:
        raise DataError(
            f"no class folders in {root}: expected one sub-folder per class, "
            f"e.g. {root / 'cat'}/0001.jpg"
        )
    names: list[str] = []
    labels: list[int] = []
    empty: list[str] = []
    for label, class_name in enumerate(class_names):
        images = _images_below(os.fspath(root), class_name, extensions)
        if not images:
            empty.append(class_name)
        names.extend(images)
        labels.extend([label] * len(images))
    if empty:
        listed = ", ".join(f"{name!r} ({root / name})" for name in empty)
        raise DataError(
            f"empty class folder{'s' if len(empty) > 1 else ''} in {root}: {listed} contain no "
            f"images (looked for {', '.join(sorted(extensions))}); add images or remove the folder"
        )
    if len(class_names) < 2:
        raise DataError(
            f"found only one class folder ({class_names[0]!r}) in {root}; a classifier needs at "
            f"least two. If {root} holds train/ and val/ folders, pass source={root / 'train'} "
            f"and val_dir={root / 'val'}"
        )
    return FolderIndex(root, tuple(class_names), tuple(names), tuple(labels))


def check_same_classes(train: FolderIndex, val: FolderIndex) -> None:
    """Separate train and val folders must name the same classes, or labels would disagree."""
    if train.class_names == val.class_names:
        return
    missing = sorted(set(train.class_names) - set(val.class_names))
    extra = sorted(set(val.class_names) - set(train.class_names))
    parts = []
    if missing:
        parts.append(f"missing from {val.root}: {', '.join(map(repr, missing))}")
    if extra:
        parts.append(f"not in {train.root}: {', '.join(map(repr, extra))}")
    raise DataError(
        "train and validation folders must contain the same class folders; " + "; ".join(parts)
    )
