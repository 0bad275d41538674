"""JSON from files a user may hand us, with the nesting bounded.

``json.loads`` recurses once per level: a 2 KB file of a thousand ``[`` raises
``RecursionError``, which no caller expects (they catch ``ValueError``), and a document just
under Python's limit makes every later recursive walk of it fail instead. :func:`loads` is
``json.loads`` that refuses more than :data:`MAX_DEPTH` levels with a
:class:`json.JSONDecodeError` (a ``ValueError``), so each reader's existing handling of bad
JSON (a one-line error, a skipped checkpoint, a rebuilt cache record) applies unchanged.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
"""Most levels of nested objects and lists; resnetv2's own files use fewer than ten."""


class JSONTooDeepError(json.JSONDecodeError):
    """A JSON document nested more than :data:`MAX_DEPTH` levels deep."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"nested more than {max_depth} levels deep", "", 0)
        self.args = (self.msg,)  # no "line 1 column 1": the position means nothing here


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, refusing documents nested more than ``max_depth`` levels."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTooDeepError(max_depth) from None
    check_depth(value, max_depth)
    return value


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`JSONTooDeepError` when ``value`` nests deeper than ``max_depth`` levels
    (iteratively: the check itself must not recurse)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise JSONTooDeepError(max_depth)
        stack.extend((child, depth + 1) for child in children)
