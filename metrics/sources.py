"""ClickHouse -> Polars: the only place the batch layer reads storage.

Rollups are read from their per-dimension tables (schemas/clickhouse/0006), giving frames keyed
by (`dimension`, `dimension_value`) where dimension is '' for the overall row; SLOs that filter
and group by several dimensions read the combined rollups (`filtered_hours`/`_minutes`). Raw event kinds the
rollups do not cover are read as rows. Everything arrives as Arrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from clickhouse_connect.driver.client import Client

from metrics.latency import BUCKET_COUNT
from metrics.windows import (
    HOUR,
    day_edges,
    dense_window_sums,
    floor_hour,
    minute_cuts,
    window_sums,
)
from metrics.windows import partial_hours as partial_hours_of

KEYS = ["dimension", "dimension_value"]

# dimension name -> rollup column (the combined rollups; the per-dimension ones use the names).
DECISION_DIMENSIONS = {"team": "team", "service": "service", "policy": "policy_id",
                       "engine": "engine", "environment": "environment", "cluster": "cluster"}
GATE_DIMENSIONS = {"team": "team", "service": "service", "policy": "policy_id",
                   "environment": "environment", "cluster": "cluster"}


@dataclass(frozen=True)
class Rollup:
    """A set of rollup tables (minute, hour, day) and the measures the SLIs read from them:
    plain sums, plus (for decisions) the latency histogram as columns b0..b71."""

    minute_table: str
    hour_table: str
    day_table: str
    dimensions: dict[str, str]
    sums: tuple[str, ...]
    histogram: bool = False

    @property
    def measures(self) -> list[str]:
        buckets = [f"b{i}" for i in range(BUCKET_COUNT)] if self.histogram else []
        return [*self.sums, *buckets]

    def scalar(self, measure: str) -> str | None:
        """SQL of a measure that is one number per rollup row (None for a histogram bucket):
        a sum column, or `under_<n>`, the decisions in latency buckets 1..n (at or under
        BOUNDS[n-1] seconds), for readers that need no more of the histogram."""
        if measure in self.sums:
            return measure
        if self.histogram and measure.startswith("under_"):
            return (f"arraySum(mapValues(mapFilter((k, v) -> k >= 1 AND k <= "
                    f"{int(measure[6:])}, latency_buckets)))")
        return None

    def split(self, measures: list[str] | None) -> tuple[list[str], bool]:
        """(the scalar measures, whether histogram buckets are wanted)."""
        wanted = self.measures if measures is None else measures
        scalars = [m for m in wanted if self.scalar(m) is not None]
        return scalars, len(scalars) < len(wanted)

    def aggregates(self, measures: list[str] | None = None, *, summed: bool = False) -> str:
        """The inner query's aggregates (of `measures`, default all) over rollup rows, or
        over rows that already hold each scalar measure by name (`summed`): one sumMap for
        the histogram, not one per bucket."""
        scalars, buckets = self.split(measures)
        parts = [f"toInt64(sum({m if summed else self.scalar(m)})) AS {m}" for m in scalars]
        if buckets:
            parts.append("sumMap(latency_buckets) AS lb")
        return ", ".join(parts)

    def projection(self, measures: list[str] | None = None) -> str:
        """The outer query's measure columns: the scalars, and the histogram as its bucket
        indexes and counts (two arrays; `_read` spreads them into bucket columns)."""
        scalars, buckets = self.split(measures)
        return ", ".join([*scalars] + (["mapKeys(lb) AS lb_keys, mapValues(lb) AS lb_counts"]
                                       if buckets else []))


DECISIONS = Rollup("decisions_1m", "decisions_1h", "decisions_1d", DECISION_DIMENSIONS,
                   ("total", "errors", "denies", "warns", "latency_count"), histogram=True)
GATES = Rollup("gates_1m", "gates_1h", "gates_1d", GATE_DIMENSIONS, ("total", "blocked", "overridden"))


def _grouped_sql(rollup: Rollup, table: str, time_column: str, where: str,
                 measures: list[str] | None = None) -> str:
    """Rows of a per-dimension rollup (`<table>` with `dims_` before its grain suffix),
    merged per (time, dimension, value): what the background merge has not merged yet."""
    return (f"SELECT t, dimension, dimension_value, {rollup.projection(measures)} FROM ("
            f"SELECT {time_column} AS t, dimension, dimension_value, "
            f"{rollup.aggregates(measures)} FROM {_dims(table)} WHERE {where} "
            f"GROUP BY {time_column}, dimension, dimension_value)")


def one_dimension(client: Client, rollup: Rollup, times: tuple[datetime, datetime],
                  hours: list[datetime], dimension: str, value: str | None,
                  measures: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(hour rows, minute rows of `hours`) of one dimension ('' = overall), optionally one
    value of it, from the per-dimension rollups: for SLOs with one `where` or one `by`."""
    condition = "dimension = {dimension:String}"
    params: dict = {"dimension": dimension}
    if value is not None:
        condition += " AND dimension_value = {value:String}"
        params["value"] = value
    hourly = _frame(client, _grouped_sql(
        rollup, rollup.hour_table, "hour", condition + " AND hour >= {start:DateTime('UTC')} "
        "AND hour < {end:DateTime('UTC')}", measures),
        {**params, "start": floor_hour(times[0]), "end": times[1]})
    if not hours:
        return hourly, hourly.clear()
    minutely = _frame(client, _grouped_sql(
        rollup, rollup.minute_table, "minute", condition + " AND minute >= "
        "{lo:DateTime('UTC')} AND minute < {hi:DateTime('UTC')} AND toStartOfHour(minute) IN "
        "{hours:Array(DateTime('UTC'))}", measures),
        {**params, "lo": min(hours), "hi": max(hours) + timedelta(hours=1), "hours": hours})
    return hourly, minutely


