"""Window starts, the times and hours a run needs, and the exact window-sum engines on
hand-made minute / hour buckets and raw rows (no storage): each against the plain definition
(`window_sums.reference`) on random data, and against hand-counted sums."""

from __future__ import annotations

import doctest
import random
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from metrics import windows
from metrics.window_sums import (
    asof_window_sums,
    buckets_of,
    dense_window_reduce,
    dense_window_sums,
    direct_window_sums,
    event_window_sums,
    reference,
)
from metrics.window_sums import direct as direct_module
from metrics.windows import (
    floor_hour,
    floor_minute,
    intervals,
    parse_window,
    partial_hours,
    required_times,
    window_start,
)

pytestmark = pytest.mark.unit

UTC = timezone.utc
TS = pl.Datetime("us", "UTC")


def T(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


AT = T("2026-11-02 12:00")


@pytest.mark.parametrize("at,window,start", [
    pytest.param(AT, "5m", T("2026-11-02 11:55"), id="5m starts five minutes earlier"),
    pytest.param(AT, "30m", T("2026-11-02 11:30"), id="30m"),
    pytest.param(AT, "1h", T("2026-11-02 11:00"), id="1h"),
    pytest.param(AT, "2h", T("2026-11-02 10:00"), id="2h"),
    pytest.param(AT, "6h", T("2026-11-02 06:00"), id="6h"),
    pytest.param(AT, "1d", T("2026-11-01 12:00"), id="1d"),
    pytest.param(AT, "3d", T("2026-10-30 12:00"), id="3d crosses into the previous month"),
    pytest.param(AT, "7d", T("2026-10-26 12:00"), id="7d"),
    pytest.param(AT, "30d", T("2026-10-03 12:00"), id="30d"),
    pytest.param(AT, "month", T("2026-11-01 00:00"), id="month is the calendar month to date"),
    pytest.param(T("2026-12-01 00:00"), "month", T("2026-12-01 00:00"),
                 id="month at 00:00 on the 1st starts at `at`: empty"),
    pytest.param(T("2026-12-01 00:01"), "month", T("2026-12-01 00:00"),
                 id="month one minute into the 1st holds that minute"),
    pytest.param(T("2026-03-31 23:59"), "month", T("2026-03-01 00:00"),
                 id="month on the last minute of March starts on March 1st"),
    pytest.param(T("2028-02-29 12:00"), "month", T("2028-02-01 00:00"),
                 id="month on a leap day"),
    pytest.param(T("2027-01-01 00:30"), "1h", T("2026-12-31 23:30"),
                 id="1h across the new year"),
])
def test_window_start(at, window, start):
    assert window_start(at, window) == start


def test_an_empty_month_window_has_zero_length():
    at = T("2026-12-01 00:00")
    assert at - window_start(at, "month") == timedelta(0)


def test_an_unknown_window_is_refused_by_name():
    with pytest.raises(ValueError, match="'fortnight'"):
        window_start(AT, "fortnight")
    with pytest.raises(ValueError, match="'fortnight' is not one of 5m, 30m"):
        parse_window("fortnight")


def test_every_named_window_parses():
    assert [parse_window(w) for w in windows.WINDOWS] == list(windows.WINDOWS)


def test_floors_treat_naive_times_as_utc_and_convert_others():
    assert floor_minute(datetime(2026, 11, 2, 11, 59, 59, 999000)) == T("2026-11-02 11:59")
    plus_two = timezone(timedelta(hours=2))
    assert floor_minute(datetime(2026, 11, 2, 14, 7, 30, tzinfo=plus_two)) == T(
        "2026-11-02 12:07")
    assert floor_hour(T("2026-11-02 11:59:59")) == T("2026-11-02 11:00")


def test_required_times_are_every_point_and_every_window_start_sorted():
    points = [T("2026-11-02 12:00"), T("2026-11-02 12:30")]
    assert required_times(points, ["5m", "1h"]) == [
        T("2026-11-02 11:00"), T("2026-11-02 11:30"), T("2026-11-02 11:55"),
        T("2026-11-02 12:00"), T("2026-11-02 12:25"), T("2026-11-02 12:30")]


def test_required_times_include_the_month_start():
    assert required_times([AT], ["month"]) == [T("2026-11-01 00:00"), AT]


@pytest.mark.parametrize("times,hours", [
    pytest.param([T("2026-11-02 11:00"), T("2026-11-02 12:00")], [],
                 id="times on the hour need no minute buckets"),
    pytest.param([T("2026-11-02 11:00"), T("2026-11-02 11:55"), T("2026-11-02 12:25"),
                  T("2026-11-02 12:30")], [T("2026-11-02 11:00"), T("2026-11-02 12:00")],
                 id="each hour holding a time off the hour, once"),
    pytest.param([T("2026-11-01 00:00"), T("2026-11-02 12:01")], [T("2026-11-02 12:00")],
                 id="a month start on the hour needs none, a point one minute past does"),
])
def test_partial_hours(times, hours):
    assert partial_hours(times) == hours


def test_intervals_list_every_point_and_window_with_its_start():
    expected = pl.DataFrame({
        "at": [AT, AT, AT + timedelta(minutes=1), AT + timedelta(minutes=1)],
        "window": ["5m", "month", "5m", "month"],
        "start": [T("2026-11-02 11:55"), T("2026-11-01 00:00"), T("2026-11-02 11:56"),
                  T("2026-11-01 00:00")]}, schema={"at": TS, "window": pl.String, "start": TS})
    assert_frame_equal(intervals([AT, AT + timedelta(minutes=1)], ["5m", "month"]), expected)


# -- the window-sum engine ----------------------------------------------------------------------

def minute_rows() -> list[tuple[datetime, str, str]]:
    """One overall event every minute 10:00-12:29; team payments at 11:15, 11:45, 12:10."""
    start = T("2026-11-02 10:00")
    rows = [(start + timedelta(minutes=i), "", "") for i in range(150)]
    rows += [(T(f"2026-11-02 {hm}"), "team", "payments") for hm in ("11:15", "11:45", "12:10")]
    return rows


def buckets(rows, unit: str) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={"t": TS, "dimension": pl.String,
                                       "dimension_value": pl.String}, orient="row")
    return frame.with_columns(pl.col("t").dt.truncate(unit)).group_by(
        ["t", "dimension", "dimension_value"]).agg(pl.len().cast(pl.Int64).alias("total"))


