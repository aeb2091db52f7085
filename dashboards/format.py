"""How numbers read on the pages: percentages, durations, rates; '—' for no value."""

from __future__ import annotations

NONE = "—"


def percent(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{value:.{digits}%}"


def number(value: float | None, digits: int = 0) -> str:
    return NONE if value is None else f"{value:,.{digits}f}"


def count(value: int, estimated: bool = False) -> str:
    """12,345; an estimate rounded to three significant digits: about 629,000."""
    if not estimated:
        return f"{value:,}"
    return f"about {round(value, 3 - len(str(abs(value)))):,}"


def duration(seconds: float | None) -> str:
    """3 d 4 h, 2 h 5 m, 12 m, 40 s; '—' for None."""
    if seconds is None:
        return NONE
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} m" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} m"
    return f"{secs} s"


def milliseconds(seconds: float | None) -> str:
    return NONE if seconds is None else f"{seconds * 1000:.2f} ms"
