"""Invariants of the SLI batch layer over random events (hypothesis, on chDB).

- the minute and hour rollups hold exactly the counts of the raw decisions;
- the window engine over the real rollups equals a brute-force count over the raw rows, for
  random event times, random minute-aligned evaluation times and random window sets, and the
  plain definition of window sums (`window_sums.reference`) over the raw rows;
- many points at once (a backfill: numpy over hour rows and minute segments) give the
  decision sums and percentiles that each point's own run (sums inside ClickHouse) gives,
  and the sums the definition gives;
- every ratio SLI has 0 <= value <= 1, good <= total, and no value exactly when total is 0;
- a backfill stores the values incremental runs at the same points store, and `compute` gives.

The two slow properties do not shrink a failure (it would take minutes on chDB).

Each test owns one database and empties its tables before every example.
"""

from __future__ import annotations

import bisect
from collections import Counter
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from metrics import jobs
from metrics.latency import BOUNDS
from metrics.sli import decisions
from metrics.sli.base import Context
from metrics.sources import FEW_POINTS
from metrics.sources import utc_datetime
from metrics.window_sums import reference
from metrics.windows import intervals
from tests.builders.rows import (
    OUTCOMES,
    TEAMS,
    ev,
    fresh_database,
    insert_all,
    insert_decisions,
    insert_events,
    to_decisions,
)

pytestmark = pytest.mark.integration

UTC = timezone.utc
BASE = datetime(2026, 11, 1, tzinfo=UTC)
# rolling windows by hand; `month` is the calendar month to date
LENGTHS = {"5m": timedelta(minutes=5), "30m": timedelta(minutes=30), "1h": timedelta(hours=1),
           "2h": timedelta(hours=2), "6h": timedelta(hours=6), "1d": timedelta(days=1),
           "3d": timedelta(days=3), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RATIO_SLIS = ["M1", "M2", "M4", "M6", "M7", "M8", "M9", "L_under"]

SETTINGS = dict(deadline=None, database=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture
def db(chdb_client) -> str:
    return fresh_database(chdb_client)


def reset(client, database: str) -> None:
    tables = client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} "
        "AND engine NOT IN ('MaterializedView', 'View')", parameters={"db": database}
    ).result_rows
    for (name,) in tables:
        client.command(f"TRUNCATE TABLE {database}.{name}")


def start_of(at: datetime, window: str) -> datetime:
    if window == "month":
        return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return at - LENGTHS[window]


# -- strategies ---------------------------------------------------------------------------------

minute_points = st.integers(0, 2 * 24 * 60 - 1).map(lambda m: BASE + timedelta(minutes=m))
latencies = st.one_of(st.none(), st.sampled_from([0.001, 0.01, 0.1, 100.0]),
                      st.floats(0.0, 200.0, allow_nan=False))
# milliseconds relative to the evaluation time: mostly the last few hours, some up to 40 days
offsets = st.one_of(st.integers(-3 * 3600_000, 10 * 60_000),
                    st.integers(-40 * 86400_000, 0))


@st.composite
def decision_rows(draw, max_size: int = 40):
    return draw(st.lists(st.tuples(offsets, st.sampled_from(TEAMS), st.sampled_from(OUTCOMES),
                                   latencies), max_size=max_size))


REFERENCE_SUMS = ["total", "errors", "denies", "warns", "latency_count"]


def reference_sums(records: list[dict], points: list[datetime], windows: list[str]
                   ) -> dict[tuple, tuple]:
    """(at, window, dimension, value) -> the decision sums, overall and by team, from the raw
    decisions by the plain definition (`window_sums.reference`); rows of only zeros left out."""
    rows = pl.DataFrame(
        [(r["event_time"], d, v, 1, r["outcome"] == "error", r["outcome"] == "deny",
          r["outcome"] == "warn", r["latency_seconds"] is not None)
         for r in records for d, v in (("", ""), ("team", r["team"]))],
        schema={"t": pl.Datetime("us", "UTC"), "dimension": pl.String,
                "dimension_value": pl.String, **{m: pl.Int64 for m in REFERENCE_SUMS}},
        orient="row")
    sums = reference.window_sums(rows, intervals(points, windows),
                                 ["dimension", "dimension_value"], REFERENCE_SUMS)
    return nonzero_sums(sums)


