"""Durations as people write them: ``90s``, ``10m``, ``1.5h``, ``1h30m``, or plain seconds."""

from __future__ import annotations

import math
import re

from resnetv2.config.sections import ConfigError

#: Longest budget accepted: far beyond any run, small enough for every timer.
MAX_SECONDS = 30 * 24 * 3600.0

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(sec|min|s|m|h|d)")


def parse_duration(value: str | float | int, what: str = "--time (train.time)") -> float:
    """Seconds in ``value``: a number of seconds, or number+unit parts (s, m/min, h, d).

    Raises :class:`ConfigError` naming ``what`` and the accepted forms otherwise.
    """
    bad = ConfigError(
        f"{what} must be a duration such as 90s, 10m, 1.5h or 1h30m "
        f"(up to {MAX_SECONDS / 86400:.0f} days), got {str(value)[:40]!r}"
    )
    if isinstance(value, bool):
        raise bad
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or _PART.sub("", text).strip():
                raise bad from None
            seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    else:
        raise bad
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_SECONDS:
        raise bad
    return seconds
