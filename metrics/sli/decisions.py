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
from metrics.sli.base import (
    Context,
    by_sli,
    complete,
    ratio,
    shape,
    spans,
)
from metrics.windows import Reduce

BUCKETS = [f"b{i}" for i in range(BUCKET_COUNT)]
SUMS = ["total", "errors", "denies", "warns", "latency_count"]
MEASURES = [*SUMS, *BUCKETS]
PERCENTILES = {"L_p50": 0.5, "L_p95": 0.95, "L_p99": 0.99}


def window_frame(ctx: Context) -> pl.DataFrame:
    """Per (at, window, dimension, dimension_value): the exact window sums of `SUMS`, the
    decisions at or under the latency threshold (`under`) and the latency percentiles
    (`PERCENTILES`' names, NaN for an empty histogram), reduced from the histogram's window
    sums block by block (cached: M4 reuses the deny counts)."""
    def make() -> pl.DataFrame:
        frame = sources.rollup_window_reduce(ctx.client, sources.DECISIONS, spans(ctx),
                                             MEASURES, _reducer(ctx.latency_threshold))
        frame = complete(ctx, frame, {m: 0 for m in [*SUMS, "under"]})
        return frame.with_columns(  # no rows read: no percentile either
            pl.lit(None, pl.Float64).alias(q) for q in PERCENTILES if q not in frame.columns)

    return ctx.cached("decisions", make)


def _reducer(threshold: float) -> Reduce:
    under = [i for i in range(1, BUCKET_COUNT) if BOUNDS[i - 1] <= threshold + 1e-15]
    assert count_at_or_under([1] * BUCKET_COUNT, threshold) == len(under)

    def reduce(names: list[str], sums: np.ndarray) -> dict[str, np.ndarray]:
        row = {name: i for i, name in enumerate(names)}
        zeros = np.zeros(sums.shape[1], dtype=np.int64)
        out = {m: sums[row[m]].copy() if m in row else zeros for m in SUMS}
        out["under"] = sum((sums[row[BUCKETS[b]]] for b in under if BUCKETS[b] in row),
                           zeros.copy())
        used = np.array([b in row for b in BUCKETS])
        buckets = _bucket_span(used)
        counts = np.zeros((len(buckets), sums.shape[1]), dtype=np.int64)
        for j, b in enumerate(buckets):
            if used[b]:
                counts[j] = sums[row[BUCKETS[b]]]
        out.update(zip(PERCENTILES, _percentiles(counts, list(PERCENTILES.values()),
                                                 buckets)))
        return out

    return reduce


def _bucket_span(used: np.ndarray) -> np.ndarray:
    """Bucket indexes in latency order (overflow last) from the first to the last bucket
    `used` marks (a bool per bucket): the buckets a percentile can fall in."""
    order = np.array(list(range(1, BUCKET_COUNT)) + [0])
    nonzero = np.flatnonzero(used[order])
    return order[nonzero[0]:nonzero[-1] + 1] if len(nonzero) else order[:1]


def _percentiles(counts: np.ndarray, qs: list[float], buckets: np.ndarray | None = None
                 ) -> list[np.ndarray]:
    """Vectorized histogram quantiles (log-linear within the bucket), NaN for empty
    histograms: one array per q in `qs`. `counts` holds one row per bucket and one column
    per histogram, its rows the buckets of `buckets` (`_bucket_span` order) when given, else
    every bucket; buckets outside that span must be empty."""
    if buckets is None:
        buckets = _bucket_span(counts.any(axis=1))
        counts = counts[buckets]
    # bucket i >= 1 holds (BOUNDS[i-2], BOUNDS[i-1]] (bucket 1 from 0); 0 is the overflow
    lower = np.array((BOUNDS[-1], 0.0) + BOUNDS[:-1])[buckets]
    upper = np.array((BOUNDS[-1],) + BOUNDS)[buckets]
    overflow = len(buckets) - 1 if buckets[-1] == 0 else -1
    cumulative = counts.copy()
    for j in range(1, len(buckets)):  # bucket by bucket: whole rows at a time (numpy's
        cumulative[j] += cumulative[j - 1]  # cumsum along the first axis is much slower)
    total = cumulative[-1]
    column = np.arange(counts.shape[1])
    out = []
    for q in qs:
        rank = q * total
        reach = np.ceil(rank).astype(np.int64)  # count >= rank <=> count >= ceil(rank)
        # the first bucket whose cumulative count reaches it, by binary search (the last
        # one always does, the total being the last cumulative count)
        position = np.zeros(len(total), dtype=np.int64)
        high = np.full(len(total), len(buckets) - 1, dtype=np.int64)
        for _ in range((len(buckets) - 1).bit_length()):
            middle = (position + high) // 2
            reached = cumulative[middle, column] >= reach
            high = np.where(reached, middle, high)
            position = np.where(reached, position, middle + 1)
        before = np.where(position > 0, cumulative[position - 1, column], 0)
        in_bucket = cumulative[position, column] - before
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(in_bucket > 0, (rank - before) / in_bucket, 0.0)
            lo, hi = lower[position], upper[position]
            value = np.where(lo > 0, lo * (hi / np.where(lo > 0, lo, 1)) ** fraction,
                             hi * fraction)
        value = np.where(position == overflow, BOUNDS[-1], value)  # the overflow bucket
        out.append(np.where(total > 0, value, np.nan))  # empty: no percentile
    return out


def compute(ctx: Context) -> pl.DataFrame:
    # in `sli_values`' order (sli, window, dimension, dimension_value, at), so ClickHouse
    # finds the rows sorted and skips sorting them: the dense sums of a backfill come so
    # already (the sort then only checks), a few points' sums from ClickHouse do not
    frame = window_frame(ctx).sort("window", "dimension", "dimension_value", "at")
    parts = {"M1": ratio(frame, "M1", pl.col("total") - pl.col("errors"), pl.col("total")),
             "L_under": ratio(frame, "L_under", pl.col("under"), pl.col("latency_count"))}
    for sli in PERCENTILES:
        parts[sli] = shape(frame.with_columns(
            sli=pl.lit(sli, pl.Categorical), good=None, total=pl.col("latency_count"),
            value=pl.col(sli).fill_nan(None)))
    return by_sli(list(parts.values()))
