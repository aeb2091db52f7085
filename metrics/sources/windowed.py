"""Window sums over the rollups, two ways, chosen by how many points a run evaluates:
inside ClickHouse for few points (`window_totals`, `window_totals_sets`: every bucket tagged
with the intervals it lies in, a few hundred rows back), and for many from hour rows and minute
segments read here and summed by the engines of `metrics.window_sums` (`dense_window_sums`,
or `dense_window_reduce` when a few numbers per row are wanted from many sums; the as-of engine
for filtered or grouped SLO counts). `rollup_window_sums` / `rollup_window_reduce` pick; every
way is exact, and all give the sums `window_sums.reference` defines."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from clickhouse_connect.driver.client import Client

from metrics.sources.rollups import (
    FEW_POINTS,
    KEYS,
    Rollup,
    _filter,
    _read,
    filtered_hours,
    filtered_minutes,
    one_dimension,
    rollup_hours,
    rollup_segments,
)
from metrics.window_sums import (
    Reduce,
    asof_window_sums,
    dense_window_reduce,
    dense_window_sums,
    labels_categorical,
    minute_cuts,
)
from metrics.windows import HOUR, day_edges, floor_hour
from metrics.windows import partial_hours as partial_hours_of


def window_totals(client: Client, rollup: Rollup, intervals: pl.DataFrame,
                  measures: list[str], where: dict[str, str] | None = None,
                  by: list[str] | None = None) -> pl.DataFrame:
    """Exact sums of `measures` over every (at, window, start) row of `intervals`, summed
    inside ClickHouse (`_summed_in_intervals`). Few rows travel, so this is the reader for runs
    at a few points (every minute's run, alert evaluation); `dense_window_sums` over hour rows
    and minute segments is the one for many points (a backfill).

    Without `where`/`by`: every dimension value and the overall row, keyed by `KEYS`. With
    them: the rows `where` selects, keyed by the by-values (`key`, see `_filter`) -- from the
    per-dimension rollups when they name one dimension in all, else the combined ones.
    Columns: at, window, keys..., measures; a (window, key) whose window holds no bucket is
    not returned."""
    every_value = where is None and by is None
    where, by = where or {}, by or []
    if every_value or len(where) + len(by) <= 1:  # the per-dimension rollups
        tables = tuple(rollup.per_value(grain) for grain in ("1d", "1h", "1m"))
        if every_value:
            return _summed_in_intervals(client, rollup, intervals, measures, tables, KEYS, [], {},
                                    KEYS, [KEYS])
        (dimension, value), = where.items() if where else [(by[0] if by else "", None)]
        conditions, params = ["dimension = {dimension:String}"], {"dimension": dimension}
        if value is not None:
            conditions.append("dimension_value = {value:String}")
            params["value"] = value
        key = f"concat({_quote(by[0] + '=')}, dimension_value)" if by else "''"
    else:
        conditions, params, key, _ = _filter(rollup, where, by)
        tables = rollup.day_table, rollup.hour_table, rollup.minute_table
    return _summed_in_intervals(client, rollup, intervals, measures, tables, [f"{key} AS key"],
                            conditions, params, ["key"], [["key"]])


def window_totals_sets(client: Client, rollup: Rollup, intervals: pl.DataFrame,
                       measures: list[str], selections: list[tuple[dict[str, str], list[str]]]
                       ) -> list[pl.DataFrame]:
    """`window_totals(..., where, by)` for many (where, by) selections of the combined
    rollups in one pass over them: the buckets are grouped by GROUPING SETS (one per set of
    dimensions a selection names) and each selection takes its set's rows with its `where`
    values. Returns one frame per selection, in order (columns at, window, key, measures)."""
    groupings = sorted({tuple(sorted({*where, *by})) for where, by in selections})
    dimensions = sorted({d for g in groupings for d in g})
    columns = [rollup.dimensions[d] for d in dimensions]
    mask = f"grouping({', '.join(columns)})" if columns else "0"
    frame = _summed_in_intervals(
        client, rollup, intervals, measures,
        (rollup.day_table, rollup.hour_table, rollup.minute_table), columns,
        [], {}, [*columns, f"{mask} AS grouping_mask"],
        [[rollup.dimensions[d] for d in g] for g in groupings])
    sets = frame.partition_by("grouping_mask", as_dict=True)
    out = []
    for where, by in selections:
        wanted = set(where) | set(by)
        bits = sum(1 << (len(columns) - 1 - i) for i, d in enumerate(dimensions)
                   if d not in wanted)  # grouping(): a bit is 1 where a column is not grouped
        part = sets.get((bits,), frame.clear())
        for dimension, value in where.items():
            part = part.filter(pl.col(rollup.dimensions[dimension]) == value)
        key = pl.concat_str([pl.lit(f"{d}=") + pl.col(rollup.dimensions[d]) for d in by],
                            separator=",") if by else pl.lit("")
        out.append(part.with_columns(key=key).select("at", "window", "key", *measures))
    return out


def _summed_in_intervals(client: Client, rollup: Rollup, intervals: pl.DataFrame,
                         measures: list[str], tables: tuple[str, str, str], source: list[str],
                         conditions: list[str], params: dict, groups: list[str],
                         sets: list[list[str]]) -> pl.DataFrame:
    """The SQL behind `window_totals`: each interval is split into whole days, the whole hours
    and the minutes at its edges (`windows.day_edges`); the day, hour and minute buckets of
    `tables` that `conditions` select and some interval needs are read once and summed per
    (interval, group), grouped by the interval and the columns of `sets` (GROUPING SETS when
    there are several). `source` are the key expressions read from the tables, `groups` the
    selected ones (each `expr AS name` or a name). Columns: at, window, the group names,
    measures; an (interval, group) without buckets is left out."""
    ranges = [day_edges(start, at) for at, start in zip(intervals.get_column("at").to_list(),
                                                        intervals.get_column("start").to_list())]
    scalars, buckets = rollup.split(measures)
    names = [g.split(" AS ")[-1] for g in groups]
    base = " AND ".join(conditions) or "1"
    grouping_sets = ", ".join("(" + ", ".join(["interval_id", *g]) + ")" for g in sets)
    group_by = (f"GROUPING SETS ({grouping_sets})"
                if len(sets) > 1 or not sets[0] or "grouping_mask" in names
                else ", ".join(["interval_id", *sets[0]]))
    params = dict(params)
    if len(ranges) == 1:
        buckets_in = _one_interval(rollup, ranges[0], scalars, buckets, tables, source, base,
                                   params)
    else:
        buckets_in = _many_intervals(rollup, ranges, scalars, buckets, tables, source, base,
                                     params)
    sql = (f"SELECT interval_id, {', '.join(groups)}, {rollup.aggregates(measures, summed=True)} "
           f"FROM {buckets_in} GROUP BY {group_by}")
    frame = _read(client, sql, params)
    numbered = intervals.with_row_index("interval_id", offset=1).with_columns(
        pl.col("interval_id").cast(pl.Int64))
    extra = [c for c in intervals.columns if c not in ("at", "window", "start")]
    summed = numbered.join(frame.with_columns(pl.col("interval_id").cast(pl.Int64)),
                           on="interval_id")
    return summed.select("at", "window", *extra, *names, *measures)


EDGES = ("d", "h1", "h2", "m1", "m2")  # the parts of `day_edges`, as parameter names
LEVELS = ((2, "day", ("d",)), (1, "hour", ("h1", "h2")), (0, "minute", ("m1", "m2")))


def _one_interval(rollup: Rollup, edges: tuple, scalars: list[str], buckets: bool,
                  tables: tuple[str, str, str], source: list[str], base: str,
                  params: dict) -> str:
    """The buckets of one interval as rows (interval_id 1, the keys, each measure): the day,
    hour and minute buckets inside its parts, summed once by the caller. No interval lists
    and no sums per table first: a statement of fewer steps is cheaper to plan, and planning
    is most of what a read of a few hundred buckets costs (bench/RESULTS.md)."""
    rows = ", ".join([*source, *[f"{rollup.scalar(m)} AS {m}" for m in scalars]]
                     + (["latency_buckets"] if buckets else []))
    parts = dict(zip(EDGES, edges))
    arms = []
    for level, column, names in LEVELS:
        used = [n for n in names if parts[n][0] < parts[n][1]]
        if not used:
            continue
        for n in used:
            params[f"{n}_from"], params[f"{n}_to"] = parts[n]
        inside = " OR ".join(f"({column} >= {{{n}_from:DateTime('UTC')}} AND {column} < "
                             f"{{{n}_to:DateTime('UTC')}})" for n in used)
        arms.append(f"SELECT toUInt64(1) AS interval_id, {rows} FROM {tables[2 - level]} "
                    f"WHERE {base} AND ({inside})")
    return "(" + (" UNION ALL ".join(arms) or
                  f"SELECT toUInt64(1) AS interval_id, {rows} FROM {tables[2]} WHERE 0") + ")"


def _many_intervals(rollup: Rollup, ranges: list[tuple], scalars: list[str], buckets: bool,
                    tables: tuple[str, str, str], source: list[str], base: str,
                    params: dict) -> str:
    """The buckets some interval needs, each tagged with the list of the intervals it lies in
    and ARRAY JOINed to them (rows interval_id, the keys, each measure). Buckets with the same
    list and key are summed first (few distinct lists), so the per-interval sums merge few
    partial states."""
    levels = []  # (level, time column, table, the buckets needed)
    days = [r[0] for r in ranges if r[0][0] < r[0][1]]
    if days:
        params.update(dlo=min(d[0] for d in days), dhi=max(d[1] for d in days))
        levels.append((2, "day", tables[0], "day >= {dlo:DateTime('UTC')} AND day < "
                       "{dhi:DateTime('UTC')}"))
    hours = sorted({h for r in ranges for lo, hi in r[1:3] for h in _steps(lo, hi, HOUR)})
    if hours:
        params.update(hours=hours, hlo=hours[0], hhi=hours[-1] + HOUR)
        levels.append((1, "hour", tables[1], "hour IN {hours:Array(DateTime('UTC'))} AND hour "
                       ">= {hlo:DateTime('UTC')} AND hour < {hhi:DateTime('UTC')}"))
    minute_hours = sorted({floor_hour(lo) for r in ranges for lo, hi in r[3:] if lo < hi})
    if minute_hours:
        params.update(mh=minute_hours, mlo=minute_hours[0], mhi=minute_hours[-1] + HOUR)
        levels.append((0, "minute", tables[2], "toStartOfHour(minute) IN "
                       "{mh:Array(DateTime('UTC'))} AND minute >= {mlo:DateTime('UTC')} AND "
                       "minute < {mhi:DateTime('UTC')}"))
    columns = ", ".join([*source, *[f"sum({rollup.scalar(m)}) AS {m}" for m in scalars]]
                        + (["sumMap(latency_buckets) AS latency_buckets"] if buckets else []))
    bounds = {}
    for j, name in enumerate(EDGES):
        params[f"{name}s"] = [r[j][0] for r in ranges]
        params[f"{name}e"] = [r[j][1] for r in ranges]
        bounds[name] = (f"{{time}} >= {{{{{name}s:Array(DateTime('UTC'))}}}}[i] AND "
                        f"{{time}} < {{{{{name}e:Array(DateTime('UTC'))}}}}[i]")
    inside = {2: bounds["d"], 1: f"({bounds['h1']}) OR ({bounds['h2']})",
              0: f"({bounds['m1']}) OR ({bounds['m2']})"}
    keys = ", ".join(["interval_ids", *(k.split(" AS ")[-1] for k in source)])
    union = " UNION ALL ".join(
        f"SELECT arrayFilter(i -> {inside[level].format(time=column)}, "
        f"range(1, {len(ranges) + 1})) AS interval_ids, {columns} FROM {table} "
        f"WHERE {base} AND {where} GROUP BY {keys}"
        for level, column, table, where in levels) or \
        f"SELECT CAST([], 'Array(UInt64)') AS interval_ids, {columns} FROM {tables[2]} " \
        f"WHERE 0 GROUP BY {keys}"
    return f"({union}) ARRAY JOIN interval_ids AS interval_id"


def _steps(lo: datetime, hi: datetime, step: timedelta) -> list[datetime]:
    """lo, lo + step, ... before hi."""
    return [lo + step * i for i in range(int((hi - lo) / step))]


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fill_windows(sums: pl.DataFrame, intervals: pl.DataFrame, keys: list[str],
                 measures: list[str]) -> pl.DataFrame:
    """Window sums with a row for every window of a point for each key that has a row at
    that point (zeros where its window held no bucket), as the engines of
    `metrics.window_sums` give."""
    grid = sums.select("at", *keys).unique().join(intervals.select("at", "window"), on="at")
    return grid.join(sums, on=["at", "window", *keys], how="left").with_columns(
        pl.col(m).fill_null(0) for m in measures)


def rollup_window_sums(client: Client, rollup: Rollup, intervals: pl.DataFrame,
                       measures: list[str], where: dict[str, str] | None = None,
                       by: list[str] | None = None) -> pl.DataFrame:
    """Sums of `measures` over every (at, window, start) of `intervals`: columns at, window,
    keys..., measures; keyed by dimension value as in `window_totals` (`where`/`by` as
    there). A key with buckets in some window of a point has a row for every window of that
    point (zeros where a window holds none). Few points are summed inside ClickHouse
    (`window_totals`), many from hour rows and minute segments (`dense_window_sums`) or,
    filtered or grouped, from hour and minute rows (`asof_window_sums`); all give the same
    sums."""
    keys = KEYS if where is None and by is None else ["key"]
    if intervals.get_column("at").n_unique() <= FEW_POINTS:
        sums = fill_windows(window_totals(client, rollup, intervals, measures, where, by),
                            intervals, keys, measures)
        return labels_categorical(sums, keys) if keys == KEYS else sums
    times = sorted(set(intervals.get_column("at").to_list()) | set(
        intervals.get_column("start").to_list()))
    where, by = where or {}, by or []
    if keys == KEYS:
        return _dense(client, rollup, intervals, measures)
    if len(where) + len(by) <= 1:  # one dimension: the much smaller per-dimension rollups
        (dimension, value), = where.items() if where else [(by[0] if by else "", None)]
        hourly, minutely = one_dimension(client, rollup, (min(times), max(times)),
                                         partial_hours_of(times), dimension,
                                         value if where else None, measures)
        key_of = pl.lit("") if not by else pl.lit(f"{dimension}=") + pl.col("dimension_value")
        hourly, minutely = (f.with_columns(key=key_of).drop("dimension", "dimension_value")
                            for f in (hourly, minutely))
    else:
        hourly = filtered_hours(client, rollup, min(times), max(times), where, by, measures)
        minutely = filtered_minutes(client, rollup, partial_hours_of(times), where, by,
                                    measures)
    return asof_window_sums(hourly, minutely, intervals, keys, measures)


def rollup_window_reduce(client: Client, rollup: Rollup, intervals: pl.DataFrame,
                         measures: list[str], reduce: Reduce) -> pl.DataFrame:
    """`rollup_window_sums` by every dimension value, handed to `reduce` (see
    `window_sums.dense_window_reduce`) instead of returned: rows at, window, dimension,
    dimension_value and the columns `reduce` returns. For SLIs that need a few numbers per
    row from many sums (percentiles from a histogram's buckets)."""
    if intervals.get_column("at").n_unique() <= FEW_POINTS:
        sums = fill_windows(window_totals(client, rollup, intervals, measures), intervals, KEYS,
                            measures)
        matrix = sums.select(measures).to_numpy().T if sums.height else \
            np.zeros((len(measures), 0), dtype=np.int64)
        outputs = reduce(measures, np.ascontiguousarray(matrix, dtype=np.int64))
        return labels_categorical(sums.select("at", "window", *KEYS), KEYS).hstack(
            [pl.Series(name, values) for name, values in outputs.items()])
    return _dense(client, rollup, intervals, measures, reduce)


def _dense(client: Client, rollup: Rollup, intervals: pl.DataFrame, measures: list[str],
           reduce: Reduce | None = None) -> pl.DataFrame:
    """Many points by every dimension value: hour rows and minute segments, summed (or
    reduced) in numpy."""
    ranges, cuts = minute_cuts(intervals)
    times = [*intervals.get_column("at").to_list(), *intervals.get_column("start").to_list()]
    hourly = rollup_hours(client, rollup, min(times), max(times))
    segments = rollup_segments(client, rollup, ranges, cuts)
    if reduce is None:
        return dense_window_sums(hourly, segments, cuts, intervals, KEYS, measures)
    return dense_window_reduce(hourly, segments, cuts, intervals, KEYS, measures, reduce)
