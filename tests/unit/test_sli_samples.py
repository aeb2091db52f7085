"""Timed samples in windows (`metrics.sli.samples`) and the open-violation counts built on them
(`remediation.still_open`), against brute force over [start, at) (no storage)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.sli import remediation, samples
from metrics.sli.base import Context, breakdowns, epoch_us
from metrics.sli.samples import WindowSamples
from metrics.windows import window_start

pytestmark = pytest.mark.unit

UTC = timezone.utc
AT = datetime(2026, 11, 2, 12, tzinfo=UTC)
WINDOWS = ["5m", "1h", "1d", "month"]
TEAMS = ["payments", "identity", "search"]


def T(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=UTC)


def window_samples(points, rows, windows=WINDOWS) -> dict[tuple, tuple]:
    """(at, window, dimension, value) -> (count, sum, p50, p90) from WindowSamples over rows
    (time, team, milliseconds)."""
    frame = pl.DataFrame(rows, schema={"t": pl.Datetime("us", "UTC"), "team": pl.String,
                                       "ms": pl.Int64}, orient="row")
    ctx = Context(None, points, windows)
    found = {}
    for breakdown in breakdowns(frame, {"team": "team"}):
        w = WindowSamples(ctx, breakdown, epoch_us(frame.get_column("t")),
                          frame.get_column("ms").to_numpy())
        p50, p90 = w.quantiles([0.5, 0.9], 1 / 1000.0)
        for i in range(w.count.size):
            key = (points[w.point[i]], windows[w.window[i]], breakdown.dimension,
                   breakdown.values[int(w.code[i])])
            found[key] = (int(w.count[i]), int(w.sum()[i]), p50[i], p90[i])
    return found


def brute_force(points, rows, windows=WINDOWS) -> dict[tuple, tuple]:
    expected = {}
    for at in points:
        for window in windows:
            start = window_start(at, window)
            inside = [(team, ms) for t, team, ms in rows if start <= t < at]
            for dimension, value in [("", ""), *(("team", team) for team in TEAMS)]:
                ms = [m for team, m in inside if not dimension or team == value]
                if ms or not dimension:
                    seconds = pl.Series(ms, dtype=pl.Int64) / 1000.0
                    expected[(at, window, dimension, value)] = (
                        len(ms), sum(ms), *(np.nan if not ms else seconds.quantile(q, "linear")
                                            for q in (0.5, 0.9)))
    return expected


def same(found: dict, expected: dict) -> None:
    assert found.keys() == expected.keys()
    for key, values in expected.items():
        assert np.array_equal(np.array(found[key]), np.array(values), equal_nan=True), key


@pytest.mark.parametrize("rows,key,expected", [
    pytest.param([(T("11-02 11:55"), "payments", 1000)], (AT, "5m", "", ""),
                 (1, 1000, 1.0, 1.0), id="a sample exactly at the window start is in it"),
    pytest.param([(AT, "payments", 1000)], (AT, "5m", "", ""), (0, 0, np.nan, np.nan),
                 id="a sample exactly at `at` is not; the empty overall window has no quantile"),
    pytest.param([(T("11-02 11:00"), "payments", 1000)], (AT, "5m", "team", "payments"), None,
                 id="an empty window of a dimension value has no row"),
    pytest.param([(T("11-02 11:50"), "payments", 3000), (T("11-02 11:50"), "identity", 1000)],
                 (AT, "1h", "", ""), (2, 4000, 2.0, 2.8),
                 id="two samples at one time both count"),
    pytest.param([(T("11-01 00:00"), "payments", 5)], (AT, "month", "team", "payments"),
                 (1, 5, 0.005, 0.005), id="month from 00:00 on the 1st"),
])
def test_window_boundaries(rows, key, expected):
    found = window_samples([AT], rows)
    if expected is None:
        assert key not in found
    else:
        assert np.array_equal(np.array(found[key]), np.array(expected), equal_nan=True)


sample_rows = st.lists(st.tuples(st.integers(-40 * 86400_000, 0), st.sampled_from(TEAMS),
                                 st.integers(0, 10**8)), max_size=40)
point_offsets = st.lists(st.integers(0, 3 * 24 * 60), min_size=1, max_size=5, unique=True)


def to_rows(offsets):
    return [(AT + timedelta(milliseconds=ms), team, d) for ms, team, d in offsets]


@settings(max_examples=60, deadline=None)
@given(rows=sample_rows, minutes=point_offsets)
def test_count_sum_and_quantiles_are_those_of_the_samples_in_each_window(rows, minutes):
    points = sorted(AT - timedelta(minutes=m) for m in minutes)
    same(window_samples(points, to_rows(rows)), brute_force(points, to_rows(rows)))


@settings(max_examples=30, deadline=None)
@given(rows=sample_rows, minutes=point_offsets)
def test_sorting_slices_and_selecting_in_them_give_the_same_bits(rows, minutes):
    points = sorted(AT - timedelta(minutes=m) for m in minutes)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(samples, "SHORT", 0)  # every slice through the selector
        patch.setattr(samples, "SORT_LIMIT", 0)
        selected = window_samples(points, to_rows(rows))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(samples, "SHORT", 10**9)  # every slice sorted
        ordered = window_samples(points, to_rows(rows))
    same(selected, ordered)


# -- violations open at a point ------------------------------------------------------------------

violations = st.lists(st.tuples(st.integers(-10 * 86400_000, 0), st.sampled_from(TEAMS),
                                st.one_of(st.none(), st.integers(0, 5 * 86400_000))),
                      max_size=30)


def open_by_brute_force(points, life: pl.DataFrame) -> dict[tuple, tuple]:
    """What the definition says: opened before `at`, not closed before it."""
    expected = {}
    for at in points:
        open_ = life.filter((pl.col("opened_at") < at) & (
            pl.col("closed_at").is_null() | (pl.col("closed_at") >= at)))
        ages = [(at - o).total_seconds() for o in open_.get_column("opened_at")]
        teams = open_.get_column("team").to_list()
        for dimension, value in [("", ""), *(("team", team) for team in TEAMS)]:
            mine = [a for a, team in zip(ages, teams, strict=True)
                    if not dimension or team == value]
            if mine or not dimension:
                expected[(at, dimension, value)] = (
                    float(len(mine)), sum(mine) / len(mine) if mine else None)
    return expected


@settings(max_examples=60, deadline=None)
@given(rows=violations, minutes=point_offsets)
def test_violations_open_at_a_point_and_their_mean_age(rows, minutes):
    points = sorted(AT - timedelta(minutes=m) for m in minutes)
    life = pl.DataFrame(
        [(AT + timedelta(milliseconds=o), team,
          None if c is None else AT + timedelta(milliseconds=o + c)) for o, team, c in rows],
        schema={"opened_at": pl.Datetime("us", "UTC"), "team": pl.String,
                "closed_at": pl.Datetime("us", "UTC")}, orient="row")
    ctx = Context(None, points, ["5m"])
    frame = pl.concat(remediation.still_open(ctx, life, breakdowns(life, {"team": "team"})))
    found: dict[tuple, dict] = {}
    for at, sli, dimension, value, total, v in frame.select(
            "at", "sli", "dimension", "dimension_value", "total", "value").rows():
        found.setdefault((at, dimension, value), {})[sli] = (total, v)
    expected = open_by_brute_force(points, life)
    assert found.keys() == expected.keys()
    for key, (n, age) in expected.items():
        assert found[key]["M3_open"] == (n, n), key
        total, mean_age = found[key]["M3_open_age_mean"]
        assert total == n and (mean_age is None) == (age is None), key
        assert age is None or mean_age == pytest.approx(age, rel=1e-12), key


def test_a_violation_closed_exactly_at_the_point_is_still_open_and_one_opened_then_is_not():
    life = pl.DataFrame({"opened_at": [T("11-02 11:00"), AT], "team": ["payments", "payments"],
                         "closed_at": [AT, None]},
                        schema={"opened_at": pl.Datetime("us", "UTC"), "team": pl.String,
                                "closed_at": pl.Datetime("us", "UTC")})
    frame = pl.concat(remediation.still_open(Context(None, [AT], ["5m"]), life,
                                             breakdowns(life, {})))
    assert sorted(frame.select("sli", "total", "value").rows()) == [
        ("M3_open", 1.0, 1.0), ("M3_open_age_mean", 1.0, 3600.0)]
