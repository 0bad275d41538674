"""Class-folder datasets: scan ``root/<class>/<image>`` into a sorted list of files and labels.

Rules (the same as torchvision's ``ImageFolder`` where it has one):

* classes are the sub-folders of ``root``, sorted by name, label = position in that order;
* images are found anywhere below a class folder, sorted by relative path;
* anything whose name starts with ``.`` (hidden files, ``.DS_Store``, ``.ipynb_checkpoints``,
  the data cache folder) and files whose extension is not an image's are ignored;
* a class folder with no images is an error naming it; fewer than two classes is an error;
* entries that cannot be images of their class are skipped with one
  :class:`SkippedFileWarning` naming them (printably): FIFOs, sockets and other non-regular
  files (opening a FIFO would block forever), names that are not valid UTF-8, and symlinks
  that resolve into another class, back into the dataset or round a cycle.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from resnetv2.data.decode import IMAGE_EXTENSIONS
from resnetv2.data.names import is_utf8_name as is_utf8_name  # re-exported
from resnetv2.data.names import printable_name as printable_name  # re-exported
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


class SkippedFileWarning(UserWarning):
    """Entries of a data folder that were left out: not regular files (FIFOs, sockets,
    devices), names that are not valid UTF-8, or symlinks that lead to another class or back
    into the dataset."""


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class _Walker:
    """Walks every class folder of one dataset with shared bookkeeping.

    Symlinks are followed (datasets are often assembled from links) but a link must not make
    one image count for two classes: a link that resolves inside the dataset root but outside
    its own class folder (``cat/loop -> ..``, ``cat/x -> ../dog``), a cycle, or a folder outside
    the root already indexed for another class is skipped and reported.
    """

    def __init__(self, root: str, extensions: frozenset[str]) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.extensions = extensions
        self.claimed: dict[str, str] = {}  # real folder outside the root -> class
        self.tops: dict[str, str] = {}  # class -> its real folder
        self.skipped: list[str] = []

    def skip(self, relative: str, reason: str) -> None:
        self.skipped.append(f"{printable_name(relative)} ({reason})")

    def register(self, class_names: list[str]) -> None:
        """Record every class folder's real location before any is walked, so a link from
        one class into another is recognised whichever is scanned first."""
        for class_name in class_names:
            real_top = os.path.realpath(os.path.join(self.root, class_name))
            clash = [
                o
                for o, top in self.tops.items()
                if _inside(real_top, top) or _inside(top, real_top)
            ]
            if clash:
                self.skip(class_name, f"the same folder as class {clash[0]!r} (symlink)")
            else:
                self.tops[class_name] = real_top

    def images(self, class_name: str) -> list[str]:
        if class_name not in self.tops:
            return []
        top = os.path.join(self.root, class_name)
        real_top = self.tops[class_name]
        found: list[str] = []
        self._walk(top, class_name, real_top, set(), found)
        return sorted(found)

    def _walk(self, folder, relative, real_top, active, found) -> None:
        real = os.path.realpath(folder)
        if real in active:
            self.skip(relative, "symlink cycle")
            return
        if not _inside(real, real_top):
            if _inside(real, self.real_root) or self._other_class(real, real_top):
                self.skip(relative, "symlink into another part of the dataset")
                return
            owner = self.claimed.setdefault(real, relative.split("/")[0])
            if owner != relative.split("/")[0]:
                self.skip(relative, f"symlink to a folder already indexed for class {owner!r}")
                return
        active = active | {real}
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            self.skip(relative, f"cannot list: {exc.strerror or exc}")
            return
        for entry in entries:
            name = entry.name
            if _is_hidden(name):
                continue
            path = f"{relative}/{name}"
            if not is_utf8_name(name):
                self.skip(path, "name is not valid UTF-8; rename the file")
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                self._walk(entry.path, path, real_top, active, found)
                continue
            if os.path.splitext(name)[1].lower() not in self.extensions:
                continue
            try:
                regular = entry.is_file()
            except OSError:
                regular = False
            if not regular:
                self.skip(
                    path, "not a regular file" if os.path.lexists(entry.path) else "broken link"
                )
                continue
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                outside_own = not _inside(target, real_top)
                if outside_own and (
                    _inside(target, self.real_root) or self._other_class(target, real_top)
                ):
                    self.skip(path, "symlink to a file of another class")
                    continue
            found.append(path)

    def _other_class(self, real: str, real_top: str) -> bool:
        """Whether ``real`` lies in another class's folder (class folders may be links to
        folders outside the root)."""
        return any(_inside(real, top) for top in self.tops.values() if top != real_top)

    def warn(self) -> None:
        if self.skipped:
            shown = "; ".join(self.skipped[:5])
            more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            warnings.warn(
                f"skipped {len(self.skipped)} entr{'y' if len(self.skipped) == 1 else 'ies'} "
                f"of {printable_name(self.root)}: {shown}{more}",
                SkippedFileWarning,
                stacklevel=3,
            )


def scan_class_folders(
    root: str | os.PathLike, *, extensions: frozenset[str] = IMAGE_EXTENSIONS
) -> FolderIndex:
    """Index ``root/<class>/<image>``; raise ``ValueError`` naming empty class folders."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder (expected root/<class>/<image>)")
    walker = _Walker(os.fspath(root), extensions)
    class_names = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if _is_hidden(entry.name) or not entry.is_dir(follow_symlinks=True):
            continue
        if not is_utf8_name(entry.name):
            walker.skip(entry.name, "class folder name is not valid UTF-8; rename it")
            continue
        class_names.append(entry.name)
    walker.register(class_names)
    if not class_names:
        raise DataError(
            f"no class folders in {root}: expected one sub-folder per class, "
            f"e.g. {root / 'cat'}/0001.jpg"
        )
    names: list[str] = []
    labels: list[int] = []
    empty: list[str] = []
    for label, class_name in enumerate(class_names):
        images = walker.images(class_name)
        if not images:
            empty.append(class_name)
        names.extend(images)
        labels.extend([label] * len(images))
    walker.warn()
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
