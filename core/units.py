"""The one grammar for durations and sizes, and the pydantic types that carry them.

A duration is a number and a unit: `500ms`, `5s`, `5m`, `1h`, `30d`, `1w`. Every place that
reads one -- configuration, SLO documents, SLI windows, CLI flags -- parses it here and then
applies its own rule on top (a config value may be a bare number of seconds; an SLO duration
must be a whole positive number of a unit; a window must be whole minutes):

    >>> parse_duration("1.5h"), parse_duration(90)
    (5400.0, 90.0)
    >>> parse_whole_duration("28d"), format_duration(5400)
    (2419200, '90m')
    >>> parse_size("64MiB")
    67108864
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3,
               "kb": 1000, "mb": 1000**2, "gb": 1000**3, None: 1}


def _match(text: str) -> tuple[str, str | None] | None:
    m = _DURATION.match(text)
    return (m.group(1), m.group(2)) if m else None


def parse_duration(value: Any) -> float:
    """'500ms', '5s', '5m', '1h', '30d', '1w' or a number of seconds -> seconds (float)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    found = _match(str(value))
    if found is None:
        raise ValueError(f"duration {value!r} is not like 500ms, 5s, 5m, 1h or 30d")
    number, unit = found
    return float(number) * UNIT_SECONDS[unit or "s"]


def parse_whole_duration(text: Any, units: str = "smhdw") -> int:
    """A strict duration: a string of a whole positive number and one of `units` (no
    spaces, no fraction, no bare number) -> whole seconds. For SLO documents ('30s', '5m',
    '1h', '1d', '1w') and SLI windows ('28d'). Raises ValueError otherwise."""
    found = _match(text) if isinstance(text, str) and text == text.strip() else None
    if found is None or not found[0].isdigit() or found[1] not in set(units) or \
            int(found[0]) == 0 or found[0].startswith("0"):
        examples = ", ".join(f"{n}{u}" for n, u in zip((30, 5, 1, 1, 1), "smhdw") if u in units)
        raise ValueError(f"duration {text!r} is not like {examples}")
    return int(found[0]) * int(UNIT_SECONDS[found[1]])


def format_duration(seconds: int) -> str:
    """Seconds -> the largest whole unit up to days, as the SLI windows are named: 3600 ->
    '1h', 5400 -> '90m', 604800 -> '7d'."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % UNIT_SECONDS[unit] == 0:
            return f"{seconds // int(UNIT_SECONDS[unit])}{unit}"
    return f"{seconds}s"


def parse_size(value: Any) -> int:
    """'64MiB', '1GiB', '512KB' or a number of bytes -> bytes (int)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"size {value!r} is not like 64MiB, 1GiB or a number of bytes")
    unit = m.group(2).lower() if m.group(2) else None
    return int(m.group(1)) * _SIZE_UNITS[unit]


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Bytes = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
Port = Annotated[int, Field(ge=0, le=65535)]
