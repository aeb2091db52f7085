"""M3 mean time to remediate, from `policy.violation` lifecycle events.

A violation opens at its first `opened` event (looked up to 90 days before the window) and is
remediated at its first `remediated` event after that. For violations remediated inside the
window, with duration = remediated - opened in seconds:
  M3_mean, M3_p50, M3_p90: mean / median / 90th percentile duration (total = remediations),
  overall, by team, service, policy, environment, cluster and by remediation kind
  (dimension `remediation`: auto / manual).
At the evaluation time, over violations opened and neither remediated nor suppressed by then
(window `instant`): M3_open = their number (in `total`), M3_open_age_mean = mean age in seconds.
An empty window: total 0, value null.
"""

from __future__ import annotations

import polars as pl

from metrics import sources
from metrics.sli.base import (
    INSTANT,
    OUTPUT,
    Context,
    aggregate,
    complete,
    lookback_start,
    shape,
    spans,
    to_long,
)

DIMENSIONS = {"team": "team", "service": "service", "policy": "policy_id",
              "environment": "environment", "cluster": "cluster",
              "remediation": "remediation_kind"}
LOOKBACK_DAYS = 90


def lifecycles(events: pl.DataFrame) -> pl.DataFrame:
    """One row per violation: opened, remediated (or null), closed (remediated/suppressed)."""
    opened = events.filter(pl.col("violation_status") == "opened").group_by("violation_id").agg(
        pl.col("event_time").min().alias("opened_at"),
        *[pl.col(c).first() for c in ("team", "service", "policy_id", "environment",
                                      "cluster")])
    closing = events.filter(pl.col("violation_status").is_in(["remediated", "suppressed"]))
    joined = closing.join(opened.select("violation_id", "opened_at"), on="violation_id")
    after = joined.filter(pl.col("event_time") >= pl.col("opened_at")).sort("event_time")
    remediated = after.filter(pl.col("violation_status") == "remediated").group_by(
        "violation_id").agg(pl.col("event_time").first().alias("remediated_at"),
                            pl.col("remediation_kind").first())
    closed = after.group_by("violation_id").agg(pl.col("event_time").first().alias("closed_at"))
    return opened.join(remediated, on="violation_id", how="left").join(
        closed, on="violation_id", how="left").with_columns(
        ((pl.col("remediated_at") - pl.col("opened_at")).dt.total_milliseconds() / 1000.0)
        .alias("duration"))


def compute(ctx: Context) -> pl.DataFrame:
    end = max(ctx.points)
    events = sources.events(ctx.client, "policy.violation", [
        "violation_id", "violation_status", "remediation_kind", "team", "service", "policy_id",
        "environment", "cluster"], lookback_start(ctx, LOOKBACK_DAYS), end)
    life = lifecycles(events)
    remediated = life.filter(pl.col("remediated_at").is_not_null())
    in_window = spans(ctx).join_where(remediated, pl.col("remediated_at") >= pl.col("start"),
                                      pl.col("remediated_at") < pl.col("at"))
    stats = aggregate(to_long(in_window, DIMENSIONS), [
        pl.col("duration").mean().alias("M3_mean"),
        pl.col("duration").quantile(0.5, "linear").alias("M3_p50"),
        pl.col("duration").quantile(0.9, "linear").alias("M3_p90"),
        pl.len().alias("total")])
    stats = complete(ctx, stats, {"total": 0, "M3_mean": None, "M3_p50": None, "M3_p90": None})
    durations = stats.unpivot(index=["at", "window", "dimension", "dimension_value", "total"],
                              on=["M3_mean", "M3_p50", "M3_p90"], variable_name="sli")
    parts = [shape(durations.with_columns(good=pl.lit(None, pl.Float64)))]

    points = pl.DataFrame({"at": ctx.points}, schema={"at": OUTPUT["at"]})
    still_open = points.join(life, how="cross").filter(
        (pl.col("opened_at") < pl.col("at"))
        & (pl.col("closed_at").is_null() | (pl.col("closed_at") >= pl.col("at")))).with_columns(
        ((pl.col("at") - pl.col("opened_at")).dt.total_milliseconds() / 1000.0).alias("age"),
        window=pl.lit(INSTANT))
    dims = {k: v for k, v in DIMENSIONS.items() if k != "remediation"}
    ages = to_long(still_open, dims).group_by(
        ["at", "window", "dimension", "dimension_value"]).agg(
        pl.len().alias("n"), pl.col("age").mean().alias("age"))
    instant = points.with_columns(window=pl.lit(INSTANT), dimension=pl.lit(""),
                                  dimension_value=pl.lit(""))
    ages = pl.concat([ages, instant.join(ages, on=["at", "window", "dimension",
                                                   "dimension_value"], how="anti")
                      .with_columns(n=pl.lit(0, pl.UInt32), age=pl.lit(None, pl.Float64))],
                     how="diagonal_relaxed")
    base = ages.with_columns(good=pl.lit(None, pl.Float64), total=pl.col("n"))
    parts.append(shape(base.with_columns(sli=pl.lit("M3_open"), value=pl.col("n"))))
    parts.append(shape(base.with_columns(sli=pl.lit("M3_open_age_mean"), value=pl.col("age"))))
    return pl.concat(parts)
