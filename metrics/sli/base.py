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


def per_dimension(frame: pl.DataFrame, dimensions: dict[str, str],
                  aggregations: list[pl.Expr]) -> pl.DataFrame:
    """`aggregations` overall ('' dimension) and per value of each dimension column."""
    parts = [frame.group_by(pl.lit(1).alias("_")).agg(aggregations).drop("_").with_columns(
        dimension=pl.lit(""), dimension_value=pl.lit(""))] if frame.height else []
    for name, column in dimensions.items():
        if frame.height:
            parts.append(frame.group_by(column).agg(aggregations).with_columns(
                dimension=pl.lit(name),
                dimension_value=pl.col(column).cast(pl.String)).drop(column))
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts, how="diagonal_relaxed")


def window_seconds(at: datetime, start: datetime) -> float:
    return (at - start).total_seconds()


def windowed(ctx: Context, frame: pl.DataFrame, compute_one) -> pl.DataFrame:
    """Apply `compute_one(rows, at, start)` to the rows with event_time in [start, at) for
    every (point, window); it returns per-dimension rows (dimension, dimension_value, good,
    total, value, and optionally sli). `frame` must be sorted by event_time."""
    from metrics.windows import window_start

    times = frame.get_column("event_time") if frame.height else None
    parts = []
    for at in ctx.points:
        for window in ctx.windows:
            start = window_start(at, window)
            if times is not None:
                lo = times.search_sorted(start, side="left")
                hi = times.search_sorted(at, side="left")
                rows = frame.slice(lo, hi - lo)
            else:
                rows = frame
            result = compute_one(rows, at, start)
            if result.height:
                parts.append(result.with_columns(at=pl.lit(at).cast(OUTPUT["at"]),
                                                 window=pl.lit(window)))
    return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()


def lookback_start(ctx: Context, extra_days: int = 0) -> datetime:
    from datetime import timedelta

    from metrics.windows import required_times

    return min(required_times(ctx.points, ctx.windows)) - timedelta(days=extra_days)


def empty_overall(*slis: str) -> pl.DataFrame:
    """The rows of an empty window: overall, total 0 (the value becomes null)."""
    return pl.DataFrame({"sli": list(slis), "dimension": [""] * len(slis),
                         "dimension_value": [""] * len(slis), "good": [0.0] * len(slis),
                         "total": [0.0] * len(slis)})
