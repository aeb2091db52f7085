"""Window sums: per key, the sum of each measure over the rows inside each interval.

For rows (t, keys..., measures...) and intervals (at, window, start, and any other columns,
passed through; `windows.intervals`): the sum of each measure over the rows with
start <= t < at, per key, for every interval. `reference.window_sums` is that definition,
written plainly (the tests' oracle). The engines compute the same from what the readers give
them, each exact; every one returns columns at, window, the intervals' other columns,
keys..., measures:

- `asof_window_sums(hourly, minutely, intervals, keys, measures)`: hour and minute buckets,
  G(at) - G(start) from cumulative sums joined as-of (`asof`);
- `dense_window_sums(hourly, segments, cuts, intervals, keys, measures)`, and
  `dense_window_reduce(..., reduce)` keeping a few numbers per row: hour buckets and the
  minute segments of the edge hours, prefix sums over dense numpy arrays, for many points
  (`dense`; rows in `sli_values`' key order, `metrics.sli_writer`);
- `event_window_sums(rows, intervals, keys, measures)`: raw event rows (`event_time`), each
  matched to each interval when few (`direct_window_sums`), else bucketed (`buckets_of`) and
  summed densely (`direct`).

The fourth engine sums inside ClickHouse (`metrics.sources.window_totals`, for few points): it
reads storage, so it lives with the readers, which pick between it and these by point count
(`sources.rollup_window_sums`, `sources.rollup_window_reduce`).
"""

from metrics.window_sums import reference
from metrics.window_sums.asof import asof_window_sums, cumulative_at
from metrics.window_sums.dense import (
    Reduce,
    dense_window_reduce,
    dense_window_sums,
    interval_edges,
    labels_categorical,
    minute_cuts,
    segment_range,
)
from metrics.window_sums.direct import buckets_of, direct_window_sums, event_window_sums

__all__ = ["Reduce", "asof_window_sums", "buckets_of", "cumulative_at",
           "dense_window_reduce", "dense_window_sums", "direct_window_sums",
           "event_window_sums", "interval_edges", "labels_categorical", "minute_cuts",
           "reference", "segment_range"]