def nonzero_sums(frame: pl.DataFrame) -> dict[tuple, tuple]:
    """The decision sums of the overall and by-team rows of a window frame, keyed by (at,
    window, dimension, value), rows of only zeros left out (the engines differ in which keys
    get a row of zeros)."""
    rows = frame.filter(pl.col("dimension").cast(pl.String).is_in(["", "team"])).select(
        "at", pl.col("window", "dimension", "dimension_value").cast(pl.String),
        *REFERENCE_SUMS).rows()
    return {tuple(r[:4]): tuple(r[4:]) for r in rows if any(r[4:])}


# -- rollups hold the raw counts ----------------------------------------------------------------

@settings(max_examples=25, **SETTINGS)
@given(at=minute_points, rows=decision_rows())
def test_minute_and_hour_buckets_sum_to_the_raw_counts(chdb_client, db, at, rows):
    reset(chdb_client, db)
    records = to_decisions(at, rows)
    if records:
        insert_decisions(chdb_client, records)

    for table, unit, bucket in [("decisions_1m", "minute", "toStartOfMinute"),
                                ("decisions_1h", "hour", "toStartOfHour")]:
        rolled = chdb_client.query(
            f"SELECT {unit}, team, sum(total), sum(errors), sum(denies), sum(warns), "
            f"sum(latency_count) FROM {table} GROUP BY {unit}, team").result_rows
        raw = chdb_client.query(
            f"SELECT {bucket}(event_time) AS b, team, count(), countIf(outcome = 'error'), "
            "countIf(outcome = 'deny'), countIf(outcome = 'warn'), "
            "countIf(latency_seconds IS NOT NULL) FROM policy_decisions GROUP BY b, team"
        ).result_rows
        assert sorted(rolled) == sorted(raw)

    expected = Counter()
    for r in records:
        t = r["event_time"].replace(second=0, microsecond=0, tzinfo=None)
        expected[t, r["team"]] += 1
    totals = chdb_client.query("SELECT minute, team, sum(total) FROM decisions_1m "
                               "GROUP BY minute, team").result_rows
    assert {(m, team): n for m, team, n in totals} == dict(expected)

    histogram = Counter()
    for r in records:
        x = r["latency_seconds"]
        if x is not None:  # bucket i holds (BOUNDS[i-2], BOUNDS[i-1]]; 0 holds over 100 s
            histogram[bisect.bisect_left(BOUNDS, x) + 1 if x <= 100.0 else 0] += 1
    merged = chdb_client.command(
        "SELECT toString(sumMap(latency_buckets)) FROM decisions_1m") if records else "{}"
    got = {int(k): int(v) for k, v in (kv.split(":") for kv in
                                       str(merged).strip("{}").split(",") if kv)}
    assert got == dict(histogram)


# -- the window engine equals brute force -------------------------------------------------------

@settings(max_examples=25, **SETTINGS)
@given(at=minute_points, rows=decision_rows(),
       windows=st.lists(st.sampled_from([*LENGTHS, "month"]), min_size=1, max_size=4,
                        unique=True))
@example(at=BASE, rows=[(-60_000, "payments", "error", None)], windows=["month", "5m"])
@example(at=BASE + timedelta(hours=12, minutes=7),
         rows=[(-7 * 60_000 - 1, "payments", "error", None), (-6 * 60_000, "search", "allow",
                                                              None)],
         windows=["5m"])
def test_window_sums_over_the_rollups_equal_a_brute_force_count(chdb_client, db, at, rows,
                                                                  windows):
    reset(chdb_client, db)
    records = to_decisions(at, rows)
    if records:
        insert_decisions(chdb_client, records)

    frame = decisions.window_frame(Context(chdb_client, [at], windows))

    for window in windows:
        start = start_of(at, window)
        inside = [r for r in records if start <= r["event_time"] < at]
        part = frame.filter(pl.col("window") == window)
        overall = part.filter(pl.col("dimension") == "")
        assert overall.select("total", "errors").rows() == [
            (len(inside), sum(r["outcome"] == "error" for r in inside))], window
        by_team = {team: (n, e) for team, n, e in part.filter(pl.col("dimension") == "team")
                   .select("dimension_value", "total", "errors").rows() if n or e}
        expected = {}
        for r in inside:
            n, e = expected.get(r["team"], (0, 0))
            expected[r["team"]] = (n + 1, e + (r["outcome"] == "error"))
        assert by_team == expected, window
    assert nonzero_sums(frame) == reference_sums(records, [at], windows)


@settings(max_examples=12, **SETTINGS)
@given(at=minute_points, rows=decision_rows(),
       offsets=st.lists(st.integers(-26 * 60, 0), min_size=FEW_POINTS + 1,
                        max_size=FEW_POINTS + 4, unique=True),
       grain=st.sampled_from([1, 5, 60]))
