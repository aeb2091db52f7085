"""Every SLI against hand-built events, with the expected numbers worked out by hand here.

Each family gets one event set in its own database, inserted straight into the event tables
(the materialized views fill the rollups), and `jobs.compute` once; the tables below assert
(good, total, value) of single rows. Times are fixed: the main evaluation point is
Monday 2026-11-02 12:00 UTC, so `month` covers 36 h; windows are [start, at), so an event
exactly at a window's start is in it and one exactly at `at` is not. Late events go through
`jobs.run_incremental` twice; duplicates go through the real collector.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from metrics import jobs
from tests.builders.scenarios import (
    AT,
    DEC1,
    LATER,
    SCENARIOS,
    T,
)
from tests.builders.rows import (
    dec,
    ev,
    exactly,
    fresh_database,
    insert_alerts,
    insert_decisions,
    insert_events,
    insert_verdicts,
    record,
)

pytestmark = pytest.mark.integration

UTC = timezone.utc
WEEK = 604800.0  # seconds


def pick(frame: pl.DataFrame, sli: str, window: str, at: datetime = AT, dimension: str = "",
         value: str = "") -> tuple:
    """(good, total, value) of the one row for (sli, window, at, dimension, value)."""
    rows = frame.filter((pl.col("sli") == sli) & (pl.col("window") == window)
                        & (pl.col("at") == at) & (pl.col("dimension") == dimension)
                        & (pl.col("dimension_value") == value))
    assert rows.height == 1, (f"expected one {sli} row for window {window} at {at} "
                              f"{dimension}={value!r}, found {rows.height}")
    return rows.select("good", "total", "value").row(0)


@pytest.fixture(scope="module")
def scenario(chdb_client):
    computed: dict[str, pl.DataFrame] = {}

    def get(name: str) -> pl.DataFrame:
        if name not in computed:
            build, points, windows, options = SCENARIOS[name]
            fresh_database(chdb_client)
            build(chdb_client)
            computed[name] = jobs.compute(chdb_client, points, windows=windows, **options)
        return computed[name]

    return get


def P(sli, window, expected, id, *, at=AT, by="", value=""):  # noqa: A002 - pytest's name
    return pytest.param(sli, window, at, by, value, expected, id=id)


ARGS = "sli,window,at,dimension,dimension_value,expected"


# -- M1 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(ARGS, [
    P("M1", "5m", (1, 1, 1.0), "5m: the one decision exactly at the window start counts, the "
      "error exactly at `at` does not"),
    P("M1", "30m", (2, 4, 0.5), "30m: 2 of 4 decisions succeeded (a deny is a success)"),
    P("M1", "1h", (3, 5, 0.6), "1h: a warn is a success, 3 of 5"),
    P("M1", "6h", (3, 6, 0.5), "6h: 3 of 6"),
    P("M1", "month", (4, 7, 4 / 7), "month to date: the decision at 00:00 on the 1st is in"),
    P("M1", "7d", (4, 8, 0.5), "7d: the error a millisecond before the month is in the week"),
    P("M1", "1h", (2, 3, 2 / 3), "1h for team payments: 2 of 3", by="team", value="payments"),
    P("M1", "1h", (1, 2, 0.5), "1h for team identity: 1 of 2", by="team", value="identity"),
    P("M1", "5m", (0, 0, None), "5m for team identity is empty: no value, not 0 or 1",
      by="team", value="identity"),
    P("M1", "1h", (3, 5, 0.6), "1h for the one policy equals the overall value", by="policy",
      value="k8s.require-non-root"),
    P("M1", "5m", (0, 0, None), "an empty 5m window three hours later has no value",
      at=LATER),
    P("M1", "6h", (3, 7, 3 / 7), "6h three hours later includes the error that was at `at`",
      at=LATER),
    P("M1", "month", (0, 0, None), "the month at 00:00 on the 1st is empty", at=DEC1),
])
def test_m1_success_rate(scenario, sli, window, at, dimension, dimension_value, expected):
    frame = scenario("decisions")
    assert pick(frame, sli, window, at, dimension, dimension_value) == exactly(expected)


@pytest.mark.parametrize("name,sli,window,expected", [
    pytest.param("decisions, 5m only", "M1", "5m", (1, 1, 1.0),
                 id="M1 with only the 5m window: 1 of 1 (an earlier decision at 11:40 is "
                    "outside)"),
    pytest.param("gates, 30m only", "M6", "30m", (2, 4, 0.5),
                 id="M6 with only the 30m window: 2 of 4 gates blocked, one exactly at the "
                    "start"),
])
def test_a_rollup_sli_is_exact_when_every_window_starts_mid_hour(scenario, name, sli, window,
                                                                  expected):
    assert pick(scenario(name), sli, window) == exactly(expected)


# -- decision latency ---------------------------------------------------------------------------

# 1h holds 100 latencies: 50 x 1 ms, 45 x 10 ms, 3 x 100 ms, 1 x 250 ms, 1 x 1 s (cumulative
# 50, 95, 98, 99, 100), plus 3 decisions without a latency. A percentile interpolates
# log-linearly inside its bucket (lo, hi]: lo * (hi / lo) ** fraction.
@pytest.mark.parametrize(ARGS, [
    P("L_p50", "1h", (None, 100, 0.001), "1h p50: rank 50 is the top of the (0.8, 1] ms bucket"),
    P("L_p95", "1h", (None, 100, 0.01), "1h p95: rank 95 is the top of the (8, 10] ms bucket"),
    P("L_p99", "1h", (None, 100, 0.25), "1h p99: rank 99 is the 250 ms decision"),
    P("L_under", "1h", (98, 100, 0.98), "1h: 98 of 100 at or under 100 ms (a latency equal to "
      "the threshold is under it)"),
    P("M1", "1h", (103, 103, 1.0), "decisions without a latency still count for M1"),
    P("L_p50", "30m", (None, 2, 0.25), "30m p50 of 250 ms and 1 s: the top of (200, 250] ms"),
    P("L_p95", "30m", (None, 2, 0.8 * 1.25 ** 0.9), "30m p95: 90% into (0.8, 1] s"),
    P("L_p99", "30m", (None, 2, 0.8 * 1.25 ** 0.98), "30m p99: rank 1.98 is 98% into "
      "(0.8, 1] s"),
    P("L_under", "30m", (0, 2, 0.0), "30m: none of 2 under 100 ms is 0, not null"),
    P("L_p50", "5m", (None, 1, 0.2 * 1.25 ** 0.5), "5m single event: p50 halfway (log) into "
      "(200, 250] ms"),
    P("L_p95", "5m", (None, 1, 0.2 * 1.25 ** 0.95), "5m single event: p95"),
    P("L_p99", "5m", (None, 1, 0.2 * 1.25 ** 0.99), "5m single event: p99"),
    P("L_p50", "1h", (None, 2, 0.25), "1h for policy slow: p50 of its two", by="policy",
      value="slow"),
    P("L_p50", "1h", (None, 1, 100.0), "a latency over 100 s reports the last bound",
      at=T("11-01 07:00")),
    P("L_p99", "1h", (None, 1, 100.0), "p99 of one latency over 100 s is 100 s",
      at=T("11-01 07:00")),
    P("L_under", "1h", (0, 1, 0.0), "a latency over 100 s is not under 100 ms",
      at=T("11-01 07:00")),
    P("L_p50", "5m", (None, 0, None), "an empty window has no p50", at=T("11-01 07:00")),
    P("L_p99", "5m", (None, 0, None), "an empty window has no p99", at=T("11-01 07:00")),
    P("L_under", "5m", (0, 0, None), "an empty window has no share under the threshold",
      at=T("11-01 07:00")),
])
def test_decision_latency(scenario, sli, window, at, dimension, dimension_value, expected):
    frame = scenario("latency")
    assert pick(frame, sli, window, at, dimension, dimension_value) == exactly(expected)


def test_the_latency_threshold_is_configurable(scenario):
    # at 10 ms: 50 x 1 ms + 45 x 10 ms = 95 of 100
    assert pick(scenario("latency at 10 ms"), "L_under", "1h") == exactly((95, 100, 0.95))


# -- M2 / M9 ------------------------------------------------------------------------------------

@pytest.mark.parametrize(ARGS, [
    P("M2", "5m", (1, 2, 0.5), "M2 5m: w1's latest report (not enforced) and w4 at the start"),
    P("M2", "30m", (1, 3, 1 / 3), "M2 30m: w3 at the start with no enforcement flag is not "
      "enforced"),
    P("M2", "1h", (2, 4, 0.5), "M2 1h: 2 of 4 workloads, the one reported at `at` is out"),
    P("M2", "1h", (1, 2, 0.5), "M2 1h team payments", by="team", value="payments"),
    P("M2", "1h", (1, 2, 0.5), "M2 1h team identity", by="team", value="identity"),
    P("M2", "5m", (1, 1, 1.0), "M2 single report: w1 enforced at 11:10",
      at=T("11-02 11:15")),
    P("M2", "5m", (0, 0, None), "M2 empty window has no value", at=LATER),
    P("M2", "6h", (3, 5, 0.6), "M2 6h three hours later: w5 counts now", at=LATER),
    P("M9", "5m", (1, 1, 1.0), "M9 5m: img-a has an SBOM, w4 has no image"),
    P("M9", "1h", (1, 2, 0.5), "M9 1h: img-b's SBOM arrived exactly at `at`, too late"),
    P("M9", "1h", (1, 2, 0.5), "M9 1h team payments: img-a yes, img-b no", by="team",
      value="payments"),
    P("M9", "1h", (1, 1, 1.0), "M9 1h team identity: img-a counted once", by="team",
      value="identity"),
    P("M9", "5m", (1, 1, 1.0), "M9 single report", at=T("11-02 11:15")),
    P("M9", "5m", (0, 0, None), "M9 empty window has no value", at=LATER),
    P("M9", "6h", (3, 3, 1.0), "M9 6h three hours later: all three images have SBOMs",
      at=LATER),
])
def test_m2_enforcement_and_m9_sbom_coverage(scenario, sli, window, at, dimension,
                                             dimension_value, expected):
    frame = scenario("coverage")
    assert pick(frame, sli, window, at, dimension, dimension_value) == exactly(expected)


# -- M3 -----------------------------------------------------------------------------------------

# Remediated in [11:00, 12:00): v1 7200 s (auto, exactly at the 1h start), v2 5400 (manual),
# v3 1800 (auto), v4 86400 (manual), v9 3960 (auto). Percentiles interpolate linearly between
# sorted values: p at position q x (n - 1).
@pytest.mark.parametrize(ARGS, [
    P("M3_mean", "5m", (None, 1, 3960.0), "5m: the single remediation, v9"),
    P("M3_p50", "5m", (None, 1, 3960.0), "5m: p50 of a single remediation"),
    P("M3_p90", "5m", (None, 1, 3960.0), "5m: p90 of a single remediation"),
    P("M3_mean", "30m", (None, 4, 24390.0), "30m: v2 (exactly at the start), v3, v4, v9"),
    P("M3_p50", "30m", (None, 4, 4680.0), "30m p50: halfway between 3960 and 5400"),
    P("M3_p90", "30m", (None, 4, 62100.0), "30m p90: 70% from 5400 to 86400"),
    P("M3_mean", "1h", (None, 5, 20952.0), "1h mean of five"),
    P("M3_p50", "1h", (None, 5, 5400.0), "1h p50 is the middle one"),
    P("M3_p90", "1h", (None, 5, 54720.0), "1h p90: 60% from 7200 to 86400"),
    P("M3_mean", "1h", (None, 3, 4320.0), "1h auto remediation mean", by="remediation",
      value="auto"),
    P("M3_p50", "1h", (None, 3, 3960.0), "1h auto remediation p50", by="remediation",
      value="auto"),
    P("M3_p90", "1h", (None, 3, 6552.0), "1h auto remediation p90", by="remediation",
      value="auto"),
    P("M3_mean", "1h", (None, 2, 45900.0), "1h manual remediation mean", by="remediation",
      value="manual"),
    P("M3_p90", "1h", (None, 2, 78300.0), "1h manual remediation p90", by="remediation",
      value="manual"),
    P("M3_mean", "1h", (None, 2, 6300.0), "1h team payments: v1 from its first opening",
      by="team", value="payments"),
    P("M3_mean", "1h", (None, 3, 30720.0), "1h team identity", by="team", value="identity"),
    P("M3_mean", "5m", (None, 0, None), "empty window: no mean", at=LATER),
    P("M3_p90", "1h", (None, 0, None), "empty window: no p90", at=LATER),
    P("M3_open", "instant", (None, 2, 2.0), "open at `at`: v5, and v7 remediated exactly at "
      "`at`; not the suppressed v6 nor v8 opened at `at`"),
    P("M3_open_age_mean", "instant", (None, 2, 6600.0), "mean age of the open ones: 2400 s "
      "and 10800 s"),
    P("M3_open", "instant", (None, 1, 1.0), "open for team payments", by="team",
      value="payments"),
    P("M3_open_age_mean", "instant", (None, 1, 10800.0), "open age for team identity",
      by="team", value="identity"),
    P("M3_open", "instant", (None, 2, 2.0), "open three hours later: v5 and v8", at=LATER),
    P("M3_open", "instant", (None, 0, 0.0), "before any opening none is open",
      at=T("11-01 06:00")),
    P("M3_open_age_mean", "instant", (None, 0, None), "with none open there is no mean age",
      at=T("11-01 06:00")),
    P("M3_open_age_mean", "instant", (None, 2, 12000.0), "their mean age: 13200 s and 10800 s",
      at=LATER),
])
def test_m3_time_to_remediate(scenario, sli, window, at, dimension, dimension_value, expected):
    frame = scenario("remediation")
    assert pick(frame, sli, window, at, dimension, dimension_value) == exactly(expected)


# -- M4 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(ARGS, [
    P("M4", "5m", (0, 0, None), "5m: no verdicts, no value"),
    P("M4", "30m", (2, 4, 0.5), "30m: d1 and rule-given p1 false, d2 re-triaged true, "
      "x1 exactly at the start"),
    P("M4", "1h", (3, 6, 0.5), "1h: 3 false positives of 6 current verdicts: b1 benign "
      "counts, b2 expired at `at` and u1 undone do not, d4 at `at` is out"),
    P("M4", "month", (3, 7, 3 / 7), "month: d5 from the 1st joins"),
    P("M4", "1h", (2, 5, 0.4), "1h team payments", by="team", value="payments"),
    P("M4", "1h", (1, 1, 1.0), "1h team identity", by="team", value="identity"),
    # M4_propagated: good = rule-given false positives, total = value = rule-given verdicts
    P("M4_propagated", "1h", (1, 1, 1.0), "1h: p1, given by a sticky rule, counted apart"),
    P("M4_propagated", "1h", (1, 1, 1.0), "1h team payments: p1", by="team",
      value="payments"),
    P("M4_propagated", "5m", (0, 0, 0.0), "5m: no rule-given verdicts"),
    # M4_untriaged: good = denies and warns in the window, total = value = those less the
    # decisions with a current verdict
    P("M4_untriaged", "1h", (7, 2, 2.0), "1h: 6 denies and 1 warn less 5 triaged decisions "
      "(d1, d2, d3, p1, b1)"),
    P("M4_untriaged", "1h", (6, 2, 2.0), "1h team payments: 5 denies and 1 warn less d1, d2, "
      "p1, b1", by="team", value="payments"),
    P("M4_untriaged", "1h", (1, 0, 0.0), "1h team identity: 1 deny, 1 triaged", by="team",
      value="identity"),
    P("M4_untriaged", "month", (1, 0, 0.0), "month team identity: 1 deny, 2 verdicts, "
      "never below 0", by="team", value="identity"),
    P("M4_untriaged", "5m", (1, 1, 1.0), "5m: the single deny at 11:56, untriaged"),
    P("M4_untriaged", "30m", (4, 1, 1.0), "30m: 3 denies and 1 warn less d1, d2, p1"),
])
def test_m4_false_positive_rate(scenario, sli, window, at, dimension, dimension_value,
                                expected):
    frame = scenario("false positives")
    assert pick(frame, sli, window, at, dimension, dimension_value) == exactly(expected)


# -- M5 / M10 -----------------------------------------------------------------------------------

# weeks per window: 5m = 300 / 604800, 1h = 1 / 168, 1d = 1 / 7, month at AT (36 h) = 1.5 / 7
@pytest.mark.parametrize(ARGS, [
    P("M5", "5m", (1, 300 / WEEK, 2016.0), "M5 5m: one event (11:59:59.999) is 2016 a week"),
    P("M5", "1h", (3, 1 / 168, 504.0), "M5 1h: three events, one exactly at the start"),
    P("M5", "1d", (5, 1 / 7, 35.0), "M5 1d: five events"),
    P("M5", "month", (6, 1.5 / 7, 28.0), "M5 month: six events in 36 h, one at 00:00 on the 1st"),
    P("M5", "1h", (2, 1 / 168, 336.0), "M5 1h team payments", by="team", value="payments"),
    P("M5", "1h", (1, 1 / 168, 168.0), "M5 1h team identity", by="team", value="identity"),
    P("M5", "5m", (0, 300 / WEEK, 0.0), "M5 empty 5m window: a rate of 0 a week", at=LATER),
    P("M5", "1h", (0, 1 / 168, 0.0), "M5 empty 1h window: 0 a week", at=LATER),
    P("M5_trend", "5m", (None, 300 / WEEK, 2016.0), "trend 5m: nothing the 5 minutes before"),
    P("M5_trend", "1h", (None, 1 / 168, 336.0), "trend 1h: 3 now against 1 the hour before"),
    P("M5_trend", "1d", (None, 1 / 7, 21.0), "trend 1d: 5 now against 2 the day before"),
    P("M5_trend", "month", (None, 1.5 / 7, 4 * 7 / 1.5), "trend month: 6 now against 2 in "
      "the 36 h before the month"),
    P("M5_trend", "1h", (None, 1 / 168, 0.0), "trend of two empty hours is 0", at=LATER),
    P("M10", "1h", (4, 1 / 168, 672.0), "M10 1h: fp-1 twice counts once; fp-1, 2, 4, 6"),
    P("M10", "1d", (5, 1 / 7, 35.0), "M10 1d: fp-5 joins"),
    P("M10", "5m", (0, 300 / WEEK, 0.0), "M10 empty 5m window: 0 a week"),
    P("M10", "5m", (1, 300 / WEEK, 2016.0), "M10 single secret in 5m: 2016 a week",
      at=T("11-02 11:12")),
    P("M10", "1h", (3, 1 / 168, 504.0), "M10 1h team payments: fp-1, fp-4 and fp-6",
      by="team", value="payments"),
    P("M10", "1h", (2, 1 / 168, 336.0), "M10 1h team identity: fp-2 and fp-6", by="team",
      value="identity"),
])
def test_m5_drift_and_m10_secret_rates(scenario, sli, window, at, dimension, dimension_value,
                                       expected):
    frame = scenario("rates")
    assert pick(frame, sli, window, at, dimension, dimension_value) == exactly(expected)


@pytest.mark.parametrize("sli", [
    pytest.param("M5", id="the drift rate over the empty month at 00:00 on the 1st has no value"),
    pytest.param("M10", id="the secret rate over the empty month has no value"),
])
def test_a_rate_over_the_zero_length_month_has_no_value(scenario, sli):
    good, total, value = pick(scenario("rates"), sli, "month", DEC1)
    assert (total, value) == (0, None)


# -- M6 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(ARGS, [
    P("M6", "5m", (0, 1, 0.0), "5m: the single gate, passed exactly at the start, 0 blocked"),
    P("M6", "1h", (2, 5, 0.4), "1h: 2 of 5 blocked; the one blocked at `at` is out"),
    P("M6", "6h", (3, 6, 0.5), "6h: 3 of 6 blocked"),
    P("M6", "1h", (2, 3, 2 / 3), "1h blocking policy p-block", by="policy", value="p-block"),
    P("M6", "1h", (2, 3, 2 / 3), "1h team payments", by="team", value="payments"),
    P("M6", "1h", (0, 2, 0.0), "1h team identity: 0 of 2 (overridden is not blocked)",
      by="team", value="identity"),
    P("M6", "5m", (0, 0, None), "empty window: no value", at=LATER),
    P("M6", "6h", (4, 7, 4 / 7), "6h three hours later: all seven", at=LATER),
])
def test_m6_deploy_block_rate(scenario, sli, window, at, dimension, dimension_value, expected):
    frame = scenario("gates")
    assert pick(frame, sli, window, at, dimension, dimension_value) == exactly(expected)


# -- M7 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(ARGS, [
    P("M7", "5m", (1, 1, 1.0), "5m: a1 fired again exactly at the start"),
    P("M7", "1h", (1, 3, 1 / 3), "1h: a1 (twice), a2, a3 fired; only a1 pages"),
    P("M7", "6h", (2, 4, 0.5), "6h: a6 joins; a4 never fired, a5 at `at` is out"),
    P("M7", "1h", (1, 2, 0.5), "1h SLO admission-availability", by="slo",
      value="admission-availability"),
    P("M7", "1h", (0, 1, 0.0), "1h SLO admission-latency", by="slo", value="admission-latency"),
    P("M7", "1h", (0, 1, 0.0), "1h team identity", by="team", value="identity"),
    P("M7", "5m", (0, 0, None), "empty window: no value", at=LATER),
    P("M7", "6h", (3, 5, 0.6), "6h three hours later: a5 counts now", at=LATER),
])
def test_m7_alert_to_page(scenario, sli, window, at, dimension, dimension_value, expected):
    frame = scenario("alerts")
    assert pick(frame, sli, window, at, dimension, dimension_value) == exactly(expected)


# -- M8 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(ARGS, [
    P("M8", "5m", (2, 5, 0.4), "5m: ag1 and ag5 healthy of five; ag2 is older, ag6 at `at`"),
    P("M8", "1h", (2, 6, 1 / 3), "1h: ag2 is known but stale"),
    P("M8", "5m", (1, 1, 1.0), "5m engine falco: ag1's latest beat is healthy", by="engine",
      value="falco"),
    P("M8", "5m", (1, 4, 0.25), "5m engine kyverno", by="engine", value="kyverno"),
    P("M8", "5m", (0, 1, 0.0), "single beat, degraded", at=T("11-02 11:31")),
    P("M8", "5m", (0, 0, None), "empty window: no value", at=LATER),
])
def test_m8_agent_health(scenario, sli, window, at, dimension, dimension_value, expected):
    frame = scenario("agents")
    assert pick(frame, sli, window, at, dimension, dimension_value) == exactly(expected)


@pytest.mark.parametrize("name", [
    pytest.param(n, id=f"{n}: one row per point, SLI, window and dimension value")
    for n in SCENARIOS if "only" not in n])
def test_each_sli_window_and_dimension_value_has_one_row_per_point(scenario, name):
    frame = scenario(name)
    keys = ["at", "sli", "window", "dimension", "dimension_value"]
    repeated = frame.group_by(keys).len().filter(pl.col("len") > 1).sort(keys)
    assert repeated.height == 0, f"rows repeated:\n{repeated}"


# -- empty database -----------------------------------------------------------------------------

RATIO_SLIS = ["M1", "M2", "M4", "M6", "M7", "M8", "M9", "L_under"]


def test_with_no_events_at_all_every_ratio_has_an_overall_row_without_a_value(chdb_client):
    fresh_database(chdb_client)
    frame = jobs.compute(chdb_client, [AT], windows=["5m", "1h", "month"])
    for sli in RATIO_SLIS + ["L_p50", "L_p95", "L_p99", "M3_mean", "M3_p50", "M3_p90"]:
        for window in ["5m", "1h", "month"]:
            good, total, value = pick(frame, sli, window)
            assert (total, value) == (0, None), (sli, window)
    for sli in ["M5", "M10"]:
        assert pick(frame, sli, "1h") == exactly((0, 1 / 168, 0.0))


# -- late events --------------------------------------------------------------------------------

def _late_case(first, late, sli, window, expected, id):  # noqa: A002
    return pytest.param(first, late, sli, window, expected, id=id)


def _d(*rows):
    return lambda c: insert_decisions(c, list(rows))


def _e(*rows):
    return lambda c: insert_events(c, list(rows))


LATE_CASES = [
    _late_case(_d(dec(T("11-02 11:50"), latency_seconds=0.001)),
               _d(dec(T("11-02 11:58"), "error", latency_seconds=0.001)),
               "M1", "1h", (1, 2, 0.5), "M1: a late error is folded in"),
    _late_case(_d(dec(T("11-02 11:50"), latency_seconds=0.001)),
               _d(dec(T("11-02 11:58"), latency_seconds=1.0)),
               "L_under", "1h", (1, 2, 0.5), "L_under: a late slow decision is folded in"),
    _late_case(_d(dec(T("11-02 11:50"), latency_seconds=0.001)),
               _d(dec(T("11-02 11:58"), latency_seconds=0.001)),
               "L_p50", "1h", (None, 2, 0.0008 * 1.25 ** 0.5),
               "L_p50: the late latency counts (rank 1 of 2 in (0.8, 1] ms)"),
    _late_case(_e(ev("deploy.gate", T("11-02 11:50"), deploy_id="g1", gate_outcome="passed")),
               _e(ev("deploy.gate", T("11-02 11:58"), deploy_id="g2", gate_outcome="blocked")),
               "M6", "1h", (1, 2, 0.5), "M6: a late blocked gate is folded in"),
    _late_case(_e(ev("workload.inventory", T("11-02 11:50"), workload_id="w1",
                     workload_enforced=True, image="img-a"),
                  ev("sbom.generated", T("11-02 11:00"), image="img-a")),
               _e(ev("workload.inventory", T("11-02 11:58"), workload_id="w2",
                     workload_enforced=False, image="img-b")),
               "M2", "1h", (1, 2, 0.5), "M2: a late unenforced workload is folded in"),
    _late_case(_e(ev("workload.inventory", T("11-02 11:50"), workload_id="w1",
                     workload_enforced=True, image="img-a")),
               _e(ev("sbom.generated", T("11-02 11:00"), image="img-a")),
               "M9", "1h", (1, 1, 1.0), "M9: a late SBOM is folded in"),
    _late_case(_e(ev("policy.violation", T("11-02 11:00"), violation_id="v1",
                     violation_status="opened")),
               _e(ev("policy.violation", T("11-02 11:30"), violation_id="v1",
                     violation_status="remediated", remediation_kind="auto")),
               "M3_mean", "1h", (None, 1, 1800.0), "M3: a late remediation is folded in"),
    _late_case(_e(ev("policy.violation", T("11-02 11:00"), violation_id="v1",
                     violation_status="opened")),
               _e(ev("policy.violation", T("11-02 11:30"), violation_id="v1",
                     violation_status="remediated", remediation_kind="auto")),
               "M3_open", "instant", (None, 0, 0.0), "M3_open: a late remediation closes it"),
    _late_case(lambda c: insert_verdicts(c, [
                   {"subject_id": "d1", "subject_time": T("11-02 11:40"),
                    "verdict": "true_positive", "triaged_at": T("11-02 11:45")}]),
               lambda c: insert_verdicts(c, [
                   {"subject_id": "d2", "subject_time": T("11-02 11:50"),
                    "verdict": "false_positive", "triaged_at": T("11-02 12:00:30")}]),
               "M4", "1h", (1, 2, 0.5), "M4: a verdict written after the run is folded in"),
    _late_case(_e(ev("drift.detected", T("11-02 11:10"))),
               _e(ev("drift.detected", T("11-02 11:58"))),
               "M5", "1h", (2, 1 / 168, 336.0), "M5: a late drift event is folded in"),
    _late_case(lambda c: insert_alerts(c, [{"alert_id": "a1", "at": T("11-02 11:50")}]),
               lambda c: insert_alerts(c, [{"alert_id": "a2", "severity": "ticket",
                                            "at": T("11-02 11:58")}]),
               "M7", "1h", (1, 2, 0.5), "M7: a late ticket is folded in"),
    _late_case(_e(ev("agent.heartbeat", T("11-02 11:59"), agent_id="ag1",
                     agent_status="healthy")),
               _e(ev("agent.heartbeat", T("11-02 11:59:30"), agent_id="ag2",
                     agent_status="degraded")),
               "M8", "1h", (1, 2, 0.5), "M8: a late degraded agent is folded in"),
    _late_case(_e(ev("secret.detected", T("11-02 11:10"), secret_fingerprint="fp-1")),
               _e(ev("secret.detected", T("11-02 11:58"), secret_fingerprint="fp-2")),
               "M10", "1h", (2, 1 / 168, 336.0), "M10: a late secret is folded in"),
]


def stored(client, sli: str, window: str, at: datetime) -> tuple | None:
    rows = client.query(
        "SELECT good, total, value FROM sli_values FINAL WHERE sli = {sli:String} "
        "AND window = {window:String} AND dimension = '' AND at = {at:DateTime('UTC')}",
        parameters={"sli": sli, "window": window, "at": at}).result_rows
    assert len(rows) <= 1
    return tuple(rows[0]) if rows else None


@pytest.mark.parametrize("first,late,sli,window,expected", LATE_CASES)
def test_late_events_before_the_watermark_are_folded_into_recomputed_values(
        chdb_client, first, late, sli, window, expected):
    fresh_database(chdb_client)
    first(chdb_client)
    jobs.run_incremental(chdb_client, AT)
    before = stored(chdb_client, sli, window, AT)
    time.sleep(0.01)  # the late rows' ingest time is strictly after the first run's
    late(chdb_client)
    jobs.run_incremental(chdb_client, AT + timedelta(minutes=1))
    assert before is not None and before != exactly(expected)  # the first run did not see it
    assert stored(chdb_client, sli, window, AT) == exactly(expected)


def stored_keys(client, points: list[datetime]) -> set[tuple]:
    return set(client.query(
        "SELECT toString(at), sli, window, dimension, dimension_value FROM sli_values FINAL "
        "WHERE at IN {points:Array(DateTime('UTC'))}", parameters={"points": points}
    ).result_rows)


def test_a_backfill_and_incremental_runs_at_the_same_points_store_the_same_rows(chdb_client):
    fresh_database(chdb_client)
    # team payments' only gate comes a millisecond before the last point
    insert_events(chdb_client, [ev("deploy.gate", T("10-31 23:59:59.999"), deploy_id="g1",
                                   gate_outcome="passed")])
    until = T("11-01 00:00")
    points = [T("10-31 22:00"), T("10-31 23:00"), until]

    jobs.backfill(chdb_client, timedelta(hours=3), until=until, step=timedelta(hours=1))
    backfilled = stored_keys(chdb_client, points)
    chdb_client.command("TRUNCATE TABLE sli_values")
    chdb_client.command("TRUNCATE TABLE sli_watermark")
    for point in points:
        jobs.run_incremental(chdb_client, point, max_catchup=0)
    incremental = stored_keys(chdb_client, points)

    assert sorted(backfilled - incremental) == [] and sorted(incremental - backfilled) == []


# -- duplicates, through the real collector -----------------------------------------------------

def test_an_event_sent_twice_through_the_collector_counts_once(collector):
    from tests.builders.otlp import logs_request, post, wait_rows

    request = logs_request(
        record("policy.decision", T("11-02 11:10"), "dup-d1", {
            "policy.id": "p1", "policy.outcome": "allow", "policy.evaluation.duration": 0.001}),
        record("policy.decision", T("11-02 11:20"), "dup-d2", {
            "policy.id": "p1", "policy.outcome": "error", "policy.evaluation.duration": 0.5}),
        record("deploy.gate", T("11-02 11:30"), "dup-g1", {
            "deploy.id": "deploy-1", "deploy.gate.outcome": "blocked"}),
        record("workload.inventory", T("11-02 11:40"), "dup-w1", {
            "workload.id": "w1", "workload.enforced": True, "artifact.image": "img-a"}),
        record("policy.violation", T("11-02 11:00"), "dup-v1", {
            "policy.id": "p1", "policy.violation.id": "v1",
            "policy.violation.status": "opened"}),
        record("policy.violation", T("11-02 11:30"), "dup-v2", {
            "policy.id": "p1", "policy.violation.id": "v1",
            "policy.violation.status": "remediated", "policy.remediation.kind": "auto"}),
        record("sbom.generated", T("11-02 11:05"), "dup-b1", {"artifact.image": "img-a"}),
        record("drift.detected", T("11-02 11:45"), "dup-r1", {"drift.field": "replicas"}),
        record("secret.detected", T("11-02 11:50"), "dup-s1", {"secret.fingerprint": "fp-1"}),
        record("agent.heartbeat", T("11-02 11:59:30"), "dup-a1", {
            "agent.id": "ag1", "agent.status": "healthy"}),
    )
    body = request.SerializeToString()
    for _ in range(2):  # a client retry: the very same events again
        assert post(collector.http_port, "/v1/logs", body)[0] == 200
    client = collector.pipeline.client
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 2) == 2
    assert wait_rows(collector, "SELECT count() FROM policy_events", 8) == 8

    frame = jobs.compute(client, [AT], windows=["1h"])
    got = {sli: pick(frame, sli, "1h") for sli in
           ["M1", "L_under", "M6", "M2", "M9", "M3_mean", "M5", "M10", "M8"]}
    assert got == {
        "M1": exactly((1, 2, 0.5)),
        "L_under": exactly((1, 2, 0.5)),
        "M6": exactly((1, 1, 1.0)),
        "M2": exactly((1, 1, 1.0)),
        "M9": exactly((1, 1, 1.0)),
        "M3_mean": exactly((None, 1, 1800.0)),
        "M5": exactly((1, 1 / 168, 168.0)),
        "M10": exactly((1, 1 / 168, 168.0)),
        "M8": exactly((1, 1, 1.0)),
    }
