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

import numpy as np
import polars as pl

from metrics import sources
from metrics.sli.base import (
    Breakdown,
    Cells,
    Context,
    breakdowns,
    by_sli,
    epoch_us,
    lookback_start,
    shape,
    window_rows,
)
from metrics.sli.samples import SortedSamples, WindowSamples
from schemas import slis

DIMENSIONS = slis.family_dimensions("remediation")  # name -> column (schemas/slis.py)
LOOKBACK_DAYS = 90
MS = 1000.0  # durations are whole milliseconds (event times are); the SLIs are in seconds
PER_MS = 1 / MS  # Polars divides a column by MS as a product with this: the same bits


def lifecycles(events: pl.DataFrame) -> pl.DataFrame:
    """One row per violation: opened, remediated (or null), closed (remediated/suppressed),
    duration_ms (remediated - opened, or null)."""
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
        (pl.col("remediated_at") - pl.col("opened_at")).dt.total_milliseconds()
        .alias("duration_ms"))


def compute(ctx: Context) -> pl.DataFrame:
    events = sources.events(ctx.client, "policy.violation", [
        "violation_id", "violation_status", "remediation_kind", "team", "service", "policy_id",
        "environment", "cluster"], lookback_start(ctx, LOOKBACK_DAYS), max(ctx.points))
    life = lifecycles(events)
    dimensions = breakdowns(life, DIMENSIONS)
    by_opening = [b for b in dimensions if b.dimension != "remediation"]  # open: no kind yet
    return by_sli([*durations(ctx, life, dimensions), *still_open(ctx, life, by_opening)])


def durations(ctx: Context, life: pl.DataFrame, dimensions: list[Breakdown]
              ) -> list[pl.DataFrame]:
    """M3_mean, M3_p50, M3_p90 of every (point, window, value): over the violations remediated
    in the window, each window's durations being a slice of them sorted by remediation time
    (`samples.WindowSamples`); mean = exact sum / count, quantiles exact."""
    done = life.get_column("remediated_at").is_not_null().to_numpy()
    times = epoch_us(life.get_column("remediated_at").filter(done))
    millis = life.get_column("duration_ms").filter(done).to_numpy()
    cells = []
    for breakdown in dimensions:
        windows = WindowSamples(ctx, breakdown.select(done), times, millis)
        n = windows.count
        mean = np.divide(windows.sum() / MS, n, out=np.full(n.size, np.nan), where=n > 0)
        p50, p90 = windows.quantiles([0.5, 0.9], PER_MS)
        cells.append(Cells(breakdown, windows.point, windows.window, windows.code, {
            "total": n, "M3_mean": mean, "M3_p50": p50, "M3_p90": p90}))
    return per_sli(window_rows(ctx, cells), ["M3_mean", "M3_p50", "M3_p90"])


def still_open(ctx: Context, life: pl.DataFrame, dimensions: list[Breakdown]
               ) -> list[pl.DataFrame]:
    """M3_open and M3_open_age_mean at every point, per value. With O(t) the violations opened
    before t and C(t) those closed (remediated or suppressed) before t, C(t) is within O(t)
    (a violation closes after it opens), so the open ones at `at` number
    n = |O(at)| - |C(at)|, and their ages sum to n * at - (sum of opened_at over O(at) minus
    that over C(at)): counts and prefix sums over opening and closing times sorted once."""
    at, _ = ctx.interval_times
    bounds = np.unique(at)
    bound = np.searchsorted(bounds, at)
    closed = life.get_column("closed_at").is_not_null().to_numpy()
    opened_at = epoch_us(life.get_column("opened_at"))
    origin = int(opened_at.min()) // 1000 if opened_at.size else 0
    opened_ms = opened_at // 1000 - origin  # small enough for exact integer sums
    closed_at = epoch_us(life.get_column("closed_at").filter(closed))
    cells = []
    for breakdown in dimensions:
        opening = SortedSamples(breakdown.codes, len(breakdown), opened_at, bounds)
        closing = SortedSamples(breakdown.codes[closed], len(breakdown), closed_at, bounds)
        point, code = (a.ravel() for a in np.indices((len(at), len(breakdown))))
        o_lo, o_hi = opening.first[code], opening.before(code, bound[point])
        c_lo, c_hi = closing.first[code], closing.before(code, bound[point])
        n = (o_hi - o_lo) - (c_hi - c_lo)
        o_sum, c_sum = opening.prefix_sums(opened_ms), closing.prefix_sums(opened_ms[closed])
        opened_sum = (o_sum[o_hi] - o_sum[o_lo]) - (c_sum[c_hi] - c_sum[c_lo])
        age = n * (at[point] // 1000 - origin) - opened_sum  # milliseconds
        mean_age = np.divide(age / MS, n, out=np.full(n.size, np.nan), where=n > 0)
        keep = n > 0 if breakdown.dimension else np.ones(n.size, dtype=bool)
        cells.append(Cells(breakdown, point[keep], None, code[keep], {
            "total": n[keep], "M3_open": n[keep].astype(np.float64),
            "M3_open_age_mean": mean_age[keep]}))
    return per_sli(window_rows(ctx, cells), ["M3_open", "M3_open_age_mean"])


def per_sli(rows: pl.DataFrame, slis: list[str]) -> list[pl.DataFrame]:
    """`rows` (at, window, dimension, dimension_value, total, one column per SLI id) once per
    SLI id of `slis`, with its column as the value, and no `good`."""
    return [shape(rows.with_columns(sli=pl.lit(sli, pl.Categorical),
                                    good=pl.lit(None, pl.Float64), value=pl.col(sli)))
            for sli in slis]
