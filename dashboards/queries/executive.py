"""The Executive page's reads: headline SLIs now and a week earlier (`sli_values`, the numbers
`policyscope sli show` prints), coverage by team, the monthly drift trend, and violations by
severity -- open ones over 30 days and time to remediate -- from the violation lifecycle the
M3 family defines (`metrics.sli.remediation.lifecycles`), because the catalogue breaks M3 down
by team, service, policy, environment, cluster and remediation kind, not by severity. That
lifecycle is computed and counted inside ClickHouse (a few rows per severity travel); the
tests check it against the definition counted plainly.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
from clickhouse_connect.driver.client import Client

from dashboards.queries import TIME, dimension_filter, frame, time_range
from metrics import read
from metrics.sli.remediation import LOOKBACK_DAYS
from metrics.windows import floor_minute
from schemas.events import EVENTS
from schemas.tables import SLI_VALUES

HIGH = ("critical", "high")
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info", "")
WEEK = timedelta(days=7)
HEADLINE_SLIS = ("M2", "M3_mean", "M5", "M6")


def headline(client: Client, window: str, dimension: str, value: str
             ) -> dict[str, dict[str, float | None]]:
    """sli -> {value, good, total, at, week_ago}: each of `HEADLINE_SLIS` over `window` at the
    latest evaluation stored for it (as `read.sli_values` takes it), for one dimension value
    ('' , '' overall), and its value at the latest evaluation at least a week before that one
    (within a day; else None). One read for all four."""
    rows = frame(client, f"""
        SELECT v.sli, v.at, v.good, v.total, v.value, v.at = l.latest AS is_latest
        FROM {SLI_VALUES} AS v INNER JOIN (
            SELECT sli, max(at) AS latest FROM {SLI_VALUES}
            WHERE sli IN {{slis:Array(String)}} AND window = {{window:String}}
              AND dimension = {{dimension:String}} GROUP BY sli) AS l ON v.sli = l.sli
        WHERE v.sli IN {{slis:Array(String)}} AND v.window = {{window:String}}
          AND v.dimension = {{dimension:String}} AND v.dimension_value = {{value:String}}
          AND (v.at = l.latest OR (v.at <= l.latest - INTERVAL 7 DAY
                                   AND v.at > l.latest - INTERVAL 8 DAY))
        ORDER BY v.sli, v.at, v.computed_at DESC
        LIMIT 1 BY v.sli, v.at  -- each point's latest computation, as FINAL keeps it""", {"slis": list(HEADLINE_SLIS), "window": window,
                                  "dimension": dimension, "value": value},
                 ["sli", "at", "good", "total", "value", "is_latest"])
    out: dict[str, dict] = {}
    for sli in HEADLINE_SLIS:
        out[sli] = {"value": None, "good": None, "total": None, "at": None, "week_ago": None}
        mine = rows[rows["sli"] == sli]
        now = mine[mine["is_latest"].astype(bool)]
        if now.empty:
            continue
        row = now.iloc[-1]
        out[sli].update(value=_number(row["value"]), good=_number(row["good"]),
                        total=_number(row["total"]), at=row["at"])
        then = mine[~mine["is_latest"].astype(bool)]
        out[sli]["week_ago"] = None if then.empty else _number(then["value"].iloc[-1])
    return out


def _number(v) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def coverage_by_team(client: Client, window: str) -> pd.DataFrame:
    """team, enforced (workloads), workloads, coverage: M2 by team at the latest evaluation."""
    rows = read.sli_values(client, sli="M2", window=window, by="team")
    return pd.DataFrame({
        "team": rows.get_column("dimension_value").cast(pl.String).to_list(),
        "enforced": rows.get_column("good").to_list(),
        "workloads": rows.get_column("total").to_list(),
        "coverage": rows.get_column("value").to_list()},
        columns=["team", "enforced", "workloads", "coverage"])


def drift_by_month(client: Client, dimension: str, value: str, since: datetime
                   ) -> pd.DataFrame:
    """month, drift_events: M5's count over the calendar month (window `month`) at the last
    evaluation stored inside each month since `since` (its latest computation)."""
    return frame(client, f"""
        SELECT toStartOfMonth(at) AS month, argMax(good, (at, computed_at)) AS drift_events
        FROM {SLI_VALUES}
        WHERE sli = 'M5' AND window = 'month' AND dimension = {{dimension:String}}
          AND dimension_value = {{value:String}} AND at >= {{since:DateTime('UTC')}}
          AND good IS NOT NULL
        GROUP BY month ORDER BY month""", {"dimension": dimension, "value": value,
                                           "since": since}, ["month", "drift_events"])


