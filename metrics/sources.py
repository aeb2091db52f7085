"""ClickHouse -> Polars: the only place the batch layer reads storage.

Rollups are read from their per-dimension tables (schemas/clickhouse/0006), giving frames keyed
by (`dimension`, `dimension_value`) where dimension is '' for the overall row; SLOs that filter
and group by several dimensions read the combined rollups (`filtered_hours`/`_minutes`). Raw event kinds the
rollups do not cover are read as rows. Everything arrives as Arrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
from clickhouse_connect.driver.client import Client

from metrics.latency import BUCKET_COUNT
from metrics.windows import edges, floor_hour, window_sums
from metrics.windows import partial_hours as partial_hours_of

KEYS = ["dimension", "dimension_value"]

# dimension name -> rollup column (the combined rollups; the per-dimension ones use the names).
DECISION_DIMENSIONS = {"team": "team", "service": "service", "policy": "policy_id",
                       "engine": "engine", "environment": "environment", "cluster": "cluster"}
GATE_DIMENSIONS = {"team": "team", "service": "service", "policy": "policy_id",
                   "environment": "environment", "cluster": "cluster"}


@dataclass(frozen=True)
class Rollup:
    """A pair of rollup tables (minute, hour) and the measures the SLIs read from them:
    plain sums, plus (for decisions) the latency histogram as columns b0..b71."""

    minute_table: str
    hour_table: str
    dimensions: dict[str, str]
    sums: tuple[str, ...]
    histogram: bool = False

    @property
    def measures(self) -> list[str]:
        buckets = [f"b{i}" for i in range(BUCKET_COUNT)] if self.histogram else []
        return [*self.sums, *buckets]

    def aggregates(self, measures: list[str] | None = None) -> str:
        """The inner query's aggregates (of `measures`, default all): one sumMap for the
        histogram, not one per bucket."""
        wanted = self.measures if measures is None else measures
        parts = [f"toInt64(sum({m})) AS {m}" for m in self.sums if m in wanted]
        if any(m.startswith("b") and m[1:].isdigit() for m in wanted):
            parts.append("sumMap(latency_buckets) AS lb")
        return ", ".join(parts)

    def projection(self, measures: list[str] | None = None) -> str:
        """The outer query's measure columns."""
        wanted = self.measures if measures is None else measures
        return ", ".join(m if m in self.sums else f"toInt64(lb[{int(m[1:])}]) AS {m}"
                         for m in wanted)


DECISIONS = Rollup("decisions_1m", "decisions_1h", DECISION_DIMENSIONS,
                   ("total", "errors", "denies", "warns", "latency_count"), histogram=True)
GATES = Rollup("gates_1m", "gates_1h", GATE_DIMENSIONS, ("total", "blocked", "overridden"))


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


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _dims(table: str) -> str:
    name, grain = table.rsplit("_", 1)
    return f"{name}_dims_{grain}"


def _frame(client: Client, sql: str, parameters: dict) -> pl.DataFrame:
    table = client.query_arrow(sql, parameters=parameters)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
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


