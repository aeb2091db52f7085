"""SLI windows and the exact window-sum engine over hour + minute rollups.

A window `w` evaluated at `at` (a whole minute) covers event times in [start(at, w), at):
rolling windows start `w` earlier; `month` is the calendar month to date (UTC), empty right at
midnight of the 1st.

Sums are exact at minute resolution while reading few rows: with G(t) = the sum of everything
before t, a window's sum is G(at) - G(start), and
    G(t) = (sum of hour buckets before floor_hour(t)) + (minute buckets in [floor_hour(t), t)).
So whole hours come from the hour rollup and only the partial hour at each edge from the
minute rollup. Both parts are cumulative sums joined as-of, vectorized in Polars.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

import numpy as np

import polars as pl

from core.units import parse_whole_duration

WINDOWS: dict[str, timedelta | None] = {
    "5m": timedelta(minutes=5), "30m": timedelta(minutes=30), "1h": timedelta(hours=1),
    "2h": timedelta(hours=2), "6h": timedelta(hours=6), "1d": timedelta(days=1),
    "3d": timedelta(days=3), "7d": timedelta(days=7), "30d": timedelta(days=30),
    "month": None,  # calendar month to date
}
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
DIRECT_PAIRS = 2_000_000  # bucket_sums: rows x spans matched directly up to this many


def floor_minute(t: datetime) -> datetime:
    t = t.astimezone(timezone.utc) if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return t.replace(second=0, microsecond=0)


def floor_hour(t: datetime) -> datetime:
    return floor_minute(t).replace(minute=0)


def window_length(window: str) -> timedelta | None:
    """The length of a named window or of any 'Nm', 'Nh', 'Nd' (None: calendar month).
    Raises ValueError for anything else."""
    if window in WINDOWS:
        return WINDOWS[window]
    try:
        return timedelta(seconds=parse_whole_duration(window, units="mhd"))
    except ValueError:
        raise ValueError(f"window {window!r} is not one of {', '.join(WINDOWS)} "
                         "or a whole number of minutes, hours or days like 28d") from None


def window_start(at: datetime, window: str) -> datetime:
    """Start of `window` evaluated at `at` (inclusive)."""
    length = window_length(window)
    if length is None:
        return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return at - length


def parse_window(text: str) -> str:
    if text not in WINDOWS:
        raise ValueError(f"window {text!r} is not one of {', '.join(WINDOWS)}")
    return text


def required_times(points: list[datetime], windows: list[str]) -> list[datetime]:
    times = set(points)
    for at in points:
        times.update(window_start(at, w) for w in windows)
    return sorted(times)


def partial_hours(times: list[datetime]) -> list[datetime]:
    """Hours whose minute buckets are needed (times that are not on an hour boundary)."""
    return sorted({floor_hour(t) for t in times if t != floor_hour(t)})


def _cumulative(frame: pl.DataFrame, keys: list[str], measures: list[str],
                group: list[str]) -> pl.DataFrame:
    return frame.sort([*keys, "t"]).with_columns(
        [pl.col(m).cum_sum().over([*keys, *group]).alias(m) for m in measures])


def cumulative_at(hourly: pl.DataFrame, minutely: pl.DataFrame, times: list[datetime],
                  keys: list[str], measures: list[str]) -> pl.DataFrame:
    """G(t) for every key present and every t in `times`: columns keys..., t, measures..."""
    key_frames = [f.select(keys) for f in (hourly, minutely) if f.height]
    if not key_frames or not times:
        return pl.DataFrame(schema={**{k: pl.String for k in keys},
                                    "t": pl.Datetime("us", "UTC"),
                                    **{m: pl.Int64 for m in measures}})
    all_keys = pl.concat(key_frames).unique()
    wanted = pl.DataFrame({"t": times}, schema={"t": pl.Datetime("us", "UTC")}).with_columns(
        pl.col("t").dt.truncate("1h").alias("hour"))
    grid = all_keys.join(wanted, how="cross").sort([*keys, "t"])

    hour_cum = _cumulative(hourly.rename({"t": "t_h"}).with_columns(pl.col("t_h").alias("t")),
                           keys, measures, []).drop("t")
    # hours strictly before floor_hour(t): as-of on t_h < hour
    with_hours = grid.sort("hour").join_asof(  # sorted per key group, as join_asof needs
        hour_cum.sort("t_h"), left_on="hour", right_on="t_h", by=keys, strategy="backward",
        allow_exact_matches=False, check_sortedness=False).drop("t_h")

    minute = minutely.with_columns(pl.col("t").dt.truncate("1h").alias("hour"))
    minute_cum = _cumulative(minute, keys, measures, ["hour"]).rename(
        {"t": "t_m", **{m: f"{m}__m" for m in measures}})
    combined = with_hours.sort("t").join_asof(
        minute_cum.sort("t_m"), left_on="t", right_on="t_m", by=[*keys, "hour"],
        strategy="backward", allow_exact_matches=False, check_sortedness=False)
    return combined.select(
        *keys, "t",
        *[(pl.col(m).fill_null(0) + pl.col(f"{m}__m").fill_null(0)).alias(m)
          for m in measures])


def ceil_hour(t: datetime) -> datetime:
    floor = floor_hour(t)
    return floor if floor == t else floor + HOUR


def edges(start: datetime, at: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """[start, at) as three disjoint ranges: whole hours (read from the hour rollup), then
    the minutes before the first whole hour and after the last one (the minute rollup).
    Each range is (from, to); an unused one is empty (from == to). Their union is exactly
    [start, at), so summing the buckets inside each range gives the window's sum.

    >>> from datetime import datetime as D
    >>> [(a.strftime('%H:%M'), b.strftime('%H:%M')) for a, b in edges(D(2026, 1, 1, 9, 55),
    ...                                                               D(2026, 1, 1, 12, 10))]
    [('10:00', '12:00'), ('09:55', '10:00'), ('12:00', '12:10')]
    >>> [(a.strftime('%H:%M'), b.strftime('%H:%M')) for a, b in edges(D(2026, 1, 1, 9, 5),
    ...                                                               D(2026, 1, 1, 9, 35))]
    [('09:35', '09:35'), ('09:05', '09:35'), ('09:35', '09:35')]
    """
    first, last = ceil_hour(start), floor_hour(at)
    if first > last:  # inside one hour: minutes only
        return (at, at), (start, at), (at, at)
    return (first, last), (start, first), (last, at)


def pairs(points: list[datetime], windows: list[str]) -> pl.DataFrame:
    """Every (point, window) with its start: columns at, window, start."""
    return pl.DataFrame(
        [(at, w, window_start(at, w)) for at in points for w in windows],
        schema={"at": pl.Datetime("us", "UTC"), "window": pl.String,
                "start": pl.Datetime("us", "UTC")}, orient="row")


def window_sums(hourly: pl.DataFrame, minutely: pl.DataFrame, points: list[datetime],
                windows: list[str], keys: list[str], measures: list[str],
                spans: pl.DataFrame | None = None) -> pl.DataFrame:
    """Exact sums of `measures` per key over every (point, window): columns
    at, window, keys..., measures... . `hourly` / `minutely` have a `t` column (bucket start,
    UTC) plus keys and measures; `minutely` needs only the hours `partial_hours` names.
    `spans` (at, window, start, and any extra columns, passed through) replaces the
    (point, window) pairs when given."""
    spans = pairs(points, windows) if spans is None else spans
    times = sorted(set(spans.get_column("at").to_list()) | set(
        spans.get_column("start").to_list()))
    g = cumulative_at(hourly, minutely, times, keys, measures)
    end = g.rename({"t": "at"})
    begin = g.rename({"t": "start", **{m: f"{m}__start" for m in measures}})
    extra = [c for c in spans.columns if c not in ("at", "window", "start")]
    out = spans.join(end, on="at").join(begin, on=["start", *keys], how="left")
    return out.select(
        "at", "window", *extra, *keys,
        *[(pl.col(m) - pl.col(f"{m}__start").fill_null(0)).alias(m) for m in measures])


def bucket_sums(rows: pl.DataFrame, keys: list[str], measures: list[str],
                spans: pl.DataFrame) -> pl.DataFrame:
    """`window_sums` over raw rows (event_time, keys, measures) instead of rollup tables:
    the rows are bucketed by minute and hour here and summed like rollup rows
    (`dense_window_sums`). For low-volume event kinds. When rows x spans is small (a
    scheduled run), every row is matched to every span directly instead: spans start and end
    on whole minutes, so "in [start, at)" is the same for an event and for its minute. Either
    way: rows in key order, labels as categoricals, the spans' other columns passed through."""
    if rows.height * spans.height <= DIRECT_PAIRS:
        extra = [c for c in spans.columns if c not in ("at", "window", "start")]
        numbered = spans.with_row_index("span")
        inside = numbered.join(rows, how="cross").filter(
            (pl.col("event_time") >= pl.col("start")) & (pl.col("event_time") < pl.col("at")))
        sums = inside.group_by(["span", *keys]).agg([pl.col(m).sum() for m in measures])
        grid = numbered.join(rows.select(keys).unique(), how="cross")
        return labels_categorical(grid.join(sums, on=["span", *keys], how="left").sort(
            "window", *keys, "at", "span").select(  # the dense sums' order and types
            "at", "window", *extra, *keys,
            *[pl.col(m).fill_null(0).cast(rows.schema[m]) for m in measures]), keys)
    minute = rows.with_columns(pl.col("event_time").dt.truncate("1m").alias("t")).group_by(
        ["t", *keys]).agg([pl.col(m).sum() for m in measures])
    hour = minute.with_columns(pl.col("t").dt.truncate("1h")).group_by(["t", *keys]).agg(
        [pl.col(m).sum() for m in measures])
    # the minutes as the segments between the spans' cuts of each hour, as the rollup
    # readers give them, then the dense sums (3-4x less than `window_sums`' as-of joins)
    _, cuts = minute_cuts(spans)
    segment = np.searchsorted(cuts, minute.get_column("t").dt.minute().to_numpy(), "right")
    segments = minute.with_columns(h=pl.col("t").dt.truncate("1h"), seg=segment).group_by(
        ["h", "seg", *keys]).agg([pl.col(m).sum() for m in measures])
    sums = dense_window_sums(hour, segments, cuts, spans, keys, measures)
    extra = [c for c in spans.columns if c not in ("at", "window", "start")]
    return sums.select("at", "window", *extra, *keys,
                       *[pl.col(m).cast(rows.schema[m]) for m in measures])