def test_window_sums_over_hand_made_buckets_are_exact():
    at = T("2026-11-02 12:30")
    got = asof_window_sums(buckets(minute_rows(), "1h"), buckets(minute_rows(), "1m"),
                           intervals([at], ["5m", "1h", "2h", "6h", "month"]),
                           ["dimension", "dimension_value"], ["total"])
    expected = pl.DataFrame({
        "at": [at] * 10,
        "window": ["1h", "1h", "2h", "2h", "5m", "5m", "6h", "6h", "month", "month"],
        "dimension": ["", "team"] * 5,
        "dimension_value": ["", "payments"] * 5,
        # 1h = [11:30, 12:30): 30 + 30 overall, 11:45 and 12:10 for payments;
        # 2h = [10:30, 12:30): 30 + 60 + 30; 6h and month hold everything: 150 and 3.
        "total": [60, 2, 120, 3, 5, 0, 150, 3, 150, 3],
    }, schema={"at": TS, "window": pl.String, "dimension": pl.String,
               "dimension_value": pl.String, "total": pl.Int64})
    assert_frame_equal(got.sort("window", "dimension"), expected, check_dtypes=False)


def test_window_sums_from_only_the_minute_buckets_the_engine_needs():
    at = T("2026-11-02 12:30")
    needed = set(partial_hours(required_times([at], ["1h", "2h"])))
    minutes = buckets(minute_rows(), "1m").filter(
        pl.col("t").dt.truncate("1h").is_in(list(needed)))
    got = asof_window_sums(buckets(minute_rows(), "1h"), minutes,
                           intervals([at], ["1h", "2h"]), ["dimension", "dimension_value"],
                           ["total"])
    totals = dict(zip(got.filter(pl.col("dimension") == "").get_column("window"),
                      got.filter(pl.col("dimension") == "").get_column("total")))
    assert totals == {"1h": 60, "2h": 120}


def test_event_window_sums_over_raw_rows_respect_the_window_edges_to_the_millisecond():
    rows = pl.DataFrame({
        "event_time": [T("2026-11-02 11:54:59.999"), T("2026-11-02 11:55:00"),
                       T("2026-11-02 11:59:59.999"), T("2026-11-02 12:00:00")],
        "dimension": [""] * 4, "dimension_value": [""] * 4, "n": [1, 10, 100, 1000]},
        schema={"event_time": TS, "dimension": pl.String, "dimension_value": pl.String,
                "n": pl.Int64})
    got = event_window_sums(rows, intervals([AT], ["5m", "1h"]),
                            ["dimension", "dimension_value"], ["n"])
    assert dict(zip(got.get_column("window"), got.get_column("n"))) == {"5m": 110, "1h": 111}


@pytest.mark.parametrize("direct", [True, False], ids=["rows matched to intervals directly",
                                                       "rows bucketed by minute and hour"])