def latest_rows(client: Client, kind: str, entity: str, keys: list[str], values: list[str],
                start: datetime, end: datetime, points: list[datetime]) -> pl.DataFrame:
    """The rows of one kind that an as-of "latest row before `at`" per (entity, keys) can pick
    for any of `points`, far fewer than all rows:

    - few points (a scheduled run): per point, the latest row per (entity, keys) before it;
    - many points (a backfill): the latest row per (entity, keys, hour), plus the raw rows of
      the hours holding a point that is not on the hour. A reduced row lies wholly before any
      point at or after the end of its hour; inside the hour of a point the raw rows decide.
    Either way the as-of result is exactly that over all rows."""
    group = [entity, *keys]
    cols = ", ".join(group)
    latest = "".join(f", argMax({c}, event_time) AS {c}" for c in values)
    window = ("event_time >= {start:DateTime64(3, 'UTC')} AND "
              "event_time < {end:DateTime64(3, 'UTC')} AND event_kind = {kind:String}")
    params: dict = {"kind": kind, "start": start, "end": end}
    if len(points) <= FEW_POINTS:
        parts = []
        for i, at in enumerate(points):
            params[f"p{i}"] = at
            parts.append(f"SELECT max(event_time) AS latest_at, {cols}{latest} FROM "
                         f"policy_events WHERE {window} AND event_time < "
                         f"{{p{i}:DateTime64(3, 'UTC')}} GROUP BY {cols}")
        sql = " UNION ALL ".join(parts)
    else:
        sql = (f"SELECT max(event_time) AS latest_at, {cols}{latest} FROM policy_events "
               f"WHERE {window} GROUP BY {cols}, toStartOfHour(event_time)")
        partial = partial_hours_of(points)
        if partial:
            raw = ", ".join([*group, *values])
            sql += (f" UNION ALL SELECT event_time AS latest_at, {raw} FROM policy_events "
                    f"WHERE {window} AND toStartOfHour(event_time) IN "
                    "{hours:Array(DateTime('UTC'))}")
            params["hours"] = partial
    frame = pl.from_arrow(client.query_arrow(
        f"SELECT * FROM ({sql}) ORDER BY latest_at", parameters=params)).rename(
        {"latest_at": "event_time"})
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(utc_datetime(frame, "event_time"))


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
    ClickHouse: each window is split into whole hours and its two partial hours' minutes
    (`windows.edges`), every hour and minute bucket is matched to the windows it lies in, and
    the buckets are summed per (window, key). Few rows travel, so this is the reader for
    runs at a few points (every minute's run, alert evaluation); `windows.window_sums` over
    `rollup_hours`/`rollup_minutes` is the one for many points (a backfill).

    Without `where`/`by`: every dimension value and the overall row, keyed by `KEYS`. With
    them: the rows `where` selects, keyed by the by-values (`key`, see `_filter`) -- from the
    per-dimension rollups when they name one dimension in all, else the combined ones. Columns: at, window, keys..., measures; a
    (window, key) whose window holds no bucket is not returned."""
    every_value = where is None and by is None
    where, by = where or {}, by or []
    keys = KEYS if every_value else ["key"]
    ranges = [edges(start, at) for at, start in zip(spans.get_column("at").to_list(),
                                                    spans.get_column("start").to_list())]
    whole = [r[0] for r in ranges if r[0][0] < r[0][1]]
    parts = [p for r in ranges for p in r[1:] if p[0] < p[1]]
    minute_hours = sorted({floor_hour(p[0]) for p in parts})
    params: dict = {name: [r[i][j] for r in ranges] for name, i, j in (
        ("hs", 0, 0), ("he", 0, 1), ("ps", 1, 0), ("pe", 1, 1), ("qs", 2, 0), ("qe", 2, 1))}
    if every_value or len(where) + len(by) <= 1:  # the per-dimension rollups
        hour_table, minute_table = _dims(rollup.hour_table), _dims(rollup.minute_table)
        key_columns = source_keys = "dimension, dimension_value"
        conditions = []
        if not every_value:
            (dimension, value), = where.items() if where else [(by[0] if by else "", None)]
            conditions.append("dimension = {dimension:String}")
            params["dimension"] = dimension
            if value is not None:
                conditions.append("dimension_value = {value:String}")
                params["value"] = value
            key_columns = "key"
            source_keys = (f"concat({_quote(by[0] + '=')}, dimension_value) AS key" if by
                           else "'' AS key")
    else:
        conditions, filter_params, key, _ = _filter(rollup, where, by)
        params.update(filter_params)
        key_columns, source_keys = "key", f"{key} AS key"
        hour_table, minute_table = rollup.hour_table, rollup.minute_table
    wanted = rollup.measures if measures is None else measures
    columns = ", ".join([source_keys, *[m for m in rollup.sums if m in wanted]]
                        + (["latency_buckets"] if len(wanted) > len(
                            [m for m in rollup.sums if m in wanted]) else []))
    base = " AND ".join(conditions) or "1"
    if whole:
        params.update(hlo=min(r[0] for r in whole), hhi=max(r[1] for r in whole))
        hour_where = "hour >= {hlo:DateTime('UTC')} AND hour < {hhi:DateTime('UTC')}"
    else:
        hour_where = "0"
    if minute_hours:
        params.update(mh=minute_hours, mlo=minute_hours[0],
                      mhi=minute_hours[-1] + timedelta(hours=1))
        minute_where = ("toStartOfHour(minute) IN {mh:Array(DateTime('UTC'))} AND minute >= "
                        "{mlo:DateTime('UTC')} AND minute < {mhi:DateTime('UTC')}")
    else:
        minute_where = "0"
    arrays = {name: f"{{{name}:Array(DateTime('UTC'))}}" for name in
              ("hs", "he", "ps", "pe", "qs", "qe")}
    inside = ("if(whole = 1, t >= {hs}[i] AND t < {he}[i], (t >= {ps}[i] AND t < {pe}[i]) "
              "OR (t >= {qs}[i] AND t < {qe}[i]))").format(**arrays)
    sql = (f"SELECT pair, {key_columns}, {rollup.projection(measures)} FROM ("
           f"SELECT pair, {key_columns}, {rollup.aggregates(measures)} FROM ("
           f"SELECT hour AS t, 1 AS whole, {columns} FROM {hour_table} "
           f"WHERE {base} AND {hour_where} UNION ALL "
           f"SELECT minute AS t, 0 AS whole, {columns} FROM {minute_table} "
           f"WHERE {base} AND {minute_where}) "
           f"ARRAY JOIN arrayFilter(i -> {inside}, range(1, {len(ranges) + 1})) AS pair "
           f"GROUP BY pair, {key_columns})")
    frame = pl.from_arrow(client.query_arrow(sql, parameters=params))
    assert isinstance(frame, pl.DataFrame)
    numbered = spans.with_row_index("pair", offset=1).with_columns(pl.col("pair").cast(pl.Int64))
    extra = [c for c in spans.columns if c not in ("at", "window", "start")]
    sums = numbered.join(frame.with_columns(pl.col("pair").cast(pl.Int64)), on="pair")
    return sums.select("at", "window", *extra, *keys, *wanted)


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
        sums = window_totals(client, rollup, spans, measures, where, by)
        present = sums.select("at", *keys).unique()
        grid = present.join(spans.select("at", "window"), on="at")
        return grid.join(sums, on=["at", "window", *keys], how="left").with_columns(
            pl.col(m).fill_null(0) for m in measures)
    times = sorted(set(spans.get_column("at").to_list()) | set(
        spans.get_column("start").to_list()))
    where, by = where or {}, by or []
    if keys == KEYS:
        hourly = rollup_hours(client, rollup, min(times), max(times))
        minutely = rollup_minutes(client, rollup, partial_hours_of(times))
    elif len(where) + len(by) <= 1:  # one dimension: the much smaller per-dimension rollups
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
