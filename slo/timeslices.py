"""Timeslices budgeting (OpenSLO `budgetingMethod: Timeslices`): the events an SLO counts are
time slices (e.g. minutes), and a slice is bad when its SLI value is under `timeSliceTarget`.

A window's total is its number of slices (a 30d window of 1m slices has 43,200), its bad count
the slices that failed. A slice with no events is good: nothing failed in it. Slice values
come from the same counts as Occurrences SLOs, evaluated once per slice end; the comparison
with the target is exact (integers).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from clickhouse_connect.driver.client import Client

from metrics.windows import window_start
from slo.counts import counts
from slo.spec import BAD_NUMERATOR_SLIS


def slice_table(client: Client, slo, points: list[datetime], windows: list[str],
                window_name, *, latency_threshold: float) -> dict[tuple, tuple[int, int]]:
    """(at, key, window) -> (bad slices, total slices)."""
    step = timedelta(seconds=slo.time_slice_seconds)
    target = slo.time_slice_target
    starts = {(at, w): window_start(at, w) for at in points for w in windows}
    earliest, latest = min(starts.values()), max(points)
    ends = [earliest + step * (i + 1) for i in range(int((latest - earliest) / step))]
    frame = counts(client, slo.sli, dict(slo.where), list(slo.by), ends,
                   [window_name(slo.time_slice_seconds)], latency_threshold=latency_threshold)
    bad_events = pl.col("numerator") if slo.sli in BAD_NUMERATOR_SLIS \
        else pl.col("total") - pl.col("numerator")
    # good slice: (total - bad) / total >= p / q, i.e. (total - bad) * q >= p * total
    failed = (pl.col("total") > 0) & (
        (pl.col("total") - bad_events) * target.denominator < target.numerator * pl.col("total"))
    bad_slices = frame.filter(failed).select("at", "key").sort("at")
    keys = sorted(set(frame.get_column("key").to_list())) or [""]
    table = {}
    by_key = {k: bad_slices.filter(pl.col("key") == k).get_column("at") for k in keys}
    for (at, window), start in starts.items():
        total = int((at - start) / step)
        for key in keys:
            times = by_key[key]
            lo = times.search_sorted(start, side="right")  # slice ends in (start, at]
            hi = times.search_sorted(at, side="right")
            table[(at, key, window)] = (int(hi - lo), total)
    return table
