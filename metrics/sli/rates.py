"""Event-rate SLIs: M5 drift detection rate and M10 secrets-in-repo incidents.

M5   drift.detected events in the window, per week: value = events x 604800 / window seconds
     (good = events, total = window length in weeks). M5_trend = this window's weekly rate
     minus the weekly rate of the window of the same length just before it (in `value`);
     rising drift is positive.
M10  distinct `secret.fingerprint`s of `secret.detected` events in the window, per week
     (good = distinct fingerprints, total = window length in weeks).
Overall, by team, service, environment, cluster. A window with no events has the rate 0/week
(a week without drift is a fact, not a gap); a zero-length window (a calendar month at 00:00
on the 1st) has no value.
"""

from __future__ import annotations

import polars as pl

from metrics import sources
from metrics.sli.base import (
    WEEK_SECONDS,
    Context,
    by_sli,
    complete,
    lookback_start,
    ratio,
    shape,
    to_long,
    window_rows,
)
from metrics.sli.latest import latest_reports, window_counts
from metrics.window_sums import event_window_sums
from schemas import slis

DIMENSIONS = slis.family_dimensions("rates")  # name -> column (schemas/slis.py)
KEYS = ["dimension", "dimension_value"]


def _weeks(frame: pl.DataFrame) -> pl.Expr:
    return (pl.col("at") - pl.col("start")).dt.total_seconds() / WEEK_SECONDS


def _with_weeks(ctx: Context, frame: pl.DataFrame) -> pl.DataFrame:
    windows = ctx.intervals.with_columns(pl.col("window").cast(frame.schema["window"]))
    return frame.join(windows, on=["at", "window"], maintain_order="left").with_columns(
        total=_weeks(frame))


def drift(ctx: Context) -> list[pl.DataFrame]:
    current = ctx.intervals
    # the window of the same length just before each window: it ends where that one starts
    previous = current.with_columns(origin=pl.col("at"), at=pl.col("start"),
                                    start=pl.col("start") - (pl.col("at") - pl.col("start")))
    rows = sources.events(ctx.client, "drift.detected", list(DIMENSIONS.values()),
                          previous.get_column("start").min(), max(ctx.points))
    long_rows = to_long(rows.with_columns(n=pl.lit(1, pl.Int64)), DIMENSIONS)
    now = event_window_sums(long_rows, current, KEYS, ["n"]).rename({"n": "good"})
    before = event_window_sums(long_rows, previous, KEYS, ["n"]).drop("at").rename(
        {"origin": "at", "n": "good_before"})
    rate = _with_weeks(ctx, complete(ctx, now, {"good": 0}))
    m5 = ratio(rate, "M5", pl.col("good"), pl.col("total"))
    trend = rate.join(before, on=["at", "window", *KEYS], how="left",
                      maintain_order="left").with_columns(
        value=pl.when(pl.col("total") > 0).then(
            (pl.col("good") - pl.col("good_before").fill_null(0)) / pl.col("total")),
        sli=pl.lit("M5_trend", pl.Categorical), good=pl.lit(None, pl.Float64))
    return [m5, shape(trend)]


def secrets(ctx: Context) -> pl.DataFrame:
    rows = sources.report_histories(ctx.client, "secret.detected", "secret_fingerprint",
                                    list(DIMENSIONS.values()), [], lookback_start(ctx),
                                    max(ctx.points), ctx.points, memo=ctx.memo)
    counts = window_rows(ctx, [window_counts(ctx, latest, {}) for latest in
                               latest_reports(ctx, rows, "secret_fingerprint", DIMENSIONS)])
    frame = _with_weeks(ctx, counts.rename({"n": "good"}))
    return ratio(frame, "M10", pl.col("good"), pl.col("total"))


def compute(ctx: Context) -> pl.DataFrame:
    return by_sli([*drift(ctx), secrets(ctx)])
