"""The Executive page's reads: headline SLIs now and a week earlier (`sli_values`, the numbers
`policyscope sli show` prints), coverage by team, the monthly drift trend, and violations by
severity -- open ones over 30 days and time to remediate -- from the violation lifecycle the
M3 family defines (`metrics.sli.remediation.lifecycles`), because the catalogue breaks M3 down
by team, service, policy, environment, cluster and remediation kind, not by severity.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
    latest evaluation stored, for one dimension value ('' , '' overall), and its value at the
    latest evaluation at least a week before that one (within a day; else None)."""
    out: dict[str, dict] = {}
    for sli in HEADLINE_SLIS:
        rows = read.sli_values(client, sli=sli, window=window, by=dimension or None).filter(
            pl.col("dimension_value") == value)
        now = rows.row(0, named=True) if rows.height else None
        out[sli] = {"value": None, "good": None, "total": None, "at": None, "week_ago": None}
        if now is None:
            continue
        out[sli].update(value=now["value"], good=now["good"], total=now["total"], at=now["at"])
        then = frame(client, f"""
            SELECT value FROM {SLI_VALUES} FINAL
            WHERE sli = {{sli:String}} AND window = {{window:String}}
              AND dimension = {{dimension:String}} AND dimension_value = {{value:String}}
              AND at <= {{then:DateTime('UTC')}} AND at > {{then:DateTime('UTC')}} - INTERVAL 1 DAY
            ORDER BY at DESC LIMIT 1""", {"sli": sli, "window": window, "dimension": dimension,
                                          "value": value, "then": now["at"] - WEEK}, ["value"])
        out[sli]["week_ago"] = None if then.empty or pd.isna(then["value"][0]) \
            else float(then["value"][0])
    return out


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
    evaluation stored inside each month since `since`."""
    return frame(client, f"""
        SELECT toStartOfMonth(at) AS month, argMax(good, at) AS drift_events
        FROM {SLI_VALUES} FINAL
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


def open_high(client: Client, end: datetime, where: dict[str, str], days: int = 30
              ) -> pd.DataFrame:
    """day, open: the high and critical violations open (opened before the point, neither
    remediated nor suppressed before it -- M3_open's rule) at `end` and at each of the `days`
    days before it (the same time of day)."""
    life = violations(client, end, timedelta(days=days), where).filter(
        pl.col("severity").is_in(HIGH))
    points = [floor_minute(end) - timedelta(days=k) for k in range(days, -1, -1)]
    opened = life.get_column("opened_at").to_list()
    closed = life.get_column("closed_at").to_list()
    counts = [sum(1 for o, c in zip(opened, closed) if o < at and (c is None or c >= at))
              for at in points]
    return pd.DataFrame({"at": points, "open": counts})


def mttr_by_severity(client: Client, end: datetime, span: timedelta, where: dict[str, str]
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per severity over [end - span, end): remediated, mean_s, p50_s; per week of the last
    30 days and severity: week, severity, mean_s) over violations remediated then, each
    remediation's duration as M3 counts it (remediated - opened)."""
    horizon = max(span, timedelta(days=30))
    life = violations(client, end, horizon, where).filter(
        pl.col("remediated_at").is_not_null()).with_columns(
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
