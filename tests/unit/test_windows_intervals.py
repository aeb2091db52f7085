"""`metrics.windows.intervals` builds its (point, window, start) rows as integer columns; they
must be the rows `window_start` gives one by one, for rolling and calendar windows and for
points in UTC, naive (read as UTC) or in another offset, and `floor_minute` / `floor_hour` /
`partial_hours` (cheaper for UTC times) must keep what they returned."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from metrics.windows import (
    INTERVALS,
    floor_hour,
    floor_minute,
    intervals,
    partial_hours,
    window_length,
    window_start,
)

pytestmark = pytest.mark.unit

ZONES = [timezone.utc, None, timezone(timedelta(hours=5, minutes=30)),
         timezone(timedelta(hours=-5))]


def one_by_one(points, windows) -> pl.DataFrame:
    return pl.DataFrame([(at, w, window_start(at, w)) for at in points for w in windows],
                        schema=INTERVALS, orient="row")


@pytest.mark.parametrize("zone", ZONES, ids=["utc", "naive", "+05:30", "-05:00"])
@pytest.mark.parametrize("windows", [["1m"], ["5m", "month", "1h", "30d", "28d", "90m"],
                                     ["month"], []])
def test_intervals_are_the_window_starts_one_by_one(zone, windows):
    first = datetime(2026, 3, 1, 0, 30, 7, 250, tzinfo=zone)
    points = [first + timedelta(minutes=37 * k) for k in range(-500, 500)]

    built = intervals(points, windows)

    assert built.schema == INTERVALS
    assert built.equals(one_by_one(points, windows))


def test_no_points_give_an_empty_frame_of_the_same_columns():
    assert intervals([], ["1m"]).equals(one_by_one([], ["1m"]))
    assert intervals([], []).schema == INTERVALS


def test_window_lengths_are_cached_and_still_refuse_bad_names():
    assert window_length("28d") == timedelta(days=28)
    assert window_length("28d") is window_length("28d")
    with pytest.raises(ValueError, match="whole number of minutes"):
        window_length("28x")


@pytest.mark.parametrize("zone", ZONES, ids=["utc", "naive", "+05:30", "-05:00"])
def test_floors_are_utc_and_partial_hours_skip_whole_ones(zone):
    t = datetime(2026, 3, 1, 9, 47, 31, 9, tzinfo=zone)
    as_utc = t.astimezone(timezone.utc) if zone else t.replace(tzinfo=timezone.utc)
    assert floor_minute(t) == as_utc.replace(second=0, microsecond=0)
    assert floor_hour(t) == as_utc.replace(minute=0, second=0, microsecond=0)
    assert floor_minute(t).tzinfo is timezone.utc and floor_hour(t).tzinfo is timezone.utc
    whole = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    assert partial_hours([whole, whole + timedelta(minutes=5), t]) == sorted(
        {whole, floor_hour(t)})
