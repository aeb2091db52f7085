"""The decision-latency histogram: bucket boundaries and percentiles from bucket counts.

Boundaries are 10 per decade (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8) from 10 us to 100 s, and
must equal the literal array in `schemas/clickhouse/0003_sli_rollups.sql` (a test checks).
Bucket i (1-based) counts latencies in (BOUNDS[i-2], BOUNDS[i-1]]; bucket 0 counts those over
100 s. Histograms merge exactly across any window; a percentile is interpolated within its
bucket (log-linear), so it is within one bucket width (at most 25 %) of the true value, while
the share under a threshold that is a boundary is exact.
"""

from __future__ import annotations

import math

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
