"""The Executive page's reads: headline SLIs now and a week earlier (`sli_values`, the numbers
`policyscope sli show` prints), coverage by team, the monthly drift trend, and violations by
severity -- open ones over 30 days and time to remediate -- from the violation lifecycle the
M3 family defines (`metrics.sli.remediation.lifecycles`), because the catalogue breaks M3 down
by team, service, policy, environment, cluster and remediation kind, not by severity.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
from clickhouse_connect.driver.client import Client

from dashboards.queries import frame
from metrics import read, sources
from metrics.sli.remediation import LOOKBACK_DAYS, lifecycles
from metrics.windows import floor_minute
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


def violations(client: Client, end: datetime, span: timedelta, where: dict[str, str]
               ) -> pl.DataFrame:
    """One row per violation that can be open or remediated within `span` before `end`
    (opened up to LOOKBACK_DAYS before, as M3 looks back): the M3 lifecycle (`opened_at`,
    `remediated_at`, `closed_at`, `duration_ms`, `remediation_kind`) and `severity` (the
    latest a violation's events gave), of the violations `where` selects."""
    columns = ["violation_id", "violation_status", "remediation_kind", "team", "service",
               "policy_id", "environment", "cluster", "severity"]
    events = sources.events(client, "policy.violation", columns,
                            end - span - timedelta(days=LOOKBACK_DAYS), end)
    for name, wanted in where.items():
        events = events.filter(pl.col(name) == wanted)
    life = lifecycles(events)
    severity = events.filter(pl.col("severity") != "").group_by("violation_id").agg(
        pl.col("severity").sort_by("event_time").last())
    return life.join(severity, on="violation_id", how="left").with_columns(
        pl.col("severity").fill_null(""))


def remediation(client: Client, end: datetime, span: timedelta, where: dict[str, str],
                days: int = 30) -> dict[str, pd.DataFrame]:
    """The page's violation numbers from one read of the lifecycles (`violations` over
    max(`span`, `days`)): `open_high` (`_open_high`) and `table` / `weekly`
    (`_mttr_by_severity`)."""
    life = violations(client, end, max(span, timedelta(days=days)), where)
    table, weekly = _mttr_by_severity(life, end, span)
    return {"open_high": _open_high(life, end, days), "table": table, "weekly": weekly}


def _open_high(life: pl.DataFrame, end: datetime, days: int) -> pd.DataFrame:
    """day, open: the high and critical violations open (opened before the point, neither
    remediated nor suppressed before it -- M3_open's rule) at `end` and at each of the `days`
    days before it (the same time of day)."""
    high = life.filter(pl.col("severity").is_in(HIGH))
    points = [floor_minute(end) - timedelta(days=k) for k in range(days, -1, -1)]
    at = np.array([p.replace(tzinfo=None) for p in points], dtype="datetime64[ms]")
    opened = high.get_column("opened_at").dt.replace_time_zone(None).to_numpy() \
        .astype("datetime64[ms]")
    closed = high.get_column("closed_at").dt.replace_time_zone(None).to_numpy() \
        .astype("datetime64[ms]")  # NaT: still open
    still = np.isnat(closed)[:, None] | (closed[:, None] >= at[None, :])
    counts = ((opened[:, None] < at[None, :]) & still).sum(axis=0)
    return pd.DataFrame({"at": points, "open": [int(c) for c in counts]})


def _mttr_by_severity(life: pl.DataFrame, end: datetime, span: timedelta
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per severity over [end - span, end): remediated, mean_s, p50_s; per week of the last
    30 days and severity: week, severity, mean_s) over violations remediated then, each
    remediation's duration as M3 counts it (remediated - opened)."""
    life = life.filter(pl.col("remediated_at").is_not_null()).with_columns(
        (pl.col("duration_ms") / 1000).alias("seconds"))
    start = end - span
    recent = life.filter((pl.col("remediated_at") >= start) & (pl.col("remediated_at") < end))
    table = recent.group_by("severity").agg(
        pl.len().alias("remediated"), pl.col("seconds").mean().alias("mean_s"),
        pl.col("seconds").median().alias("p50_s"))
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    table = table.with_columns(pl.col("severity").replace_strict(
        rank, default=len(rank)).alias("_rank")).sort("_rank").drop("_rank").with_columns(
        pl.col("severity").replace("", "(none)"))
    weekly = life.filter(pl.col("remediated_at") >= end - timedelta(days=30)).with_columns(
        pl.col("remediated_at").dt.truncate("1w").alias("week")).group_by(
        "week", "severity").agg(pl.col("seconds").mean().alias("mean_s")).sort(
        "week", "severity").with_columns(pl.col("severity").replace("", "(none)"))
    return table.to_pandas(), weekly.select("week", "severity", "mean_s").to_pandas()