def floor_day(t: datetime) -> datetime:
    return floor_hour(t).replace(hour=0)


def ceil_day(t: datetime) -> datetime:
    floor = floor_day(t)
    return floor if floor == t else floor + DAY


def day_edges(start: datetime, at: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """[start, at) as five disjoint ranges: whole days (the day rollup), the whole hours
    before and after them (the hour rollup), and the minutes before and after those (the
    minute rollup) -- `edges` with its whole hours split at day boundaries (UTC). An unused
    range is empty (from == to).

    >>> from datetime import datetime as D
    >>> for a, b in day_edges(D(2026, 1, 1, 21, 55), D(2026, 1, 4, 2, 10)):
    ...     print(f"{a:%d %H:%M} - {b:%d %H:%M}")
    02 00:00 - 04 00:00
    01 22:00 - 02 00:00
    04 00:00 - 04 02:00
    01 21:55 - 01 22:00
    04 02:00 - 04 02:10
    """
    (first, last), before, after = edges(start, at)
    none = (at, at)
    if first >= last:
        return none, none, none, before, after
    day_first, day_last = ceil_day(first), floor_day(last)
    if day_first >= day_last:
        return none, (first, last), none, before, after
    return (day_first, day_last), (first, day_first), (day_last, last), before, after


def span_edges(spans: pl.DataFrame) -> dict[str, np.ndarray]:
    """`edges` of every span at once, in whole seconds since the epoch (spans start and end
    on whole minutes): the whole-hour range (`hours_from`, `hours_to`) and the two partial
    ones (`before_*`, `after_*`, each `_from`, `_to`), equal where unused."""
    at = spans.get_column("at").dt.epoch("s").to_numpy()
    start = spans.get_column("start").dt.epoch("s").to_numpy()
    first, last = -(-start // 3600) * 3600, at // 3600 * 3600  # ceil_hour, floor_hour
    inside = first > last  # within one hour: minutes only
    return {"hours_from": np.where(inside, at, first), "hours_to": np.where(inside, at, last),
            "before_from": start, "before_to": np.where(inside, at, first),
            "after_from": np.where(inside, at, last), "after_to": at}


def _partial_ranges(spans: pl.DataFrame) -> list[tuple[np.ndarray, ...]]:
    """The two partial-hour ranges of every span as (used, hour, from minute, to minute)
    arrays (hour in epoch seconds; to minute 60 for a range that ends on the next hour)."""
    e = span_edges(spans)
    out = []
    for side in ("before", "after"):
        lo, hi = e[f"{side}_from"], e[f"{side}_to"]
        hour = lo // 3600 * 3600
        out.append((lo < hi, hour, (lo - hour) // 60, np.where(hi - hour == 3600, 60,
                                                               (hi - hour) // 60 % 60)))
    return out


def minute_cuts(spans: pl.DataFrame) -> tuple[list[tuple[datetime, int, int]], list[int]]:
    """The partial-hour ranges of every span (`edges`) as (hour, from minute, to minute),
    and the minute offsets that cut the hours into the segments those ranges are made of
    (every range is a run of whole segments; see `segment_span`)."""
    ranges: list[tuple[datetime, int, int]] = []
    minutes: set[int] = set()
    for used, hour, lo, hi in _partial_ranges(spans):
        unique = np.unique(np.stack([hour[used], lo[used], hi[used]], axis=1), axis=0)
        ranges += [(datetime.fromtimestamp(int(h), timezone.utc), int(a), int(b))
                   for h, a, b in unique]
        minutes |= set(lo[used].tolist()) | set(hi[used].tolist())
    return ranges, sorted(minutes - {0, 60})


def segment_span(cuts: list[int], lo: np.ndarray, hi: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Minutes [lo, hi) of an hour as segments [first, last), for arrays of ranges: segment j
    holds the minutes m with exactly j cuts <= m, and lo, hi are 0, 60 or cuts.

    >>> segment_span([30, 55], np.array([55, 0, 30]), np.array([60, 30, 60]))
    (array([2, 0, 1]), array([3, 1, 3]))
    """
    return np.searchsorted(cuts, lo, side="right"), np.searchsorted(cuts, hi, side="left") + 1


Reduce = Callable[[list[str], np.ndarray], dict[str, np.ndarray]]


def dense_window_sums(hourly: pl.DataFrame, segments: pl.DataFrame, cuts: list[int],
                      spans: pl.DataFrame, keys: list[str], measures: list[str]
                      ) -> pl.DataFrame:
    """`window_sums` for many points at once, in numpy (see `dense_window_reduce`). Same
    rows and sums as `window_sums` (every key read, at every span; spans' extra columns
    passed through)."""
    def keep(names: list[str], sums: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, sums.copy()))

    frame = dense_window_reduce(hourly, segments, cuts, spans, keys, measures, keep)
    extra = [c for c in spans.columns if c not in ("at", "window", "start")]
    return frame.select("at", "window", *keys, *extra, *(
        pl.col(m) if m in frame.columns else pl.lit(0, pl.Int64).alias(m) for m in measures))


def dense_window_reduce(hourly: pl.DataFrame, segments: pl.DataFrame, cuts: list[int],
                        spans: pl.DataFrame, keys: list[str], measures: list[str],
                        reduce: Reduce, block: int = 128) -> pl.DataFrame:
    """Window sums of `measures` at every (span, key), reduced by `reduce` a block of rows
    at a time: rows at, window, keys..., the spans' other columns and the columns `reduce`
    returns; ordered by window, keys and time (by text: `sli_values`' key order), the
    labels as categoricals. Prefix sums over
    a dense (hour, key, measure) array give every whole-hour range, prefix sums over the
    minute segments (`segments`: h, seg, keys, measures, cut by `cuts`) of each hour holding
    a partial range give the rest. `reduce(names, sums)` gets the sums of the measures that
    are not zero everywhere (`names`; the others are all zero) as one row per measure and
    one column per row of the block, and returns one array per output column. Reducing block
    by block keeps the sums of every bucket of a histogram at every row from ever being held
    at once: they would take a few hundred MB, and fresh memory costs more than the sums."""
    key_frames = [f.select(keys) for f in (hourly, segments) if f.height]
    extra = [c for c in spans.columns if c not in ("at", "window", "start")]
    if not key_frames or not spans.height:
        return pl.DataFrame(schema={"at": pl.Datetime("us", "UTC"), "window": pl.Categorical,
                                    **{k: pl.Categorical for k in keys},
                                    **{c: spans.schema[c] for c in extra}})
    key_table = pl.concat(key_frames).unique(maintain_order=True).with_row_index("k")
    # measures that are zero in every bucket read (most latency buckets) sum to zero anyway
    present = [f.select((pl.col(m) != 0).any() for m in measures).row(0)
               for f in (hourly, segments) if f.height]
    measures = [m for m, *any_ in zip(measures, *present) if any(any_)]
    n_keys, n_measures = key_table.height, len(measures)

    times = spans.get_column("start").to_list() + spans.get_column("at").to_list()
    hour0 = floor_hour(min(times))
    n_hours = int((ceil_hour(max(times)) - hour0) / HOUR)

    def hour_index(column: pl.Expr) -> pl.Expr:
        return ((column - pl.lit(hour0)).dt.total_seconds() // 3600).cast(pl.Int64)

    # measure-last arrays: a span's sums over all keys and measures are one block, so each
    # range below is one gather of whole blocks (several times faster than measure by measure)
    whole = np.zeros((n_hours + 1, n_keys, n_measures), dtype=np.int64)
    if hourly.height:
        rows = hourly.join(key_table, on=keys).with_columns(i=hour_index(pl.col("t"))).filter(
            (pl.col("i") >= 0) & (pl.col("i") < n_hours))
        whole[rows.get_column("i").to_numpy() + 1, rows.get_column("k").to_numpy()] = \
            rows.select(measures).to_numpy()
    for i in range(1, n_hours + 1):  # whole[i] = sum of the hours before hour0 + i (row by
        whole[i] += whole[i - 1]      # row: numpy's cumsum along a long outer axis is slow)

    ranges, _ = minute_cuts(spans)
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

    # per span: hour indexes of its whole-hour range, then for each of its two partial
    # ranges the flat (slot, segment) indexes of its end and start; an empty range gets
    # equal indexes (or the zero slot), so it adds nothing
    e = span_edges(spans)
    first_hour = int(hour0.timestamp())
    used = e["hours_from"] < e["hours_to"]
    index = np.zeros((spans.height, 6), dtype=np.int64)
    index[:, 0] = np.where(used, (e["hours_to"] - first_hour) // 3600, 0)
    index[:, 1] = np.where(used, (e["hours_from"] - first_hour) // 3600, 0)
    slot_hours = np.array([int(h.timestamp()) for h in slot_of], dtype=np.int64)
    for offset, (used, hour, lo, hi) in zip((2, 4), _partial_ranges(spans)):
        slot = np.searchsorted(slot_hours, hour) * per_slot
        first, last = segment_span(cuts, lo, hi)
        index[:, offset] = np.where(used, slot + last, len(slot_of) * per_slot)
        index[:, offset + 1] = np.where(used, slot + first, len(slot_of) * per_slot)
    # spans with partial ranges (short windows) last, so most blocks skip the minute gathers;
    # the outputs are put back in span order at the end
    zero_slot = len(slot_of) * per_slot
    partial = (index[:, 2] != zero_slot) | (index[:, 4] != zero_slot)
    order = np.argsort(partial, kind="stable")
    outputs: dict[str, list[np.ndarray]] = {}
    for lo in range(0, spans.height, block):
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
    # rows in `sli_values`' key order: (window, keys, at) by their text, spans that tie in
    # their order (ClickHouse then finds an SLI's rows sorted and skips sorting them)
    by_window = sort_ranks(spans, ["window"], dense=True)
    span_rank = np.lexsort((np.arange(spans.height), sort_ranks(spans, ["at"]), by_window))
    key_rank = sort_ranks(key_table, keys)
    target = np.empty(spans.height, dtype=np.int64)  # each span's place among the spans
    target[span_rank] = np.arange(spans.height)
    # output row of each computed (span in block order, key): a window's rows start after
    # the earlier windows' (n spans x all keys each); inside, key by key, its spans in order
    per_window = np.bincount(by_window)
    window_first = np.concatenate([[0], np.cumsum(per_window)[:-1]]) * n_keys
    within = target - window_first[by_window] // n_keys  # the span's place in its window
    rows = (window_first[by_window][order][:, None] + key_rank[None, :]
            * per_window[by_window][order][:, None] + within[order][:, None]).ravel()
    columns = []
    for name, parts in outputs.items():
        values = np.concatenate(parts)
        in_order = np.empty_like(values)
        in_order[rows] = values
        columns.append(pl.Series(name, in_order))
    span_of = np.empty(rows.size, dtype=np.int64)
    span_of[rows] = np.repeat(order, n_keys)
    key_of = np.empty(rows.size, dtype=np.int64)
    key_of[rows] = np.tile(np.arange(n_keys), order.size)
    head = labels_categorical(spans.drop("start"), []).gather(span_of).hstack(
        labels_categorical(key_table.select(keys), keys).gather(key_of))
    return head.select("at", "window", *keys, *extra).hstack(columns)


def labels_categorical(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """`window` (when there) and the string `keys` of window sums as categoricals, as the SLI
    rows carry them (cast here on few rows, gathered as codes after)."""
    return frame.with_columns(pl.col(c).cast(pl.Categorical) for c in ["window", *keys]
                              if c in frame.columns and frame.schema[c] == pl.String)


def sort_ranks(frame: pl.DataFrame, columns: list[str], dense: bool = False) -> np.ndarray:
    """Each row's place when `frame` is sorted by `columns` (ties in row order; strings by
    their text, as ClickHouse orders them; a null first), or with `dense` the number of
    distinct values before its own."""
    if dense:
        return frame.select(pl.struct(columns).rank("dense") - 1).to_series().to_numpy(
        ).astype(np.int64)
    rank = np.empty(frame.height, dtype=np.int64)
    rank[frame.select(pl.arg_sort_by(columns, maintain_order=True)).to_series().to_numpy()] = \
        np.arange(frame.height)
    return rank
