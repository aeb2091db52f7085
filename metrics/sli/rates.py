"""Event-rate SLIs: M5 drift detection rate and M10 secrets-in-repo incidents.

M5   drift.detected events in the window, per week: value = events x 604800 / window seconds
     (good = events, total = window length in weeks). M5_trend = this window's weekly rate
     minus the rate of the window just before it (value), so a rising trend is positive.
M10  distinct `secret.fingerprint`s of `secret.detected` events in the window, per week
     (good = distinct fingerprints, total = window length in weeks).
Overall, by team, service, environment, cluster. An empty window: 0 events give value 0 for a
rate (a week with no drift has a rate of 0/week), except a zero-length window (a calendar month
at midnight of the 1st), which is null.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from metrics import sources
from metrics.sli.base import (
    WEEK_SECONDS,
    Context,
    empty,
    empty_overall,
    lookback_start,
    per_dimension,
    ratio,
    shape,
    windowed,
    window_seconds,
)
from metrics.windows import WINDOWS

DIMENSIONS = {"team": "team", "service": "service", "environment": "environment",
              "cluster": "cluster"}


def _rates(ctx: Context, kind: str, sli: str, count: pl.Expr, columns: list[str]
           ) -> pl.DataFrame:
    longest = max((WINDOWS[w] for w in ctx.windows if WINDOWS[w] is not None), default=None)
    start = lookback_start(ctx) - (longest or (max(ctx.points) - lookback_start(ctx)))
    rows = sources.events(ctx.client, kind, [*columns, *DIMENSIONS.values()], start,
                          max(ctx.points))

    def one(part: pl.DataFrame, at: datetime, begin: datetime) -> pl.DataFrame:
        weeks = window_seconds(at, begin) / WEEK_SECONDS
        if not part.height:
            return empty_overall(sli).with_columns(total=pl.lit(weeks))
        return per_dimension(part, DIMENSIONS, [count.alias("good")]).with_columns(
            total=pl.lit(weeks), sli=pl.lit(sli))

    frame = windowed(ctx, rows, one)
    if not frame.height:
        return empty()
    result = ratio(frame, sli, pl.col("good"), pl.col("total"))
    if sli != "M5":
        return result
    trend = _trend(ctx, rows, one)
    return pl.concat([result, trend])


def _start(at: datetime, window: str) -> datetime:
    from metrics.windows import window_start

    return window_start(at, window)


def _trend(ctx: Context, rows: pl.DataFrame, one) -> pl.DataFrame:
    parts = []
    for at in ctx.points:
        for window in ctx.windows:
            begin = _start(at, window)
            length = at - begin
            if not length:
                continue
            current = one(_slice(rows, begin, at), at, begin)
            before = one(_slice(rows, begin - length, begin), begin, begin - length)
            merged = current.join(before, on=["dimension", "dimension_value"], how="full",
                                  suffix="_before", coalesce=True)
            weeks = length.total_seconds() / WEEK_SECONDS
            parts.append(merged.with_columns(
                value=(pl.col("good").fill_null(0) - pl.col("good_before").fill_null(0)) / weeks,
                good=pl.lit(None, pl.Float64), total=pl.lit(weeks), sli=pl.lit("M5_trend"),
                at=pl.lit(at), window=pl.lit(window)))
    return shape(pl.concat(parts, how="diagonal_relaxed")) if parts else empty()


def _slice(rows: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    if not rows.height:
        return rows
    times = rows.get_column("event_time")
    lo, hi = times.search_sorted(start, side="left"), times.search_sorted(end, side="left")
    return rows.slice(lo, hi - lo)


def compute(ctx: Context) -> pl.DataFrame:
    drift = _rates(ctx, "drift.detected", "M5", pl.len(), [])
    secrets = _rates(ctx, "secret.detected", "M10", pl.col("secret_fingerprint").n_unique(),
                     ["secret_fingerprint"])
    return pl.concat([drift, secrets])