def _steps(lo: datetime, hi: datetime, step: timedelta) -> list[datetime]:
    """lo, lo + step, ... before hi."""
    return [lo + step * i for i in range(int((hi - lo) / step))]


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _dims(table: str) -> str:
    name, grain = table.rsplit("_", 1)
    return f"{name}_dims_{grain}"


def _read(client: Client, sql: str, parameters: dict) -> pl.DataFrame:
    """A rollup query's rows; a histogram (lb_keys, lb_counts) becomes bucket columns b0..
    (of every bucket: reading a subset of the map is no cheaper than reading all of it)."""
    table = client.query_arrow(sql, parameters=parameters)
    if "lb_keys" not in table.column_names:
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame
    keys, counts = (table.column(c).combine_chunks() for c in ("lb_keys", "lb_counts"))
    dense = np.zeros((table.num_rows, BUCKET_COUNT), dtype=np.int64)
    lengths = np.diff(keys.offsets.to_numpy()) if len(keys) else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(table.num_rows), lengths)
    dense[rows, keys.flatten().to_numpy().astype(np.int64)] = counts.flatten().to_numpy()
    frame = pl.from_arrow(table.drop_columns(["lb_keys", "lb_counts"]))
    assert isinstance(frame, pl.DataFrame)
    return frame.hstack([pl.Series(f"b{i}", dense[:, i]) for i in range(BUCKET_COUNT)])


def _frame(client: Client, sql: str, parameters: dict) -> pl.DataFrame:
    frame = _read(client, sql, parameters)
    return frame.with_columns(utc_datetime(frame, "t"))


def utc_datetime(frame: pl.DataFrame, column: str) -> pl.Expr:
    """A ClickHouse DateTime arrives in Arrow as seconds (an integer): make it a UTC datetime."""
    if frame.schema[column].is_integer():
        return pl.from_epoch(pl.col(column).cast(pl.Int64), time_unit="s").dt.replace_time_zone(
            "UTC").cast(pl.Datetime("us", "UTC")).alias(column)
    return pl.col(column).cast(pl.Datetime("us", "UTC"))


def rollup_hours(client: Client, rollup: Rollup, start: datetime, end: datetime
                 ) -> pl.DataFrame:
    """Hour buckets from the hour of `start` up to `end`, per dimension value. The hour
    holding `start` is included: window sums take whole hours from there (windows.py)."""
    start = floor_hour(start)
    sql = _grouped_sql(rollup, rollup.hour_table, "hour",
                       "hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}")
    return _frame(client, sql, {"start": start, "end": end})


