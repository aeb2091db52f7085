"""Window sums over raw event rows (event_time, keys..., measures...), for the low-volume event
kinds the rollups do not cover (triage verdicts, drift).

Few rows x intervals (a scheduled run): every row is matched to every interval directly
(`direct_window_sums`). Intervals start and end on whole minutes, so "in [start, at)" is the
same for an event and for its minute; many (a backfill): the rows are bucketed by hour and by
the minute segments the intervals cut (`buckets_of`), as the rollup readers give them, and
summed by the dense engine. `event_window_sums` picks.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from metrics.window_sums.dense import dense_window_sums, labels_categorical, minute_cuts

DIRECT_PAIRS = 2_000_000  # rows x intervals matched directly up to this many


def event_window_sums(rows: pl.DataFrame, intervals: pl.DataFrame, keys: list[str],
                      measures: list[str]) -> pl.DataFrame:
    """Sums of `measures` per key over every interval (at, window, start and any other
    columns, passed through), every key of `rows` at every interval: columns at, window, the
    intervals' other columns, keys..., measures (in the rows' types); in `sli_values`' key
    order (window, keys, at), labels as categoricals, either way."""
    if rows.height * intervals.height <= DIRECT_PAIRS:
        return direct_window_sums(rows, intervals, keys, measures)
    # the dense sums: less work than the as-of joins (`asof_window_sums`) for many intervals
    sums = dense_window_sums(*buckets_of(rows, intervals, keys, measures), intervals, keys,
                             measures)
    extra = [c for c in intervals.columns if c not in ("at", "window", "start")]
    return sums.select("at", "window", *extra, *keys,
                       *[pl.col(m).cast(rows.schema[m]) for m in measures])


def direct_window_sums(rows: pl.DataFrame, intervals: pl.DataFrame, keys: list[str],
                       measures: list[str]) -> pl.DataFrame:
    """`event_window_sums` by matching every row to every interval (rows x intervals)."""
    extra = [c for c in intervals.columns if c not in ("at", "window", "start")]
    numbered = intervals.with_row_index("interval")
    inside = numbered.join(rows, how="cross").filter(
        (pl.col("event_time") >= pl.col("start")) & (pl.col("event_time") < pl.col("at")))
    sums = inside.group_by(["interval", *keys]).agg([pl.col(m).sum() for m in measures])
    grid = numbered.join(rows.select(keys).unique(), how="cross")
    return labels_categorical(grid.join(sums, on=["interval", *keys], how="left").sort(
        "window", *keys, "at", "interval").select(  # the dense sums' order and types
        "at", "window", *extra, *keys,
        *[pl.col(m).fill_null(0).cast(rows.schema[m]) for m in measures]), keys)


def buckets_of(rows: pl.DataFrame, intervals: pl.DataFrame, keys: list[str],
               measures: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, list[int]]:
    """Raw rows as the dense engine's input: (hour buckets: t, keys, measures; the minute
    segments between the intervals' cuts of each hour: h, seg, keys, measures; the cuts)."""
    minute = rows.with_columns(pl.col("event_time").dt.truncate("1m").alias("t")).group_by(
        ["t", *keys]).agg([pl.col(m).sum() for m in measures])
    hour = minute.with_columns(pl.col("t").dt.truncate("1h")).group_by(["t", *keys]).agg(
        [pl.col(m).sum() for m in measures])
    _, cuts = minute_cuts(intervals)
    segment = np.searchsorted(cuts, minute.get_column("t").dt.minute().to_numpy(), "right")
    segments = minute.with_columns(h=pl.col("t").dt.truncate("1h"), seg=segment).group_by(
        ["h", "seg", *keys]).agg([pl.col(m).sum() for m in measures])
    return hour, segments, cuts
