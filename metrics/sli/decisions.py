"""M1 policy-evaluation success rate and L decision latency, from the decision rollups.

M1  good = decisions whose outcome is not `error`, total = all decisions (every attempt counts:
    a retried evaluation that failed once is one error). value = good / total.
L   from the latency histogram of decisions that reported a latency:
    L_p50, L_p95, L_p99: the percentile in seconds (total = decisions with a latency);
    L_under: good = decisions at or under `latency_threshold` seconds, total as above.
Both read `decisions_1h` / `decisions_1m` (exact window sums, `metrics.window_sums`), by team,
service, policy, engine, environment, cluster and overall. An empty window: total 0, value null.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from metrics import sources
from metrics.latency import BOUNDS, BUCKET_COUNT, count_at_or_under
from metrics.latency import bucket_span as _bucket_span
from metrics.latency import percentiles as _percentiles
from metrics.sli.base import (
    Context,
    by_sli,
    complete,
    ratio,
    shape,
)
from metrics.window_sums import Reduce

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
        frame = sources.rollup_window_reduce(ctx.client, sources.DECISIONS, ctx.intervals,
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


def compute(ctx: Context) -> pl.DataFrame:
    # in `sli_values`' key order (`sli_writer.KEY_ORDER`), so ClickHouse finds the rows sorted
    # and skips sorting them: the dense sums of a backfill come so already (the sort then
    # only checks), a few points' sums from ClickHouse do not
    frame = window_frame(ctx).sort("window", "dimension", "dimension_value", "at")
    parts = {"M1": ratio(frame, "M1", pl.col("total") - pl.col("errors"), pl.col("total")),
             "L_under": ratio(frame, "L_under", pl.col("under"), pl.col("latency_count"))}
    for sli in PERCENTILES:
        parts[sli] = shape(frame.with_columns(
            sli=pl.lit(sli, pl.Categorical), good=None, total=pl.col("latency_count"),
            value=pl.col(sli).fill_nan(None)))
    return by_sli(list(parts.values()))
