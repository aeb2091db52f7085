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

import functools
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


def _utc(t: datetime) -> datetime:
    if t.tzinfo is timezone.utc:
        return t
    return t.astimezone(timezone.utc) if t.tzinfo else t.replace(tzinfo=timezone.utc)


def floor_minute(t: datetime) -> datetime:
    return _utc(t).replace(second=0, microsecond=0)


def floor_hour(t: datetime) -> datetime:
    return _utc(t).replace(minute=0, second=0, microsecond=0)


@functools.lru_cache(maxsize=1024)
def window_length(window: str) -> timedelta | None:
    """The length of a named window or of any 'Nm', 'Nh', 'Nd' (None: calendar month).
    Raises ValueError for anything else. Cached: windows are a few names, asked for at every
    (point, window) of a run (tens of thousands of times for a per-minute evaluation)."""
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
    hours = set()
    for t in times:
        hour = floor_hour(t)
        if t != hour:
            hours.add(hour)
    return sorted(hours)


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



_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
INTERVALS = {"at": pl.Datetime("us", "UTC"), "window": pl.String,
             "start": pl.Datetime("us", "UTC")}


def _epoch_us(t: datetime) -> int:
    """Microseconds since the epoch; a naive time is UTC (as Polars reads one)."""
    return ((t if t.tzinfo else t.replace(tzinfo=timezone.utc)) - _EPOCH) // _MICROSECOND


def intervals(points: list[datetime], windows: list[str]) -> pl.DataFrame:
    """Every (point, window) with its start: columns at, window, start (each point in
    `points` order with its windows in `windows` order). Built as integer columns: a
    per-minute run has tens of thousands of rows, and Polars converts timezone-aware
    datetimes one by one."""
    at = [_epoch_us(t) for t in points]
    per_window = []
    for w in windows:
        length = window_length(w)
        if length is None:  # calendar: each point's own month
            per_window.append([_epoch_us(window_start(t, w)) for t in points])
        else:
            shift = length // _MICROSECOND
            per_window.append([u - shift for u in at])
    return pl.DataFrame({
        "at": pl.Series([u for u in at for _ in windows], dtype=pl.Int64),
        "window": pl.Series(list(windows) * len(points), dtype=pl.String),
        "start": pl.Series([column[i] for i in range(len(points)) for column in per_window],
                           dtype=pl.Int64),
    }).with_columns(pl.col("at").cast(INTERVALS["at"]), pl.col("start").cast(INTERVALS["start"]))


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