def test_event_window_sums_give_the_same_sums_by_either_path(monkeypatch, direct):
    """event_window_sums matches rows to intervals directly when rows x intervals is small and
    goes through minute/hour buckets otherwise; both must equal a brute-force count."""
    rng = random.Random(7)
    start = T("2026-10-30 00:00")
    rows = pl.DataFrame({
        "event_time": [start + timedelta(milliseconds=rng.randrange(4 * 86_400_000))
                       for _ in range(400)],
        "dimension": ["team"] * 400,
        "dimension_value": [rng.choice(["a", "b", "c"]) for _ in range(400)],
        "n": [rng.randrange(1, 5) for _ in range(400)]},
        schema={"event_time": TS, "dimension": pl.String, "dimension_value": pl.String,
                "n": pl.Int64})
    points = [T("2026-11-02 12:00"), T("2026-11-02 12:37"), T("2026-11-01 00:01")]
    wanted = intervals(points, ["5m", "30m", "1h", "6h", "1d", "3d", "month"])
    monkeypatch.setattr(direct_module, "DIRECT_PAIRS", 10**9 if direct else 0)
    got = event_window_sums(rows, wanted, ["dimension", "dimension_value"], ["n"])
    expected = {(at, w, v): sum(n for t, v2, n in zip(rows["event_time"], rows["dimension_value"],
                                                        rows["n"]) if v2 == v and s <= t < at)
                for at, w, s in wanted.iter_rows() for v in "abc"}
    assert {(r["at"], r["window"], r["dimension_value"]): r["n"]
            for r in got.iter_rows(named=True)} == expected


@pytest.mark.parametrize("direct", [True, False], ids=["rows matched to intervals directly",
                                                       "rows bucketed by minute and hour"])
def test_event_window_sums_keep_each_intervals_columns_when_intervals_share_an_end(
        monkeypatch, direct):
    """Drift's previous windows: the intervals of a calendar month at two points of one month
    end at the same time (the month's start) but start apart; each row keeps its interval's
    extra column and its own sums."""
    rng = random.Random(11)
    start = T("2026-10-01 00:00")
    rows = pl.DataFrame({
        "event_time": [start + timedelta(minutes=rng.randrange(31 * 1440)) for _ in range(300)],
        "dimension": ["team"] * 300,
        "dimension_value": [rng.choice(["a", "b"]) for _ in range(300)],
        "n": [1] * 300},
        schema={"event_time": TS, "dimension": pl.String, "dimension_value": pl.String,
                "n": pl.Int64})
    end = T("2026-11-01 00:00")
    wanted = pl.DataFrame({"at": [end, end, end], "window": ["month", "month", "1d"],
                           "start": [T("2026-10-20 00:00"), T("2026-10-05 12:30"),
                                     T("2026-10-31 00:00")],
                           "origin": [1, 2, 3]},
                          schema={"at": TS, "window": pl.String, "start": TS,
                                  "origin": pl.Int64})
    monkeypatch.setattr(direct_module, "DIRECT_PAIRS", 10**9 if direct else 0)
    got = event_window_sums(rows, wanted, ["dimension", "dimension_value"], ["n"])
    expected = {(o, v): sum(1 for t, v2 in zip(rows["event_time"], rows["dimension_value"])
                            if v2 == v and s <= t < at)
                for at, _, s, o in wanted.iter_rows() for v in "ab"}
    assert {(r["origin"], r["dimension_value"]): r["n"] for r in got.iter_rows(named=True)} \
        == expected


# -- every engine equals the plain definition (`window_sums.reference`) ------------------------

KEYS = ["dimension", "dimension_value"]
MEASURES = ["n", "m"]
BASE = T("2026-10-30 00:00")  # points near a month boundary: month windows of every length
LABELS = [("", ""), ("team", "a"), ("team", "b"), ("cluster", "a")]

raw_rows = st.lists(st.tuples(st.integers(-3 * 86_400_000, 4 * 86_400_000),
                              st.sampled_from(LABELS), st.integers(0, 5), st.integers(0, 3)),
                    max_size=40)