# M3's lifecycle of a violation (`metrics.sli.remediation.lifecycles` is the definition), in
# ClickHouse: per violation with an `opened` event, opened = its first; of the closing events
# (remediated, suppressed) at or after it, closed = the first, remediated = the first
# remediation; severity = the latest non-empty one its events gave ('' when none).
_LIFECYCLES = f"""
    SELECT severity, opened_at, closed_at, remediated_at,
           dateDiff('millisecond', opened_at, remediated_at) AS duration_ms
    FROM (SELECT severity, opened_at,
                 arrayFilter(t -> t >= opened_at, closings) AS closing,
                 arrayFilter(t -> t >= opened_at, remediations) AS remediation,
                 if(empty(closing), NULL, arrayMin(closing)) AS closed_at,
                 if(empty(remediation), NULL, arrayMin(remediation)) AS remediated_at
          FROM (SELECT minIf(event_time, violation_status = 'opened') AS opened_at,
                       countIf(violation_status = 'opened') AS opens,
                       groupArrayIf(event_time, violation_status IN ('remediated', 'suppressed'))
                           AS closings,
                       groupArrayIf(event_time, violation_status = 'remediated') AS remediations,
                       argMaxIf(severity, event_time, severity != '') AS severity
                FROM {EVENTS.name}
                WHERE event_kind = 'policy.violation' AND {{times}} {{filters}}
                GROUP BY violation_id HAVING opens > 0))"""

# The page's numbers per severity from the lifecycles, in one pass: the violations open at each
# point (opened before it, not closed before it: M3_open's rule), and of those remediated in
# [span_start, end) the count, mean and median (R-7, as Polars' median) of the durations, and of
# those remediated since `weekly_from` the durations' sum and count per week (from Monday).
_BY_SEVERITY = f"""
    SELECT toString(severity),
           sumForEach(arrayMap(p -> toUInt64(opened_at < p AND
                                             (closed_at IS NULL OR closed_at >= p)),
                               {{{{points:Array({TIME})}}}})) AS open,
           countIf(recent) AS remediated,
           avgIf(duration_ms, recent) / 1000 AS mean_s,
           quantileExactInclusiveIf(0.5)(duration_ms, recent) / 1000 AS p50_s,
           sumMapIf([week], [assumeNotNull(duration_ms)], in_weeks) AS week_ms,
           sumMapIf([week], [toUInt64(1)], in_weeks) AS week_n
    FROM (SELECT *, remediated_at >= {{{{span_start:{TIME}}}}}
                    AND remediated_at < {{{{end:{TIME}}}}} AS recent,
                 remediated_at >= {{{{weekly_from:{TIME}}}}} AS in_weeks,
                 toMonday(remediated_at) AS week
          FROM ({_LIFECYCLES}))
    GROUP BY severity"""


def remediation(client: Client, end: datetime, span: timedelta, where: dict[str, str],
                days: int = 30) -> dict[str, pd.DataFrame]:
    """The page's violation numbers, from M3's lifecycles of the violations `where` selects
    over the events before `end` (opened up to LOOKBACK_DAYS before max(`span`, `days`), as
    M3 looks back), in one read:

    - `open_high`: at, open -- the high and critical violations open at `end` and at each of
      the `days` days before it (the same time of day);
    - `table`: severity, remediated, mean_s, p50_s over the violations remediated in
      [end - span, end), each duration remediated - opened, most severe first;
    - `weekly`: week, severity, mean_s over those remediated in the last 30 days.
    An empty severity reads '(none)'."""
    counted = max(span, timedelta(days=days))
    times, params = time_range(end - counted - timedelta(days=LOOKBACK_DAYS), end)
    filters, more = dimension_filter(where)
    points = [floor_minute(end) - timedelta(days=k) for k in range(days, -1, -1)]
    sql = _BY_SEVERITY.format(times=times, filters=filters)
    rows = client.query(sql, parameters={
        **params, **more, "points": points, "span_start": end - span,
        "weekly_from": end - timedelta(days=30)}).result_rows
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    rows.sort(key=lambda r: (rank.get(r[0], len(rank)), r[0]))
    open_now = np.zeros(len(points), dtype=np.int64)
    for severity, open_counts, *_ in rows:
        if severity in HIGH:
            open_now += np.array(open_counts, dtype=np.int64)
    named = [(severity or "(none)", *rest) for severity, *rest in rows]
    table = pd.DataFrame([(s, n, mean, p50) for s, _, n, mean, p50, _, _ in named if n],
                         columns=["severity", "remediated", "mean_s", "p50_s"])
    weeks = sorted((week, severity, total_ms / n / 1000)  # (weeks, values) of each sumMap
                   for severity, *_, (weeks_ms, ms), (_, counts) in named
                   for week, total_ms, n in zip(weeks_ms, ms, counts))
    weekly = pd.DataFrame(
        [(pd.Timestamp(week, tz="UTC"), s, mean) for week, s, mean in weeks],
        columns=["week", "severity", "mean_s"])
    return {"open_high": pd.DataFrame({"at": points, "open": [int(c) for c in open_now]}),
            "table": table, "weekly": weekly}
