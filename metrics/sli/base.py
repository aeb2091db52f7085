"""What every SLI family shares: the output shape, ratios, and per-dimension grouping.

Every family returns rows of `OUTPUT`: one per (evaluation time, SLI id, window, dimension,
dimension value). For a ratio SLI `good` is its numerator and `total` its denominator (for
"bad" ratios such as the deploy block rate the numerator is the bad count, as its name says);
`value` is good / total, and null when total is 0: an empty window has no value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
from clickhouse_connect.driver.client import Client

from metrics.windows import pairs

OUTPUT = {"at": pl.Datetime("us", "UTC"), "sli": pl.String, "window": pl.String,
          "dimension": pl.String, "dimension_value": pl.String, "good": pl.Float64,
          "total": pl.Float64, "value": pl.Float64}
INSTANT = "instant"  # the window of point-in-time values (age of open violations)
WEEK_SECONDS = 7 * 86400


@dataclass
class Context:
    """One batch computation: where to read, which points and windows, and settings."""

    client: Client
    points: list[datetime]
    windows: list[str]
    latency_threshold: float = 0.1
    cache: dict = field(default_factory=dict)


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=OUTPUT)


def shape(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast to OUTPUT's columns and types (extra columns dropped)."""
    return frame.select([pl.col(c).cast(t) for c, t in OUTPUT.items()])


def ratio(frame: pl.DataFrame, sli: str, good: pl.Expr, total: pl.Expr) -> pl.DataFrame:
    """Rows of a ratio SLI from a frame with at, window, dimension, dimension_value."""
    return shape(frame.with_columns(sli=pl.lit(sli), good=good.cast(pl.Float64),
                                    total=total.cast(pl.Float64)).with_columns(
        value=pl.when(pl.col("total") > 0).then(pl.col("good") / pl.col("total"))))


def window_seconds(at: datetime, start: datetime) -> float:
    return (at - start).total_seconds()


def lookback_start(ctx: Context, extra_days: int = 0) -> datetime:
    from datetime import timedelta

    from metrics.windows import required_times

    return min(required_times(ctx.points, ctx.windows)) - timedelta(days=extra_days)


def spans(ctx: Context) -> pl.DataFrame:
    """Every (point, window) of the run with its start: at, window, start."""
    if "spans" not in ctx.cache:
        ctx.cache["spans"] = pairs(ctx.points, ctx.windows)
    return ctx.cache["spans"]


def to_long(rows: pl.DataFrame, dimensions: dict[str, str]) -> pl.DataFrame:
    """Each row once for the overall value (dimension '') and once per dimension column."""
    parts = [rows.with_columns(dimension=pl.lit(""), dimension_value=pl.lit(""))]
    parts += [rows.with_columns(dimension=pl.lit(name),
                                dimension_value=pl.col(column).cast(pl.String))
              for name, column in dimensions.items()]
    return pl.concat(parts)


def latest_in_windows(ctx: Context, rows: pl.DataFrame, entity: str,
                      dimensions: dict[str, str]) -> pl.DataFrame:
    """Per (point, window, dimension value, entity): the entity's latest row with that
    dimension value before the point, kept only when it lies inside the window [start, at).
    An entity is "in" a window exactly when that latest row is not older than `start`, so one
    as-of join serves every window. Returns long rows (see `to_long`)."""
    long_rows = to_long(rows, dimensions)
    group = [entity, "dimension", "dimension_value"]
    points = pl.DataFrame({"at": ctx.points}, schema={"at": OUTPUT["at"]})
    grid = long_rows.select(group).unique().join(points, how="cross").sort("at")
    latest = grid.join_asof(long_rows.sort("event_time"), left_on="at", right_on="event_time",
                            by=group, strategy="backward", allow_exact_matches=False,
                            check_sortedness=False)
    latest = latest.filter(pl.col("event_time").is_not_null())
    return latest.join(spans(ctx), on="at").filter(pl.col("event_time") >= pl.col("start"))


def aggregate(long_rows: pl.DataFrame, aggregations: list[pl.Expr]) -> pl.DataFrame:
    return long_rows.group_by(["at", "window", "dimension", "dimension_value"]).agg(aggregations)


def complete(ctx: Context, frame: pl.DataFrame, defaults: dict[str, object]) -> pl.DataFrame:
    """Add the overall row of every (point, window) that has none (an empty window), with
    `defaults` (e.g. good 0, total 0) so its value comes out null."""
    overall = spans(ctx).select("at", "window").with_columns(
        dimension=pl.lit(""), dimension_value=pl.lit(""))
    present = frame.select("at", "window", "dimension", "dimension_value") if frame.height \
        else overall.clear()
    missing = overall.join(present, on=["at", "window", "dimension", "dimension_value"],
                           how="anti").with_columns(
        **{k: pl.lit(v) for k, v in defaults.items()})
    return pl.concat([frame, missing], how="diagonal_relaxed") if frame.height else missing
