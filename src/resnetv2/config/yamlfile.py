"""Reading YAML config files defensively: bounded size, no duplicate keys, one-line errors.

PyYAML's ``safe_load`` runs no code, but it still expands anchors and aliases: nine levels
of ``&a [*b, *b, ...]`` turn a 1 kB file into billions of nodes (the "billion laughs"), and
it keeps the last of two equal keys without a word. A config is a small tree, so the
document is composed first, its size *after* alias expansion is counted without expanding
it, and anything beyond :data:`MAX_NODES` (or a recursive alias) is refused before a single
Python object is built. Duplicate keys are refused too, with their line.
"""

from __future__ import annotations

import os
import reprlib
from pathlib import Path
from typing import Any

import yaml

from resnetv2.config.sections import ConfigError

MAX_NODES = 10_000
"""Most YAML nodes a config may hold once aliases are expanded (the largest recipe has ~150)."""

MAX_BYTES = 1024 * 1024
"""Largest config file read (1 MiB): configs are hand-written and a few kB."""

_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 6
_SHORT.maxlevel = 3


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to a few dozen characters, for error messages.

    A message never formats a user value whole: a value may be huge (an expanded alias
    tree, a megabyte string) and formatting it could exhaust memory before the error prints.
    """
    text = _SHORT.repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate mapping keys."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable key: SafeLoader reports it below
                break
            if duplicate:
                raise ConfigError(
                    f"duplicate key {short_repr(key)} at line {key_node.start_mark.line + 1} "
                    f"(first at line {seen[key]}); keep one"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Number of nodes in ``root`` with every alias expanded, computed on the shared graph
    (each node once); raises :class:`ConfigError` past ``limit`` or on a recursive alias."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError("a recursive YAML alias (an anchor used inside itself)")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > limit:
                raise ConfigError(
                    f"the YAML expands to more than {limit:,} values (anchors/aliases "
                    "repeated inside each other?); write the values out"
                )
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _one_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def parse_yaml_text(text: str, *, where: str = "") -> Any:
    """Parse ``text`` as one YAML document under the bounds above; errors start with
    ``where`` when given."""
    prefix = f"{where}: " if where else ""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, MAX_NODES)
        return loader.construct_document(node)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{prefix}not valid YAML at {_one_line(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{prefix}the YAML is nested too deeply") from None
    finally:
        loader.dispose()


def read_yaml_file(path: str | os.PathLike) -> Any:
    """The parsed content of a YAML file (``None`` when empty), bounded as described above.
    Errors do not name the file: :func:`resnetv2.config.load_config` prefixes it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.stat().st_size > MAX_BYTES:
        raise ConfigError(
            f"config file {path} is {path.stat().st_size:,} bytes; a config is at most "
            f"{MAX_BYTES:,}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_yaml_text(text)
