"""Error types shared across the package.

Each is a ``ValueError`` so callers that only know Python's built-ins still catch them; the CLI
turns them into a short message and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ResNetV2Error(Exception):
    """Base class for errors caused by user input (bad options, files, data)."""


class SpecError(ResNetV2Error, ValueError):
    """An architecture spec or option is invalid; the message says what would be valid."""


class DepthError(SpecError):
    """A depth that no block type can reach in the chosen layout."""


class PresetError(SpecError):
    """An unknown preset name."""


class DataError(ResNetV2Error, ValueError):
    """A dataset, image folder or data option that cannot be used as given."""


def suggest(value: object, valid: Iterable[object], *, cutoff: float = 0.6) -> str:
    """A ``" (did you mean 'x'?)"`` hint for a mistyped name, or ``""`` when nothing is close.

    The one "did you mean" helper: spec fields, presets, recipes, config keys and CLI flags all
    phrase the hint the same way.
    """
    close = difflib.get_close_matches(str(value), [str(v) for v in valid], n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""
