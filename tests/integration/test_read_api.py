"""The read API (`metrics.read`) on known rows: decisions with known outcomes, teams and
latencies inserted straight into `policy_decisions` of a fresh database (the materialized
views fill the rollups), read back as stored SLI values, window totals and latency
percentiles; each checked against a brute-force count over the inserted rows or against what
the SLI batch writes for the same window."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from metrics import jobs, read
from metrics.latency import BOUNDS, BUCKET_COUNT, quantile

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
START = AT - timedelta(hours=1, minutes=25)  # mid-hour on both edges: minutes, hours
TEAMS = ("payments", "identity")
OUTCOMES = ("allow", "allow", "allow", "deny", "error")


@pytest.fixture
def decisions(chdb_client, database) -> list[dict]:
    """400 decisions over the three hours before AT (and a few at or after it): a team, an
    outcome, and mostly a latency between 0.2 ms and 3 s."""
    rng = random.Random(11)
    rows = []
    for i in range(400):
        at = AT - timedelta(milliseconds=rng.randint(-120_000, 3 * 3600_000))
        latency = None if i % 9 == 0 else round(10 ** rng.uniform(-3.7, 0.5), 6)
        rows.append({"event_id": f"e{i}", "event_time": at, "team": rng.choice(TEAMS),
                     "engine": rng.choice(["opa", "kyverno"]), "policy_id": "p1",
                     "outcome": rng.choice(OUTCOMES), "latency_seconds": latency})
    columns = list(rows[0])
    chdb_client.insert("policy_decisions", [[r[c] for c in columns] for r in rows],
                       column_names=columns)
    return rows


def inside(rows: list[dict], start: datetime, end: datetime, **match) -> list[dict]:
    return [r for r in rows if start <= r["event_time"] < end
            and all(r[k] == v for k, v in match.items())]


def brute(rows: list[dict]) -> dict[str, int]:
    return {"total": len(rows), "errors": sum(r["outcome"] == "error" for r in rows),
            "denies": sum(r["outcome"] == "deny" for r in rows),
            "latency_count": sum(r["latency_seconds"] is not None for r in rows)}


def histogram(rows: list[dict]) -> list[int]:
    """Bucket counts of the rows' latencies, bucketed as the rollups' views do (bucket i holds
    (BOUNDS[i-2], BOUNDS[i-1]], bucket 0 what is over the last bound)."""
    counts = [0] * BUCKET_COUNT
    for r in rows:
        if r["latency_seconds"] is not None:
            counts[next((i for i, b in enumerate(BOUNDS, 1) if r["latency_seconds"] <= b), 0)] += 1
    return counts


def test_sli_values_round_trips_what_the_batch_wrote(chdb_client, decisions):
    jobs.run_incremental(chdb_client, now=AT)  # writes every SLI at AT
    computed = jobs.compute(chdb_client, [AT])

    stored = read.sli_values(chdb_client, sli="M1", window="1h", by="team")
    expected = computed.filter((pl.col("sli") == "M1") & (pl.col("window") == "1h")
                               & (pl.col("dimension") == "team")).sort("dimension_value")
    assert stored.height == len(TEAMS)
    assert stored.select(pl.all().cast(pl.String)).rows() == expected.select(
        pl.all().cast(pl.String)).rows()
    assert stored.get_column("at").to_list() == [AT] * len(TEAMS)
    for row in stored.iter_rows(named=True):  # and the numbers are the rows'
        chosen = inside(decisions, AT - timedelta(hours=1), AT, team=row["dimension_value"])
        counted = brute(chosen)
        assert (row["good"], row["total"]) == (counted["total"] - counted["errors"],
                                               counted["total"])
    latest = read.sli_values(chdb_client, sli="L_p95", window="1d")  # default: latest point
    assert latest.select("sli", "window", "dimension", "at").rows() == [
        ("L_p95", "1d", "", AT)]
    assert read.sli_values(chdb_client, sli="M1", window="1h", at=AT - timedelta(hours=5)
                           ).height == 0


@pytest.mark.parametrize(("where", "by"), [
    pytest.param(None, None, id="every dimension value"),
    pytest.param({}, None, id="overall"),
    pytest.param({"team": "payments"}, None, id="where team"),
    pytest.param({}, ["team"], id="by team"),
    pytest.param({"engine": "opa"}, ["team"], id="where engine, by team (combined rollups)"),
])
def test_window_totals_equal_a_count_over_the_rows(chdb_client, decisions, where, by):
    measures = ["total", "errors", "denies", "latency_count"]
    totals = read.window_totals(chdb_client, "decisions", START, AT, measures, where=where,
                                by=by)
    if where is None:
        team_rows = totals.filter(pl.col("dimension") == "team")
        keyed = {("team", r["dimension_value"]): r for r in team_rows.iter_rows(named=True)}
        overall = totals.filter(pl.col("dimension") == "").row(0, named=True)
        keyed[("", "")] = overall
        expected = {("team", t): brute(inside(decisions, START, AT, team=t)) for t in TEAMS}
        expected[("", "")] = brute(inside(decisions, START, AT))
    else:
        keyed = {r["key"]: r for r in totals.iter_rows(named=True)}
        if by:
            expected = {f"team={t}": brute(inside(decisions, START, AT, team=t, **where))
                        for t in TEAMS}
        else:
            expected = {"": brute(inside(decisions, START, AT, **where))}
    assert set(keyed) == set(expected)
    for key, counted in expected.items():
        assert {m: keyed[key][m] for m in measures} == counted, key


def test_window_totals_sets_give_each_selection_what_a_count_over_its_rows_gives(
        chdb_client, decisions):
    """Several (where, by) selections of one window from one read: each equals a count over
    the rows it selects, keyed as `window_totals` keys them (values with no row left out)."""
    measures = ["total", "errors", "denies", "latency_count"]
    selections = [({}, ["team"]), ({}, ["engine"]), ({"team": "payments"}, ["engine"]),
                  ({"engine": "opa"}, []), ({"team": "nobody"}, ["engine"])]
    got = read.window_totals_sets(chdb_client, "decisions", START, AT, measures, selections)

    assert len(got) == len(selections)
    for (where, by), frame in zip(selections, got):
        rows = inside(decisions, START, AT, **where)
        if by:
            values = sorted({r[by[0]] for r in rows})
            expected = {f"{by[0]}={v}": brute([r for r in rows if r[by[0]] == v])
                        for v in values}
        else:
            expected = {"": brute(rows)}
        keyed = {r["key"]: {m: r[m] for m in measures} for r in frame.iter_rows(named=True)}
        assert keyed == expected, (where, by)
    assert got[-1].height == 0


def test_window_totals_of_an_empty_window_are_zero(chdb_client, decisions):
    empty = AT - timedelta(days=3)
    totals = read.window_totals(chdb_client, "decisions", empty - timedelta(hours=2), empty,
                                ["total", "errors"], where={})
    assert totals.rows(named=True) == [{"key": "", "total": 0, "errors": 0}]
    assert read.latency_percentiles(chdb_client, empty - timedelta(hours=2), empty,
                                    where={}).row(0, named=True) == {
        "key": "", "latency_count": 0, "p50": None, "p95": None, "p99": None}


def test_a_window_must_be_between_whole_minutes(chdb_client, decisions):
    with pytest.raises(ValueError, match="whole minutes"):
        read.window_totals(chdb_client, "decisions", START + timedelta(seconds=1), AT)


@pytest.mark.parametrize("window", ["30m", "1h", "6h", "1d"])
def test_the_read_apis_p95_is_the_sli_batchs_l_p95(chdb_client, decisions, window):
    from metrics.windows import window_start

    start = window_start(AT, window)
    rows = jobs.compute(chdb_client, [AT], windows=[window])
    got = read.latency_percentiles(chdb_client, start, AT, where=None, by=None)
    for dimension, value in [("", ""), ("team", "payments"), ("team", "identity")]:
        mine = got.filter((pl.col("dimension") == dimension)
                          & (pl.col("dimension_value") == value)).row(0, named=True)
        for name, sli in [("p50", "L_p50"), ("p95", "L_p95"), ("p99", "L_p99")]:
            stored = rows.filter((pl.col("sli") == sli) & (pl.col("dimension") == dimension)
                                 & (pl.col("dimension_value") == value)).row(0, named=True)
            assert mine[name] == stored["value"], (sli, dimension, value)  # the same float
            assert mine["latency_count"] == stored["total"]
    # and it is the histogram quantile of the inserted latencies
    overall = got.filter(pl.col("dimension") == "").row(0, named=True)
    assert overall["p95"] == pytest.approx(
        quantile(histogram(inside(decisions, start, AT)), 0.95), rel=1e-12)


def test_filtered_percentiles_are_those_of_the_filtered_rows(chdb_client, decisions):
    got = read.latency_percentiles(chdb_client, START, AT, {"p90": 0.9},
                                   where={"engine": "kyverno"}, by=["team"],
                                   measures=("total",))
    assert sorted(got.get_column("key")) == sorted(f"team={t}" for t in TEAMS)
    for row in got.iter_rows(named=True):
        team = row["key"].split("=", 1)[1]
        chosen = inside(decisions, START, AT, team=team, engine="kyverno")
        assert row["total"] == len(chosen)
        assert row["p90"] == pytest.approx(quantile(histogram(chosen), 0.9), rel=1e-12)


def test_one_window_over_days_hours_and_minutes_equals_a_count_and_the_many_window_read(
        chdb_client, database):
    """A window of several days starting and ending inside an hour reads day, hour and
    minute buckets; alone (one interval: each bucket's interval is known) it sums what a
    count over its rows gives, and what the same window gives read together with another
    (each bucket tagged with the intervals it lies in)."""
    rng = random.Random(5)
    start, end = AT - timedelta(days=3, minutes=17), AT + timedelta(minutes=41)
    rows = [{"event_id": f"d{i}", "event_time": AT - timedelta(seconds=rng.randint(
                -3600, 4 * 86_400)), "team": rng.choice(TEAMS), "engine": "opa",
             "policy_id": "p1", "outcome": rng.choice(OUTCOMES),
             "latency_seconds": round(10 ** rng.uniform(-3.7, 0.5), 6)} for i in range(600)]
    columns = list(rows[0])
    chdb_client.insert("policy_decisions", [[r[c] for c in columns] for r in rows],
                       column_names=columns)
    measures = ["total", "errors", "denies", "latency_count"]
    alone = read.window_totals(chdb_client, "decisions", start, end, measures, where={},
                               by=["team"])
    expected = {f"team={t}": brute(inside(rows, start, end, team=t)) for t in TEAMS}
    assert {r["key"]: {m: r[m] for m in measures} for r in alone.iter_rows(named=True)} == \
        expected
    assert all(0 < v["total"] < len(rows) for v in expected.values())
    utc = pl.Datetime("us", "UTC")
    intervals = pl.DataFrame({"at": [end, end], "window": ["w", "short"],
                              "start": [start, end - timedelta(hours=2, minutes=3)]},
                             schema={"at": utc, "window": pl.String, "start": utc})
    together = read.interval_sums(chdb_client, "decisions", intervals, measures, where={},
                                  by=["team"]).filter(pl.col("window") == "w")
    assert {r["key"]: {m: r[m] for m in measures} for r in together.iter_rows(named=True)} \
        == expected