def rollup_minutes(client: Client, rollup: Rollup, hours: list[datetime]) -> pl.DataFrame:
    """Minute buckets of the given hours, per dimension value."""
    if not hours:
        return _frame(client, _grouped_sql(rollup, rollup.minute_table, "minute", "0"), {})
    where = ("toStartOfHour(minute) IN {hours:Array(DateTime('UTC'))} AND "
             "minute >= {lo:DateTime('UTC')} AND minute < {hi:DateTime('UTC')}")
    return _frame(client, _grouped_sql(rollup, rollup.minute_table, "minute", where),
                  {"hours": hours, "lo": min(hours), "hi": max(hours) + timedelta(hours=1)})


def rollup_segments(client: Client, rollup: Rollup, ranges: list[tuple[datetime, int, int]],
                    cuts: list[int]) -> pl.DataFrame:
    """Minute buckets of the hours named in `ranges` ((hour, from minute, to minute), see
    `windows.minute_cuts`), summed per segment between `cuts`, per dimension value: columns
    h, seg, dimension, dimension_value, measures. Only minutes some range covers are read."""
    if not ranges:
        return _frame(client, _grouped_sql(rollup, rollup.minute_table, "minute", "0"),
                      {}).rename({"t": "h"}).with_columns(seg=pl.lit(0, pl.Int64))
    hours = sorted({r[0] for r in ranges})
    where = ("toStartOfHour(minute) IN {hours:Array(DateTime('UTC'))} AND minute >= "
             "{lo:DateTime('UTC')} AND minute < {hi:DateTime('UTC')} AND toMinute(minute) >= "
             "{first:UInt8} AND toMinute(minute) < {last:UInt8}")
    sql = (f"SELECT h, seg, dimension, dimension_value, {rollup.projection()} FROM ("
           "SELECT toStartOfHour(minute) AS h, arrayCount(c -> c <= toMinute(minute), "
           "{cuts:Array(UInt8)}) AS seg, dimension, dimension_value, "
           f"{rollup.aggregates()} FROM {_dims(rollup.minute_table)} WHERE {where} "
           "GROUP BY h, seg, dimension, dimension_value)")
    frame = _read(client, sql, {"hours": hours, "lo": hours[0], "hi": hours[-1] + HOUR,
                                "first": min(r[1] for r in ranges),
                                "last": max(r[2] for r in ranges), "cuts": cuts})
    return frame.with_columns(utc_datetime(frame, "h"), pl.col("seg").cast(pl.Int64))


def events(client: Client, kind: str, columns: list[str], start: datetime, end: datetime
           ) -> pl.DataFrame:
    """Raw rows of one event kind with event_time in [start, end), oldest first."""
    cols = ", ".join(["event_time", *columns])
    sql = (f"SELECT {cols} FROM policy_events WHERE event_kind = {{kind:String}} AND "
           "event_time >= {start:DateTime64(3, 'UTC')} AND event_time < "
           "{end:DateTime64(3, 'UTC')} ORDER BY event_time")
    table = client.query_arrow(sql, parameters={"kind": kind, "start": start, "end": end})
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(utc_datetime(frame, "event_time"))


