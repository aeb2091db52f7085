"""Window sums for many points at once, from prefix sums over dense numpy arrays.

Each interval [start, at) splits into its whole hours and the minutes of the partial hours at
its edges (`windows.edges`). The minutes are read as segments: the minute offsets where some
interval cuts an hour (`minute_cuts`) split every hour into segments, and each partial range is
a run of whole segments (`segment_range`). Prefix sums over a dense (hour, key, measure) array
give every whole-hour range with two gathers; prefix sums over the segments of each hour
holding a partial range give the rest. What a backfill uses (`sources.rollup_window_sums`,
`rollup_window_reduce` for many points; `direct.event_window_sums` for many event rows).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import numpy as np
import polars as pl

from metrics.windows import HOUR, ceil_hour, floor_hour
from metrics.sli_writer import sort_ranks


def interval_edges(intervals: pl.DataFrame) -> dict[str, np.ndarray]:
    """`edges` of every interval at once, in whole seconds since the epoch (intervals start
    and end on whole minutes): the whole-hour range (`hours_from`, `hours_to`) and the two partial
    ones (`before_*`, `after_*`, each `_from`, `_to`), equal where unused."""
    at = intervals.get_column("at").dt.epoch("s").to_numpy()
    start = intervals.get_column("start").dt.epoch("s").to_numpy()
    first, last = -(-start // 3600) * 3600, at // 3600 * 3600  # ceil_hour, floor_hour
    inside = first > last  # within one hour: minutes only
    return {"hours_from": np.where(inside, at, first), "hours_to": np.where(inside, at, last),
            "before_from": start, "before_to": np.where(inside, at, first),
            "after_from": np.where(inside, at, last), "after_to": at}


def _partial_ranges(intervals: pl.DataFrame) -> list[tuple[np.ndarray, ...]]:
    """The two partial-hour ranges of every interval as (used, hour, from minute, to minute)
    arrays (hour in epoch seconds; to minute 60 for a range that ends on the next hour)."""
    e = interval_edges(intervals)
    out = []
    for side in ("before", "after"):
        lo, hi = e[f"{side}_from"], e[f"{side}_to"]
        hour = lo // 3600 * 3600
        out.append((lo < hi, hour, (lo - hour) // 60, np.where(hi - hour == 3600, 60,
                                                               (hi - hour) // 60 % 60)))
    return out


def minute_cuts(intervals: pl.DataFrame) -> tuple[list[tuple[datetime, int, int]], list[int]]:
    """The partial-hour ranges of every interval (`edges`) as (hour, from minute, to minute),
    and the minute offsets that cut the hours into the segments those ranges are made of
    (every range is a run of whole segments; see `segment_range`)."""
    ranges: list[tuple[datetime, int, int]] = []
    minutes: set[int] = set()
    for used, hour, lo, hi in _partial_ranges(intervals):
        unique = np.unique(np.stack([hour[used], lo[used], hi[used]], axis=1), axis=0)
        ranges += [(datetime.fromtimestamp(int(h), timezone.utc), int(a), int(b))
                   for h, a, b in unique]
        minutes |= set(lo[used].tolist()) | set(hi[used].tolist())
    return ranges, sorted(minutes - {0, 60})


def segment_range(cuts: list[int], lo: np.ndarray, hi: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Minutes [lo, hi) of an hour as segments [first, last), for arrays of ranges: segment j
    holds the minutes m with exactly j cuts <= m, and lo, hi are 0, 60 or cuts.

    >>> segment_range([30, 55], np.array([55, 0, 30]), np.array([60, 30, 60]))
    (array([2, 0, 1]), array([3, 1, 3]))
    """
    return np.searchsorted(cuts, lo, side="right"), np.searchsorted(cuts, hi, side="left") + 1


Reduce = Callable[[list[str], np.ndarray], dict[str, np.ndarray]]


def dense_window_sums(hourly: pl.DataFrame, segments: pl.DataFrame, cuts: list[int],
                      intervals: pl.DataFrame, keys: list[str], measures: list[str]
                      ) -> pl.DataFrame:
    """Window sums of `measures` at every (interval, key), every key read (see
    `dense_window_reduce`, which this is with every sum kept): columns at, window, the
    intervals' other columns, keys..., measures; in `sli_values`' key order."""
    def keep(names: list[str], sums: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, sums.copy()))

    frame = dense_window_reduce(hourly, segments, cuts, intervals, keys, measures, keep)
    extra = [c for c in intervals.columns if c not in ("at", "window", "start")]
    return frame.select("at", "window", *extra, *keys, *(
        pl.col(m) if m in frame.columns else pl.lit(0, pl.Int64).alias(m) for m in measures))


