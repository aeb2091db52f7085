"""M1 policy-evaluation success rate and L decision latency, from the decision rollups.

M1  good = decisions whose outcome is not `error`, total = all decisions (every attempt counts:
    a retried evaluation that failed once is one error). value = good / total.
L   from the latency histogram of decisions that reported a latency:
    L_p50, L_p95, L_p99: the percentile in seconds (total = decisions with a latency);
    L_under: good = decisions at or under `latency_threshold` seconds, total as above.
Both read `decisions_1h` / `decisions_1m` (exact window sums, metrics/windows.py), by team,
service, policy, engine, environment, cluster and overall. An empty window: total 0, value null.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from metrics import sources
from metrics.latency import BOUNDS, BUCKET_COUNT, count_at_or_under
from metrics.sli.base import Context, complete, ratio, shape, spans

BUCKETS = [f"b{i}" for i in range(BUCKET_COUNT)]
MEASURES = ["total", "errors", "denies", "warns", "latency_count", *BUCKETS]
PERCENTILES = {"L_p50": 0.5, "L_p95": 0.95, "L_p99": 0.99}


def window_frame(ctx: Context) -> pl.DataFrame:
    """Exact per-window sums of every decision measure (cached: M4 reuses the deny counts)."""
    if "decisions" not in ctx.cache:
        sums = sources.rollup_window_sums(ctx.client, sources.DECISIONS, spans(ctx), MEASURES)
        ctx.cache["decisions"] = complete(ctx, sums, {m: 0 for m in MEASURES})
    return ctx.cache["decisions"]


def _percentiles(counts: np.ndarray, qs: list[float]) -> list[np.ndarray]:
    """Vectorized histogram quantiles (log-linear within the bucket), NaN for empty rows:
    one array per q in `qs`."""
    order = np.array(list(range(1, BUCKET_COUNT)) + [0])  # by latency, overflow last
    upper = np.array(BOUNDS + (BOUNDS[-1],))
    lower = np.array((0.0,) + BOUNDS)
    used = np.flatnonzero(counts[:, order].any(axis=0)) if len(counts) else np.array([0])
    first, last = (used[0], used[-1] + 1) if len(used) else (0, 1)
    # only the buckets from the first to the last that any row uses: the rest add nothing
    order, upper, lower = order[first:last], upper[first:last], lower[first:last]
    overflow = len(order) - 1 if last == BUCKET_COUNT else -1
    rows = np.flatnonzero(counts[:, order].sum(axis=1) > 0)  # empty: no percentile
    cumulative = np.cumsum(counts[np.ix_(rows, order)], axis=1)
    total = cumulative[:, -1] if len(rows) else np.zeros(0, np.int64)
    out = []
    for q in qs:
        rank = q * total
        position = np.argmax(cumulative >= rank[:, None], axis=1)
        at = np.arange(len(rows))
        before = np.where(position > 0, cumulative[at, position - 1], 0)
        in_bucket = cumulative[at, position] - before
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(in_bucket > 0, (rank - before) / in_bucket, 0.0)
            lo, hi = lower[position], upper[position]
            value = np.where(lo > 0, lo * (hi / np.where(lo > 0, lo, 1)) ** fraction,
                             hi * fraction)
        value = np.where(position == overflow, BOUNDS[-1], value)  # the overflow bucket
        full = np.full(len(counts), np.nan)
        full[rows] = value
        out.append(full)
    return out


def compute(ctx: Context) -> pl.DataFrame:
    frame = window_frame(ctx)
    parts = [ratio(frame, "M1", pl.col("total") - pl.col("errors"), pl.col("total"))]
    counts = frame.select(BUCKETS).to_numpy()
    quantiles = _percentiles(counts, list(PERCENTILES.values())) if len(counts) else \
        [np.array([])] * len(PERCENTILES)
    for sli, values in zip(PERCENTILES, quantiles):
        parts.append(shape(frame.with_columns(
            sli=pl.lit(sli), good=None, total=pl.col("latency_count"),
            value=pl.Series(values, dtype=pl.Float64).fill_nan(None))))
    under = [f"b{i}" for i in range(1, BUCKET_COUNT)
             if BOUNDS[i - 1] <= ctx.latency_threshold + 1e-15]
    assert count_at_or_under([1] * BUCKET_COUNT, ctx.latency_threshold) == len(under)
    parts.append(ratio(frame, "L_under", pl.sum_horizontal(under), pl.col("latency_count")))
    return pl.concat(parts)