@st.composite
def interval_sets(draw) -> pl.DataFrame:
    """A run's intervals at random minute-aligned points (every 1, 5 or 60 minutes from a
    time on that grain), or drift's: the window of the same length just before each one,
    with its point as an extra column."""
    grain = draw(st.sampled_from([1, 5, 60]))
    first = draw(st.integers(0, 3 * 1440 // grain)) * grain
    steps = draw(st.lists(st.integers(0, 30), min_size=1, max_size=5, unique=True))
    points = [BASE + timedelta(minutes=first + s * grain) for s in steps]
    chosen = draw(st.lists(st.sampled_from(list(windows.WINDOWS)), min_size=1, max_size=4,
                           unique=True))
    frame = intervals(points, chosen)
    if draw(st.booleans()):
        frame = frame.with_columns(origin=pl.col("at"), at=pl.col("start"),
                                   start=pl.col("start") - (pl.col("at") - pl.col("start")))
    return frame


def event_frame(rows) -> pl.DataFrame:
    return pl.DataFrame([(BASE + timedelta(milliseconds=ms), d, v, n, m)
                         for ms, (d, v), n, m in rows],
                        schema={"event_time": TS, "dimension": pl.String,
                                "dimension_value": pl.String, "n": pl.Int64, "m": pl.Int64},
                        orient="row")


def comparable(frame: pl.DataFrame, wanted: pl.DataFrame) -> pl.DataFrame:
    """An engine's rows as the reference gives them, in one order, labels as strings."""
    extra = [c for c in wanted.columns if c not in ("at", "window", "start")]
    labels = ["at", "window", *extra, *KEYS]
    return frame.select(*labels, *MEASURES).with_columns(
        pl.col("window", *KEYS).cast(pl.String), pl.col(MEASURES).cast(pl.Int64)).sort(labels)


def in_key_order(frame: pl.DataFrame) -> bool:
    """Rows in `sli_values`' key order without the SLI: window, keys, at (labels by text)."""
    labels = frame.select("window", *KEYS, "at").with_columns(
        pl.col("window", *KEYS).cast(pl.String))
    return labels.equals(labels.sort("window", *KEYS, "at", maintain_order=True))


@settings(max_examples=60, deadline=None)
@given(rows=raw_rows, wanted=interval_sets())
def test_every_engine_gives_the_sums_the_definition_gives(rows, wanted):
    events = event_frame(rows)
    expected = comparable(reference.window_sums(events.rename({"event_time": "t"}), wanted,
                                                KEYS, MEASURES), wanted)

    direct = direct_window_sums(events, wanted, KEYS, MEASURES)
    assert_frame_equal(comparable(direct, wanted), expected)
    assert in_key_order(direct)

    hourly, segments, cuts = buckets_of(events, wanted, KEYS, MEASURES)
    dense = dense_window_sums(hourly, segments, cuts, wanted, KEYS, MEASURES)
    assert_frame_equal(comparable(dense, wanted), expected)
    assert in_key_order(dense)

    def total_and_m(names, sums):  # a reduce: some numbers per row from the sums
        row = dict(zip(names, sums))
        zeros = np.zeros(sums.shape[1], dtype=np.int64)
        n, m = row.get("n", zeros), row.get("m", zeros)
        return {"n": n + m, "m": m.copy()}

    reduced = dense_window_reduce(hourly, segments, cuts, wanted, KEYS, MEASURES, total_and_m)
    if reduced.height:
        assert_frame_equal(comparable(reduced.with_columns(n=pl.col("n") - pl.col("m")),
                                      wanted), expected)

    minute = events.with_columns(pl.col("event_time").dt.truncate("1m").alias("t"))
    by = ["t", *KEYS]
    minutely = minute.group_by(by).agg(pl.col(MEASURES).sum())
    hours = minutely.with_columns(pl.col("t").dt.truncate("1h")).group_by(by).agg(
        pl.col(MEASURES).sum())
    asof = asof_window_sums(hours, minutely, wanted, KEYS, MEASURES)
    assert_frame_equal(comparable(asof, wanted), expected)


@settings(max_examples=25, deadline=None)
@given(rows=raw_rows, wanted=interval_sets())
def test_event_window_sums_by_either_path_equal_the_definition(rows, wanted):
    events = event_frame(rows)
    expected = comparable(reference.window_sums(events.rename({"event_time": "t"}), wanted,
                                                KEYS, MEASURES), wanted)
    for limit in (0, 10**9):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(direct_module, "DIRECT_PAIRS", limit)
            got = event_window_sums(events, wanted, KEYS, MEASURES)
        assert_frame_equal(comparable(got, wanted), expected)
        assert in_key_order(got)
        assert got.schema["n"] == pl.Int64


def test_the_definition_counts_a_row_at_the_start_and_not_one_at_the_end():
    rows = pl.DataFrame({"t": [T("2026-11-02 11:55"), T("2026-11-02 12:00")],
                         "dimension": ["", ""], "dimension_value": ["", ""], "n": [1, 10]},
                        schema={"t": TS, "dimension": pl.String, "dimension_value": pl.String,
                                "n": pl.Int64})
    got = reference.window_sums(rows, intervals([AT, AT + timedelta(minutes=1)], ["5m"]),
                                KEYS, ["n"])
    assert got.select("at", "n").rows() == [(AT, 1), (AT + timedelta(minutes=1), 10)]


def test_the_module_doctests_pass():
    from metrics.window_sums import dense

    for module in (windows, dense):
        assert doctest.testmod(module).failed == 0, module.__name__
