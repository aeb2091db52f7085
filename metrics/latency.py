"""The decision-latency histogram: bucket boundaries and percentiles from bucket counts.

Boundaries are 10 per decade (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8) from 10 us to 100 s, and
must equal the literal array in `schemas/clickhouse/0003_sli_rollups.sql` (a test checks).
Bucket i (1-based) counts latencies in (BOUNDS[i-2], BOUNDS[i-1]]; bucket 0 counts those over
100 s. Histograms merge exactly across any window; a percentile is interpolated within its
bucket (log-linear), so it is within one bucket width (at most 25 %) of the true value, while
the share under a threshold that is a boundary is exact.

`quantile` is the scalar definition; `percentiles` computes the same for many histograms at
once (bucket counts as rows), and is what every reported percentile uses: the SLIs L_p50,
L_p95, L_p99 and the read API's (`metrics.read.latency_percentiles`), so they agree.
"""

from __future__ import annotations

import math

import numpy as np

_MANTISSAS = (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8)
BOUNDS: tuple[float, ...] = tuple(
    float(f"{m}e{e}") for e in range(-5, 2) for m in _MANTISSAS) + (100.0,)
BUCKET_COUNT = len(BOUNDS) + 1  # index 0 is the overflow bucket


def bucket_upper(index: int) -> float:
    return math.inf if index == 0 else BOUNDS[index - 1]


def bucket_lower(index: int) -> float:
    if index == 0:
        return BOUNDS[-1]
    return 0.0 if index == 1 else BOUNDS[index - 2]


def quantile(counts: list[int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of a histogram given as counts by bucket index.

    None when the histogram is empty. Values in the overflow bucket report its lower bound.
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in list(range(1, len(counts))) + [0]:
        n = counts[index]
        if n and seen + n >= rank:
            lo, hi = bucket_lower(index), bucket_upper(index)
            if math.isinf(hi):
                return lo
            fraction = (rank - seen) / n
            if lo == 0.0:
                return hi * fraction
            return lo * (hi / lo) ** fraction
        seen += n
    return bucket_lower(0)


def count_at_or_under(counts: list[int], threshold: float) -> int:
    """Latencies <= threshold; exact when `threshold` is one of BOUNDS."""
    return sum(counts[i] for i in range(1, len(counts)) if BOUNDS[i - 1] <= threshold + 1e-15)


def check_threshold(threshold: float) -> float:
    for bound in BOUNDS:
        if math.isclose(bound, threshold, rel_tol=1e-9):
            return bound
    raise ValueError(f"latency threshold {threshold} s is not a histogram boundary; use one of "
                     + ", ".join(f"{b:g}" for b in BOUNDS))


def bucket_span(used: np.ndarray) -> np.ndarray:
    """Bucket indexes in latency order (overflow last) from the first to the last bucket
    `used` marks (a bool per bucket): the buckets a percentile can fall in."""
    order = np.array(list(range(1, BUCKET_COUNT)) + [0])
    nonzero = np.flatnonzero(used[order])
    return order[nonzero[0]:nonzero[-1] + 1] if len(nonzero) else order[:1]


def percentiles(counts: np.ndarray, qs: list[float], buckets: np.ndarray | None = None
                 ) -> list[np.ndarray]:
    """Vectorized histogram quantiles (log-linear within the bucket), NaN for empty
    histograms: one array per q in `qs`. `counts` holds one row per bucket and one column
    per histogram, its rows the buckets of `buckets` (`bucket_span` order) when given, else
    every bucket; buckets outside that span must be empty."""
    if buckets is None:
        buckets = bucket_span(counts.any(axis=1))
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