@example(at=BASE + timedelta(hours=30), rows=[
    (-35 * 60_000, "payments", "error", 0.01), (-4 * 60_000, "search", "allow", 100.0),
    (-61 * 60_000, "payments", "deny", None), (-3 * 86400_000, "identity", "warn", 0.001)],
    offsets=[0, -5, -30, -60, -65, -90, -125, -180, -1440, -1442], grain=1)
@example(at=BASE + timedelta(hours=30), rows=[
    (-1, "payments", "error", 0.01), (-4 * 60_000 - 1, "search", "allow", 100.0),
    (-5 * 60_000, "search", "deny", 0.1), (-29 * 60_000, "payments", "deny", None),
    (-30 * 60_000 - 1, "identity", "warn", 0.001), (-31 * 60_000, "identity", "allow", 2.0)],
    offsets=list(range(0, -12, -1)), grain=60)
def test_many_points_from_numpy_arrays_equal_few_points_summed_in_clickhouse(
        chdb_client, db, at, rows, offsets, grain):
    """A backfill's points (more than FEW_POINTS: hour rows and minute segments reduced in
    numpy, `window_sums.dense_window_reduce`) give every decision measure and percentile the
    per-point runs (window sums inside ClickHouse) give, at points on and off the hour. Points
    `grain` minutes apart from a time on that grain: every 5 or 60 minutes (a backfill's),
    the short windows' segments come from the five-minute rollup, else from minutes."""
    reset(chdb_client, db)
    at -= timedelta(minutes=at.minute % grain)
    if rows:
        insert_decisions(chdb_client, to_decisions(at, rows))
    points = sorted(at + timedelta(minutes=m * grain) for m in offsets)
    windows = [*LENGTHS, "month"]
    columns = [*decisions.SUMS, "under", *decisions.PERCENTILES]
    keys = ["at", "window", "dimension", "dimension_value"]

    many = decisions.window_frame(Context(chdb_client, points, windows))
    assert nonzero_sums(many) == reference_sums(to_decisions(at, rows), points, windows)
    few = pl.concat([decisions.window_frame(Context(chdb_client, [p], windows))
                     for p in points], how="diagonal_relaxed")

    # the many-point frame has every key read at every point; a point's own run has the keys
    # with buckets in its windows (zeros elsewhere): the rows both have agree, the others are 0
    joined = many.join(few, on=keys, how="full", suffix="_few", coalesce=True)
    for column in columns:
        a = joined.get_column(column).fill_nan(None)
        b = joined.get_column(f"{column}_few").fill_nan(None)
        both = a.is_not_null() & b.is_not_null()
        assert (a.filter(both) == b.filter(both)).all(), column
        if column in decisions.SUMS or column == "under":
            assert (a.fill_null(0) == b.fill_null(0)).all(), column


# -- ratio SLIs stay ratios ---------------------------------------------------------------------

@st.composite
def all_kinds(draw):
    """Random events of every kind a ratio SLI reads, relative to the evaluation time."""
    near = st.integers(-3 * 3600_000, 5 * 60_000)
    team = st.sampled_from(TEAMS)
    return {
        "decisions": draw(decision_rows(max_size=20)),
        "gates": draw(st.lists(st.tuples(near, team, st.sampled_from(
            ["passed", "blocked", "overridden"])), max_size=10)),
        "inventory": draw(st.lists(st.tuples(near, team, st.sampled_from(["w1", "w2", "w3"]),
                                             st.sampled_from([True, False, None]),
                                             st.sampled_from(["", "img-a", "img-b"])),
                                   max_size=10)),
        "sboms": draw(st.lists(st.tuples(near, st.sampled_from(["img-a", "img-b"])),
                               max_size=3)),
        "verdicts": draw(st.lists(st.tuples(near, team, st.sampled_from(["d1", "d2", "d3"]),
                                            st.sampled_from(["false_positive",
                                                             "true_positive"])),
                                  max_size=6)),
        "alerts": draw(st.lists(st.tuples(near, st.sampled_from(["a1", "a2", "a3"]),
                                          st.sampled_from(["page", "ticket"]),
                                          st.sampled_from(["firing", "resolved"])),
                                max_size=8)),
        "beats": draw(st.lists(st.tuples(near, st.sampled_from(["ag1", "ag2", "ag3"]),
                                         st.sampled_from(["healthy", "degraded", ""]),
                                         st.sampled_from([None, 10.0, 60.0])), max_size=8)),
    }