def dense_window_reduce(hourly: pl.DataFrame, segments: pl.DataFrame, cuts: list[int],
                        intervals: pl.DataFrame, keys: list[str], measures: list[str],
                        reduce: Reduce, block: int = 128) -> pl.DataFrame:
    """Window sums of `measures` at every (interval, key), reduced by `reduce` a block of rows
    at a time: rows at, window, the intervals' other columns, keys... and the columns
    `reduce` returns; ordered by window, keys and time (by text: `sli_values`' key order,
    `metrics.sli_writer`), the labels as categoricals. Prefix sums over
    a dense (hour, key, measure) array give every whole-hour range, prefix sums over the
    minute segments (`segments`: h, seg, keys, measures, cut by `cuts`) of each hour holding
    a partial range give the rest. `reduce(names, sums)` gets the sums of the measures that
    are not zero everywhere (`names`; the others are all zero) as one row per measure and
    one column per row of the block, and returns one array per output column. Reducing block
    by block keeps the sums of every bucket of a histogram at every row from ever being held
    at once: they would take far more memory than the sums, and fresh memory costs more than
    summing."""
    key_frames = [f.select(keys) for f in (hourly, segments) if f.height]
    extra = [c for c in intervals.columns if c not in ("at", "window", "start")]
    if not key_frames or not intervals.height:
        return pl.DataFrame(schema={"at": pl.Datetime("us", "UTC"), "window": pl.Categorical,
                                    **{c: intervals.schema[c] for c in extra},
                                    **{k: pl.Categorical for k in keys}})
    key_table = pl.concat(key_frames).unique(maintain_order=True).with_row_index("k")
    # measures that are zero in every bucket read (most latency buckets) sum to zero anyway
    present = [f.select((pl.col(m) != 0).any() for m in measures).row(0)
               for f in (hourly, segments) if f.height]
    # (one kept when all are: the arrays below need a measure axis)
    measures = [m for m, *any_ in zip(measures, *present) if any(any_)] or measures[:1]
    n_keys, n_measures = key_table.height, len(measures)

    times = intervals.get_column("start").to_list() + intervals.get_column("at").to_list()
    hour0 = floor_hour(min(times))
    n_hours = int((ceil_hour(max(times)) - hour0) / HOUR)

    def hour_index(column: pl.Expr) -> pl.Expr:
        return ((column - pl.lit(hour0)).dt.total_seconds() // 3600).cast(pl.Int64)

    # measure-last arrays: an interval's sums over all keys and measures are one block, so
    # each range below is one gather of whole blocks (faster than measure by measure)
    whole = np.zeros((n_hours + 1, n_keys, n_measures), dtype=np.int64)
    if hourly.height:
        rows = hourly.join(key_table, on=keys).with_columns(i=hour_index(pl.col("t"))).filter(
            (pl.col("i") >= 0) & (pl.col("i") < n_hours))
        whole[rows.get_column("i").to_numpy() + 1, rows.get_column("k").to_numpy()] = \
            rows.select(measures).to_numpy()
    for i in range(1, n_hours + 1):  # whole[i] = sum of the hours before hour0 + i (row by
        whole[i] += whole[i - 1]      # row: numpy's cumsum along a long outer axis is slow)

    ranges, _ = minute_cuts(intervals)
    slot_of = {hour: i for i, hour in enumerate(sorted({r[0] for r in ranges}))}
    part = np.zeros((len(slot_of) + 1, len(cuts) + 2, n_keys, n_measures), dtype=np.int64)
    if segments.height and slot_of:
        slots = pl.DataFrame({"h": list(slot_of), "slot": list(slot_of.values())},
                             schema={"h": pl.Datetime("us", "UTC"), "slot": pl.Int64})
        rows = segments.join(key_table, on=keys).join(slots, on="h")
        part[rows.get_column("slot").to_numpy(), rows.get_column("seg").to_numpy() + 1,
             rows.get_column("k").to_numpy()] = rows.select(measures).to_numpy()
    for j in range(1, len(cuts) + 2):  # prefix sums over segments; the last slot stays zero
        part[:, j] += part[:, j - 1]    # (hours with no minutes)
    part = part.reshape(-1, n_keys, n_measures)  # (slot, segment) flattened
    per_slot = len(cuts) + 2

    # per interval: hour indexes of its whole-hour range, then for each of its two partial
    # ranges the flat (slot, segment) indexes of its end and start; an empty range gets
    # equal indexes (or the zero slot), so it adds nothing
    e = interval_edges(intervals)
    first_hour = int(hour0.timestamp())
    used = e["hours_from"] < e["hours_to"]
    index = np.zeros((intervals.height, 6), dtype=np.int64)
    index[:, 0] = np.where(used, (e["hours_to"] - first_hour) // 3600, 0)
    index[:, 1] = np.where(used, (e["hours_from"] - first_hour) // 3600, 0)
    slot_hours = np.array([int(h.timestamp()) for h in slot_of], dtype=np.int64)
    for offset, (used, hour, lo, hi) in zip((2, 4), _partial_ranges(intervals)):
        slot = np.searchsorted(slot_hours, hour) * per_slot
        first, last = segment_range(cuts, lo, hi)
        index[:, offset] = np.where(used, slot + last, len(slot_of) * per_slot)
        index[:, offset + 1] = np.where(used, slot + first, len(slot_of) * per_slot)
    # intervals with partial ranges (short windows) last, so most blocks skip the minute
    # gathers; the outputs are put back in interval order at the end
    zero_slot = len(slot_of) * per_slot
    partial = (index[:, 2] != zero_slot) | (index[:, 4] != zero_slot)
    order = np.argsort(partial, kind="stable")
    outputs: dict[str, list[np.ndarray]] = {}
    for lo in range(0, intervals.height, block):
        i = index[order[lo:lo + block]]
        sums = np.take(whole, i[:, 0], axis=0)
        sums -= np.take(whole, i[:, 1], axis=0)
        if partial[order[lo:lo + block]].any():
            for end_, start_ in ((2, 3), (4, 5)):
                sums += np.take(part, i[:, end_], axis=0)
                sums -= np.take(part, i[:, start_], axis=0)
        for name, values in reduce(measures, np.ascontiguousarray(
                sums.reshape(-1, n_measures).T)).items():
            outputs.setdefault(name, []).append(values)
    # rows in `sli_values`' key order (`sli_writer.KEY_ORDER`): (window, keys, at) by their text,
    # intervals that tie in their order (ClickHouse then skips sorting an SLI's rows)
    by_window = sort_ranks(intervals, ["window"], dense=True)
    interval_rank = np.lexsort((np.arange(intervals.height), sort_ranks(intervals, ["at"]),
                                by_window))
    key_rank = sort_ranks(key_table, keys)
    target = np.empty(intervals.height, dtype=np.int64)  # each interval's place among them
    target[interval_rank] = np.arange(intervals.height)
    # output row of each computed (interval in block order, key): a window's rows start after
    # the earlier windows' (n intervals x all keys each); inside, key by key, its intervals
    # in order
    per_window = np.bincount(by_window)
    window_first = np.concatenate([[0], np.cumsum(per_window)[:-1]]) * n_keys
    within = target - window_first[by_window] // n_keys  # the interval's place in its window
    rows = (window_first[by_window][order][:, None] + key_rank[None, :]
            * per_window[by_window][order][:, None] + within[order][:, None]).ravel()
    columns = []
    for name, parts in outputs.items():
        values = np.concatenate(parts)
        in_order = np.empty_like(values)
        in_order[rows] = values
        columns.append(pl.Series(name, in_order))
    interval_of = np.empty(rows.size, dtype=np.int64)
    interval_of[rows] = np.repeat(order, n_keys)
    key_of = np.empty(rows.size, dtype=np.int64)
    key_of[rows] = np.tile(np.arange(n_keys), order.size)
    head = labels_categorical(intervals.drop("start"), []).gather(interval_of).hstack(
        labels_categorical(key_table.select(keys), keys).gather(key_of))
    return head.select("at", "window", *extra, *keys).hstack(columns)


def labels_categorical(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """`window` (when there) and the string `keys` of window sums as categoricals, as the SLI
    rows carry them (cast here on few rows, gathered as codes after)."""
    return frame.with_columns(pl.col(c).cast(pl.Categorical) for c in ["window", *keys]
                              if c in frame.columns and frame.schema[c] == pl.String)
