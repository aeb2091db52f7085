"""SLI windows: their names and starts, the (point, window, start) intervals a run evaluates,
and how a window splits into the buckets the rollups hold.

A window `w` evaluated at `at` (a whole minute) covers event times in [start(at, w), at):
rolling windows start `w` earlier; `month` is the calendar month to date (UTC), empty right at
midnight of the 1st. `intervals(points, windows)` lists every (point, window) of a run with its
start: the rows every window sum is taken over (`metrics.window_sums`).

A window splits exactly into whole days, the whole hours at both edges and the minutes inside
the edge hours (`day_edges`; `edges` for hours + minutes), so its sum can be read from the day,
hour and minute rollups without reading every minute of it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from core.units import parse_whole_duration


WINDOWS: dict[str, timedelta | None] = {
    "5m": timedelta(minutes=5), "30m": timedelta(minutes=30), "1h": timedelta(hours=1),
    "2h": timedelta(hours=2), "6h": timedelta(hours=6), "1d": timedelta(days=1),
    "3d": timedelta(days=3), "7d": timedelta(days=7), "30d": timedelta(days=30),
    "month": None,  # calendar month to date
}
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def floor_minute(t: datetime) -> datetime:
    t = t.astimezone(timezone.utc) if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return t.replace(second=0, microsecond=0)


def floor_hour(t: datetime) -> datetime:
    return floor_minute(t).replace(minute=0)


def window_length(window: str) -> timedelta | None:
    """The length of a named window or of any 'Nm', 'Nh', 'Nd' (None: calendar month).
    Raises ValueError for anything else."""
    if window in WINDOWS:
        return WINDOWS[window]
    try:
        return timedelta(seconds=parse_whole_duration(window, units="mhd"))
    except ValueError:
        raise ValueError(f"window {window!r} is not one of {', '.join(WINDOWS)} "
                         "or a whole number of minutes, hours or days like 28d") from None


def window_start(at: datetime, window: str) -> datetime:
    """Start of `window` evaluated at `at` (inclusive)."""
    length = window_length(window)
    if length is None:
        return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return at - length


def parse_window(text: str) -> str:
    if text not in WINDOWS:
        raise ValueError(f"window {text!r} is not one of {', '.join(WINDOWS)}")
    return text


def required_times(points: list[datetime], windows: list[str]) -> list[datetime]:
    times = set(points)
    for at in points:
        times.update(window_start(at, w) for w in windows)
    return sorted(times)


def partial_hours(times: list[datetime]) -> list[datetime]:
    """Hours whose minute buckets are needed (times that are not on an hour boundary)."""
    return sorted({floor_hour(t) for t in times if t != floor_hour(t)})


def ceil_hour(t: datetime) -> datetime:
    floor = floor_hour(t)
    return floor if floor == t else floor + HOUR


def edges(start: datetime, at: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """[start, at) as three disjoint ranges: whole hours (read from the hour rollup), then
    the minutes before the first whole hour and after the last one (the minute rollup).
    Each range is (from, to); an unused one is empty (from == to). Their union is exactly
    [start, at), so summing the buckets inside each range gives the window's sum.

    >>> from datetime import datetime as D
    >>> [(a.strftime('%H:%M'), b.strftime('%H:%M')) for a, b in edges(D(2026, 1, 1, 9, 55),
    ...                                                               D(2026, 1, 1, 12, 10))]
    [('10:00', '12:00'), ('09:55', '10:00'), ('12:00', '12:10')]
    >>> [(a.strftime('%H:%M'), b.strftime('%H:%M')) for a, b in edges(D(2026, 1, 1, 9, 5),
    ...                                                               D(2026, 1, 1, 9, 35))]
    [('09:35', '09:35'), ('09:05', '09:35'), ('09:35', '09:35')]
    """
    first, last = ceil_hour(start), floor_hour(at)
    if first > last:  # inside one hour: minutes only
        return (at, at), (start, at), (at, at)
    return (first, last), (start, first), (last, at)



def intervals(points: list[datetime], windows: list[str]) -> pl.DataFrame:
    """Every (point, window) with its start: columns at, window, start."""
    return pl.DataFrame(
        [(at, w, window_start(at, w)) for at in points for w in windows],
        schema={"at": pl.Datetime("us", "UTC"), "window": pl.String,
                "start": pl.Datetime("us", "UTC")}, orient="row")


def floor_day(t: datetime) -> datetime:
    return floor_hour(t).replace(hour=0)


def ceil_day(t: datetime) -> datetime:
    floor = floor_day(t)
    return floor if floor == t else floor + DAY


def day_edges(start: datetime, at: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """[start, at) as five disjoint ranges: whole days (the day rollup), the whole hours
    before and after them (the hour rollup), and the minutes before and after those (the
    minute rollup) -- `edges` with its whole hours split at day boundaries (UTC). An unused
    range is empty (from == to).

    >>> from datetime import datetime as D
    >>> for a, b in day_edges(D(2026, 1, 1, 21, 55), D(2026, 1, 4, 2, 10)):
    ...     print(f"{a:%d %H:%M} - {b:%d %H:%M}")
    02 00:00 - 04 00:00
    01 22:00 - 02 00:00
    04 00:00 - 04 02:00
    01 21:55 - 01 22:00
    04 02:00 - 04 02:10
    """
    (first, last), before, after = edges(start, at)
    none = (at, at)
    if first >= last:
        return none, none, none, before, after
    day_first, day_last = ceil_day(first), floor_day(last)
    if day_first >= day_last:
        return none, (first, last), none, before, after
    return (day_first, day_last), (first, day_first), (day_last, last), before, after