@settings(max_examples=15, phases=[Phase.explicit, Phase.generate], **SETTINGS)
@given(at=minute_points, kinds=all_kinds())
def test_every_ratio_sli_is_a_ratio_of_good_to_total(chdb_client, db, at, kinds):
    reset(chdb_client, db)
    insert_all(chdb_client, at, kinds)

    frame = jobs.compute(chdb_client, [at])

    ratios = frame.filter(pl.col("sli").is_in(RATIO_SLIS))
    assert set(ratios.get_column("sli")) == set(RATIO_SLIS)  # an overall row at least
    for sli, window, dim, value_of, good, total, value in ratios.select(
            "sli", "window", "dimension", "dimension_value", "good", "total", "value").rows():
        where = (sli, window, dim, value_of)
        assert 0 <= good <= total, where
        if total == 0:
            assert value is None, where
        else:
            assert value == pytest.approx(good / total) and 0 <= value <= 1, where


# -- backfill == incremental == compute ---------------------------------------------------------

def stored_values(client, points: list[datetime]) -> pl.DataFrame:
    frame = pl.from_arrow(client.query_arrow(
        "SELECT at, sli, window, dimension, dimension_value, good, total, value "
        "FROM sli_values FINAL WHERE at IN {points:Array(DateTime('UTC'))}",
        parameters={"points": points}))
    return normalized(frame.with_columns(utc_datetime(frame, "at")))


KEYS = ["at", "sli", "window", "dimension", "dimension_value"]


def normalized(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(*KEYS, "good", "total", "value").with_columns(
        pl.col("at").cast(pl.Datetime("us", "UTC")),
        *[pl.col(c).cast(pl.String) for c in KEYS[1:]]).sort(KEYS)


def _same(column: str) -> pl.Expr:
    a, b = pl.col(column), pl.col(f"{column}_other")
    return (a.is_null() & b.is_null()) | (
        (a - b).abs() <= 1e-9 * pl.max_horizontal(a.abs(), pl.lit(1.0))).fill_null(False)


def assert_same_values(left: pl.DataFrame, right: pl.DataFrame, what: str) -> None:
    """Rows both frames have carry the same good / total / value, and both have the same
    overall ('' dimension) rows."""
    joined = left.join(right, on=KEYS, suffix="_other")
    differing = joined.filter(~(_same("good") & _same("total") & _same("value")))
    assert differing.height == 0, f"{what}: values differ\n{differing}"
    overall = [f.filter(pl.col("dimension") == "").select(KEYS).unique().sort(KEYS)
               for f in (left, right)]
    assert_frame_equal(overall[0], overall[1])


@settings(max_examples=8, phases=[Phase.explicit, Phase.generate], **SETTINGS)
@given(until=minute_points, kinds=all_kinds(),
       drift=st.lists(st.integers(-5 * 3600_000, 0), max_size=5),
       violations=st.lists(st.tuples(st.sampled_from(["v1", "v2", "v3"]),
                                     st.sampled_from(["opened", "remediated", "suppressed"]),
                                     st.integers(-5 * 3600_000, 0),
                                     st.sampled_from(["auto", "manual"])), max_size=8))
def test_a_backfill_stores_the_values_incremental_runs_and_compute_give(
        chdb_client, db, until, kinds, drift, violations):
    reset(chdb_client, db)
    insert_all(chdb_client, until, kinds)
    events = [ev("drift.detected", until + timedelta(milliseconds=ms)) for ms in drift]
    events += [ev("policy.violation", until + timedelta(milliseconds=ms), violation_id=v,
                  violation_status=s, remediation_kind=k if s == "remediated" else "")
               for v, s, ms, k in violations]
    if events:
        insert_events(chdb_client, events)
    points = [until - timedelta(hours=2), until - timedelta(hours=1), until]

    jobs.backfill(chdb_client, timedelta(hours=3), until=until, step=timedelta(hours=1))
    backfilled = stored_values(chdb_client, points)

    chdb_client.command("TRUNCATE TABLE sli_values")
    chdb_client.command("TRUNCATE TABLE sli_watermark")
    for point in points:
        jobs.run_incremental(chdb_client, point, max_catchup=0)
    incremental = stored_values(chdb_client, points)

    computed = normalized(jobs.compute(chdb_client, points))

    assert set(backfilled.get_column("at")) == set(points)
    assert_same_values(backfilled, incremental, "backfill vs incremental runs")
    assert_same_values(backfilled, computed, "backfill vs compute")