def report_histories(client: Client, kind: str, entity: str, keys: list[str],
                     values: list[str], start: datetime, end: datetime,
                     points: list[datetime]) -> pl.DataFrame:
    """The reports of one kind in [start, end) as histories: one row per state an entity
    reported in, (entity, keys..., values...), with `event_times`: the ascending times of its
    reports in that state that can be the latest report before one of `points`, far fewer
    than all of them:

    - few points (a scheduled run): per point, the state's last report before it;
    - many points (a backfill): the state's last report in each hour, and every report of an
      hour holding a point that is not on the hour. A dropped report has a later one in its
      hour, so that one is also before any point at or after the end of the hour.
    A dropped report is never the latest before a point, so the latest reports found over the
    histories (`metrics.sli.latest`) are exactly those over all reports. Grouped in
    ClickHouse, each state's strings are sent once, not once per report."""
    group = ", ".join([entity, *keys, *values])
    params: dict = {"kind": kind, "start": start, "end": end}
    where = ("event_kind = {kind:String} AND event_time >= {start:DateTime64(3, 'UTC')} AND "
             "event_time < {end:DateTime64(3, 'UTC')}")
    if len(points) <= FEW_POINTS:
        lasts = []
        for i, at in enumerate(points):
            params[f"p{i}"] = at
            lasts.append(f"maxIf(event_time, event_time < {{p{i}:DateTime64(3, 'UTC')}})")
        # maxIf over no report is 1970, which `t >= start` drops
        sql = (f"SELECT {group}, arraySort(arrayDistinct(arrayFilter("
               f"t -> t >= {{start:DateTime64(3, 'UTC')}}, [{', '.join(lasts)}]))) AS "
               f"event_times FROM policy_events WHERE {where} GROUP BY {group}")
    else:
        keep = "hour != next"  # the last report of its hour (hours since the epoch)
        partial = [int(h.timestamp()) // 3600 for h in partial_hours_of(points)]
        if partial:
            keep += " OR has({partial:Array(Int64)}, hour)"
            params["partial"] = partial
        sql = (f"SELECT {group}, arrayFilter((t, hour, next) -> {keep}, times, hours, "
               "arrayPushBack(arrayPopFront(hours), -1)) AS event_times FROM ("
               f"SELECT {group}, arraySort(groupArray(event_time)) AS times, "
               "arrayMap(t -> intDiv(toUnixTimestamp64Milli(t), 3600000), times) AS hours "
               f"FROM policy_events WHERE {where} GROUP BY {group})")
    frame = pl.from_arrow(client.query_arrow(sql, parameters=params))
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(pl.col("event_times").cast(pl.List(pl.Datetime("us", "UTC"))))


FEW_POINTS = 8


def table_rows(client: Client, sql: str, parameters: dict) -> pl.DataFrame:
    """Rows of a named query over a batch-layer table (triage verdicts, alert history)."""
    frame = pl.from_arrow(client.query_arrow(sql, parameters=parameters))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _filter(rollup: Rollup, where: dict[str, str], by: list[str]
            ) -> tuple[list[str], dict, str, list[str]]:
    """For the combined rollups: conditions selecting the `where` values (bound parameters),
    the `key` expression joining the by-values as 'team=payments,cluster=prod' ('' when no
    by), and the columns to group by."""
    params: dict = {}
    conditions = []
    for i, (dimension, value) in enumerate(sorted(where.items())):
        conditions.append(f"{rollup.dimensions[dimension]} = {{w{i}:String}}")
        params[f"w{i}"] = value
    columns = [rollup.dimensions[d] for d in by]
    key = "concat(" + ", ',', ".join(f"'{d}=', toString({c})" for d, c in zip(by, columns)) \
        + ")" if by else "''"
    return conditions, params, key, columns


def _filtered_sql(rollup: Rollup, table: str, time_column: str, time_where: str,
                  where: dict[str, str], by: list[str], measures: list[str] | None = None
                  ) -> tuple[str, dict]:
    """Rollup rows filtered by dimension values (bound) and grouped by `by` dimensions,
    keyed by `key` (see `_filter`)."""
    conditions, params, key, columns = _filter(rollup, where, by)
    conditions.insert(0, time_where)
    group = ", ".join([time_column, *columns])
    sql = (f"SELECT t, key, {rollup.projection(measures)} FROM (SELECT {time_column} AS t, "
           f"{key} AS key, {rollup.aggregates(measures)} FROM {table} "
           f"WHERE {' AND '.join(conditions)} GROUP BY {group})")
    return sql, params


def filtered_hours(client: Client, rollup: Rollup, start: datetime, end: datetime,
                   where: dict[str, str], by: list[str], measures: list[str] | None = None
                   ) -> pl.DataFrame:
    """Like rollup_hours, filtered by `where`, keyed by the `by` values, only `measures`."""
    start = floor_hour(start)
    sql, params = _filtered_sql(rollup, rollup.hour_table, "hour",
                                "hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}",
                                where, by, measures)
    return _frame(client, sql, {**params, "start": start, "end": end})


def filtered_minutes(client: Client, rollup: Rollup, hours: list[datetime],
                     where: dict[str, str], by: list[str], measures: list[str] | None = None
                     ) -> pl.DataFrame:
    if not hours:
        sql, params = _filtered_sql(rollup, rollup.minute_table, "minute", "0", where, by,
                                    measures)
        return _frame(client, sql, params)
    sql, params = _filtered_sql(
        rollup, rollup.minute_table, "minute",
        "toStartOfHour(minute) IN {hours:Array(DateTime('UTC'))} AND "
        "minute >= {lo:DateTime('UTC')} AND minute < {hi:DateTime('UTC')}", where, by, measures)
    return _frame(client, sql, {**params, "hours": hours, "lo": min(hours),
                                "hi": max(hours) + timedelta(hours=1)})


def window_totals(client: Client, rollup: Rollup, spans: pl.DataFrame, measures: list[str],
                  where: dict[str, str] | None = None, by: list[str] | None = None
                  ) -> pl.DataFrame:
    """Exact sums of `measures` over every (at, window, start) row of `spans`, summed inside
    ClickHouse (`_summed_in_spans`). Few rows travel, so this is the reader for runs at a few
    points (every minute's run, alert evaluation); `dense_window_sums` over hour rows and
    minute segments is the one for many points (a backfill).

    Without `where`/`by`: every dimension value and the overall row, keyed by `KEYS`. With
    them: the rows `where` selects, keyed by the by-values (`key`, see `_filter`) -- from the
    per-dimension rollups when they name one dimension in all, else the combined ones.
    Columns: at, window, keys..., measures; a (window, key) whose window holds no bucket is
    not returned."""
    every_value = where is None and by is None
    where, by = where or {}, by or []
    if every_value or len(where) + len(by) <= 1:  # the per-dimension rollups
        tables = tuple(_dims(t) for t in (rollup.day_table, rollup.hour_table,
                                          rollup.minute_table))
        if every_value:
            return _summed_in_spans(client, rollup, spans, measures, tables, KEYS, [], {},
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
    return _summed_in_spans(client, rollup, spans, measures, tables, [f"{key} AS key"],
                            conditions, params, ["key"], [["key"]])


def window_totals_sets(client: Client, rollup: Rollup, spans: pl.DataFrame,
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
    frame = _summed_in_spans(
        client, rollup, spans, measures,
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


def _summed_in_spans(client: Client, rollup: Rollup, spans: pl.DataFrame, measures: list[str],
                     tables: tuple[str, str, str], source: list[str], conditions: list[str],
                     params: dict, groups: list[str], sets: list[list[str]]) -> pl.DataFrame:
    """The SQL behind `window_totals`: each span is split into whole days, the whole hours
    and the minutes at its edges (`windows.day_edges`); the day, hour and minute buckets of
    `tables` that `conditions` select and some span needs are read once, and summed per span
    per (span, group): ARRAY JOIN of the spans each bucket lies in, then GROUP BY the span
    and the columns of `sets` (GROUPING SETS when there are several). `source` are the key
    expressions read from the tables, `groups` the selected ones (each `expr AS name` or a
    name). Columns: at, window, the group names, measures; a (span, group) without buckets
    is left out."""
    ranges = [day_edges(start, at) for at, start in zip(spans.get_column("at").to_list(),
                                                        spans.get_column("start").to_list())]
    params = dict(params)
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
    scalars, buckets = rollup.split(measures)
    source_names = [k.split(" AS ")[-1] for k in source]
    columns = ", ".join([*source, *[f"sum({rollup.scalar(m)}) AS {m}" for m in scalars]]
                        + (["sumMap(latency_buckets) AS latency_buckets"] if buckets else []))
    base = " AND ".join(conditions) or "1"
    names = [g.split(" AS ")[-1] for g in groups]
    bounds = {}
    for j, name in enumerate(("d", "h1", "h2", "m1", "m2")):
        params[f"{name}s"], params[f"{name}e"] = [r[j][0] for r in ranges], [r[j][1] for r in ranges]
        bounds[name] = (f"{{time}} >= {{{{{name}s:Array(DateTime('UTC'))}}}}[i] AND "
                        f"{{time}} < {{{{{name}e:Array(DateTime('UTC'))}}}}[i]")
    inside = {2: bounds["d"], 1: f"({bounds['h1']}) OR ({bounds['h2']})",
              0: f"({bounds['m1']}) OR ({bounds['m2']})"}
    # each bucket's list of the spans it lies in; buckets with the same list and key are
    # summed first (few distinct lists), so the per-span sums merge few partial states
    union = " UNION ALL ".join(
        f"SELECT arrayFilter(i -> {inside[level].format(time=column)}, range(1, "
        f"{len(ranges) + 1})) AS pairs, {columns} FROM {table} WHERE {base} AND {where} "
        f"GROUP BY {', '.join(['pairs', *source_names])}"
        for level, column, table, where in levels) or \
        f"SELECT CAST([], 'Array(UInt64)') AS pairs, {columns} FROM {tables[2]} WHERE 0 " \
        f"GROUP BY {', '.join(['pairs', *source_names])}"
    group_by = (f"GROUPING SETS ({', '.join('(' + ', '.join(['pair', *g]) + ')' for g in sets)})"
                if len(sets) > 1 or not sets[0] or "grouping_mask" in names
                else ", ".join(["pair", *sets[0]]))
    sql = (f"SELECT pair, {', '.join(names)}, {rollup.projection(measures)} FROM ("
           f"SELECT pair, {', '.join(groups)}, {rollup.aggregates(measures, summed=True)} "
           f"FROM ({union}) ARRAY JOIN pairs AS pair GROUP BY {group_by})")
    frame = _read(client, sql, params)
    numbered = spans.with_row_index("pair", offset=1).with_columns(pl.col("pair").cast(pl.Int64))
    extra = [c for c in spans.columns if c not in ("at", "window", "start")]
    summed = numbered.join(frame.with_columns(pl.col("pair").cast(pl.Int64)), on="pair")
    return summed.select("at", "window", *extra, *names, *measures)


def fill_windows(sums: pl.DataFrame, spans: pl.DataFrame, keys: list[str],
                 measures: list[str]) -> pl.DataFrame:
    """Window sums with a row for every window of a point for each key that has a row at
    that point (zeros where its window held no bucket), as `windows.window_sums` gives."""
    grid = sums.select("at", *keys).unique().join(spans.select("at", "window"), on="at")
    return grid.join(sums, on=["at", "window", *keys], how="left").with_columns(
        pl.col(m).fill_null(0) for m in measures)


def rollup_window_sums(client: Client, rollup: Rollup, spans: pl.DataFrame,
                       measures: list[str], where: dict[str, str] | None = None,
                       by: list[str] | None = None) -> pl.DataFrame:
    """Sums of `measures` over every (at, window, start) of `spans`: columns at, window,
    keys..., measures; keyed by dimension value as in `window_totals` (`where`/`by` as
    there). A key with buckets in some window of a point has a row for every window of that
    point (zeros where a window holds none). Few points are summed inside ClickHouse
    (`window_totals`), many from hour and minute rows (`windows.window_sums`); both give
    the same sums."""
    keys = KEYS if where is None and by is None else ["key"]
    if spans.get_column("at").n_unique() <= FEW_POINTS:
        return fill_windows(window_totals(client, rollup, spans, measures, where, by), spans,
                            keys, measures)
    times = sorted(set(spans.get_column("at").to_list()) | set(
        spans.get_column("start").to_list()))
    where, by = where or {}, by or []
    if keys == KEYS:
        ranges, cuts = minute_cuts(spans)
        return dense_window_sums(rollup_hours(client, rollup, min(times), max(times)),
                                 rollup_segments(client, rollup, ranges, cuts), cuts, spans,
                                 KEYS, measures)
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
    return window_sums(hourly, minutely, [], [], keys, measures, spans=spans)
