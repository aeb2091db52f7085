"""The rollup tables (minute, hour, day; combined and per dimension) and the readers of their
rows: per dimension value (`rollup_hours`, `rollup_segments`), one dimension
(`one_dimension`), or filtered and grouped by several (`filtered_hours`/`_minutes`). A
histogram arrives as its bucket indexes and counts and becomes bucket columns (`_read`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from clickhouse_connect.driver.client import Client

from metrics.latency import BUCKET_COUNT
from metrics.windows import HOUR, floor_hour
from schemas import slis, tables


KEYS = ["dimension", "dimension_value"]


# dimension name -> rollup column (the combined rollups; the per-dimension ones use the names):
# those of the SLI families reading each rollup, from the catalogue (schemas/slis.py)
DECISION_DIMENSIONS = slis.family_dimensions("decisions")


GATE_DIMENSIONS = slis.family_dimensions("deploys")


@dataclass(frozen=True)
class Rollup:
    """A rollup family's tables (`schemas.tables`: minute, hour, day combined; minute, five
    minutes, hour, day per dimension value) and the measures the SLIs read from them: plain
    sums, plus (for decisions) the latency histogram as columns b0..b71."""

    family: tables.RollupFamily
    dimensions: dict[str, str]
    sums: tuple[str, ...]
    histogram: bool = False

    @property
    def name(self) -> str:
        return self.family.name

    @property
    def minute_table(self) -> str:
        return self.family.table("1m")

    @property
    def hour_table(self) -> str:
        return self.family.table("1h")

    @property
    def day_table(self) -> str:
        return self.family.table("1d")

    def per_value(self, grain: str) -> str:
        """The per-dimension-value table of `grain` (1m, 5m, 1h, 1d)."""
        return self.family.table(grain, per_value=True)

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
        """The aggregate columns (of `measures`, default all) over rollup rows, or over rows
        that already hold each scalar measure by name (`summed`): the scalars, and the
        histogram summed by one sumMap (not one per bucket) as its bucket indexes and counts
        (two arrays, `lb_keys` and `lb_counts`; `_read` spreads them into bucket columns;
        ClickHouse computes the one sumMap once), selected by the grouping query itself."""
        scalars, buckets = self.split(measures)
        parts = [f"toInt64(sum({m if summed else self.scalar(m)})) AS {m}" for m in scalars]
        if buckets:
            parts.append("mapKeys(sumMap(latency_buckets)) AS lb_keys, "
                         "mapValues(sumMap(latency_buckets)) AS lb_counts")
        return ", ".join(parts)


DECISIONS = Rollup(tables.DECISION_ROLLUPS, DECISION_DIMENSIONS,
                   ("total", "errors", "denies", "warns", "latency_count"), histogram=True)


GATES = Rollup(tables.GATE_ROLLUPS, GATE_DIMENSIONS, ("total", "blocked", "overridden"))


ROLLUPS = {rollup.name: rollup for rollup in (DECISIONS, GATES)}  # by registry family name


FEW_POINTS = 8


def utc_datetime(frame: pl.DataFrame, column: str) -> pl.Expr:
    """A ClickHouse DateTime arrives in Arrow as seconds (an integer): make it a UTC datetime."""
    if frame.schema[column].is_integer():
        return pl.from_epoch(pl.col(column).cast(pl.Int64), time_unit="s").dt.replace_time_zone(
            "UTC").cast(pl.Datetime("us", "UTC")).alias(column)
    return pl.col(column).cast(pl.Datetime("us", "UTC"))


def _read(client: Client, sql: str, parameters: dict) -> pl.DataFrame:
    """A rollup query's rows; a histogram (lb_keys, lb_counts) becomes bucket columns b0..
    (of every bucket: reading a subset of the map is no cheaper than reading all of it)."""
    table = client.query_arrow(sql, parameters=parameters)
    if "lb_keys" not in table.column_names:
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame
    keys, counts = (table.column(c).combine_chunks() for c in ("lb_keys", "lb_counts"))
    dense = np.zeros((BUCKET_COUNT, table.num_rows), dtype=np.int64)  # a bucket per row:
    lengths = np.diff(keys.offsets.to_numpy()) if len(keys) else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(table.num_rows), lengths)              # columns contiguous
    dense[keys.flatten().to_numpy().astype(np.int64), rows] = counts.flatten().to_numpy()
    frame = pl.from_arrow(table.drop_columns(["lb_keys", "lb_counts"]))
    assert isinstance(frame, pl.DataFrame)
    return frame.hstack([pl.Series(f"b{i}", dense[i]) for i in range(BUCKET_COUNT)])


def _frame(client: Client, sql: str, parameters: dict) -> pl.DataFrame:
    frame = _read(client, sql, parameters)
    return frame.with_columns(utc_datetime(frame, "t"))


def _grouped_sql(rollup: Rollup, grain: str, time_column: str, where: str,
                 measures: list[str] | None = None) -> str:
    """Rows of the per-dimension rollup of `grain`, merged per (time, dimension, value): what
    the background merge has not merged yet."""
    return (f"SELECT {time_column} AS t, dimension, dimension_value, "
            f"{rollup.aggregates(measures)} FROM {rollup.per_value(grain)} WHERE {where} "
            f"GROUP BY {time_column}, dimension, dimension_value")


def rollup_hours(client: Client, rollup: Rollup, start: datetime, end: datetime
                 ) -> pl.DataFrame:
    """Hour buckets from the hour of `start` up to `end`, per dimension value. The hour
    holding `start` is included: window sums take whole hours from there (windows.py)."""
    start = floor_hour(start)
    # the rows as stored, merged here: hour rows are few and mostly merged already, and
    # reading the rows is much cheaper than ClickHouse's sumMap over the histogram
    scalars = ", ".join(f"toInt64({m}) AS {m}" for m in rollup.sums)
    histogram = (", mapKeys(latency_buckets) AS lb_keys, mapValues(latency_buckets) AS "
                 "lb_counts" if rollup.histogram else "")
    sql = (f"SELECT hour AS t, dimension, dimension_value, {scalars}{histogram} "
           f"FROM {rollup.per_value('1h')} "
           "WHERE hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}")
    rows = _frame(client, sql, {"start": start, "end": end})
    keys = ["t", *KEYS]
    if rows.select(keys).is_duplicated().any():  # parts the background merge has not merged
        rows = rows.group_by(keys, maintain_order=True).agg(pl.all().sum())
    return rows


def rollup_segments(client: Client, rollup: Rollup, ranges: list[tuple[datetime, int, int]],
                    cuts: list[int]) -> pl.DataFrame:
    """Minute buckets of the hours named in `ranges` ((hour, from minute, to minute), see
    `windows.minute_cuts`), summed per segment between `cuts`, per dimension value: columns
    h, seg, dimension, dimension_value, measures. Only minutes some range covers are read,
    from the five-minute rollup when every range and cut is on a five-minute boundary."""
    if not ranges:
        return _frame(client, _grouped_sql(rollup, "1m", "minute", "0"),
                      {}).rename({"t": "h"}).with_columns(seg=pl.lit(0, pl.Int64))
    hours = sorted({r[0] for r in ranges})
    # segments cut on five-minute boundaries (a backfill's, points on the hour) are made of
    # whole five-minute rows: a fifth of the rows to read and merge
    on_fives = all(m % 5 == 0 for r in ranges for m in r[1:]) and all(c % 5 == 0 for c in cuts)
    table, t = (rollup.per_value("5m"), "five") if on_fives else (rollup.per_value("1m"),
                                                                   "minute")
    where = (f"toStartOfHour({t}) IN {{hours:Array(DateTime('UTC'))}} AND {t} >= "
             f"{{lo:DateTime('UTC')}} AND {t} < {{hi:DateTime('UTC')}} AND toMinute({t}) >= "
             f"{{first:UInt8}} AND toMinute({t}) < {{last:UInt8}}")
    sql = (f"SELECT toStartOfHour({t}) AS h, arrayCount(c -> c <= toMinute({t}), "
           "{cuts:Array(UInt8)}) AS seg, dimension, dimension_value, "
           f"{rollup.aggregates()} FROM {table} WHERE {where} "
           "GROUP BY h, seg, dimension, dimension_value")
    frame = _read(client, sql, {"hours": hours, "lo": hours[0], "hi": hours[-1] + HOUR,
                                "first": min(r[1] for r in ranges),
                                "last": max(r[2] for r in ranges), "cuts": cuts})
    return frame.with_columns(utc_datetime(frame, "h"), pl.col("seg").cast(pl.Int64))


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
        rollup, "1h", "hour", condition + " AND hour >= {start:DateTime('UTC')} "
        "AND hour < {end:DateTime('UTC')}", measures),
        {**params, "start": floor_hour(times[0]), "end": times[1]})
    if not hours:
        return hourly, hourly.clear()
    minutely = _frame(client, _grouped_sql(
        rollup, "1m", "minute", condition + " AND minute >= "
        "{lo:DateTime('UTC')} AND minute < {hi:DateTime('UTC')} AND toStartOfHour(minute) IN "
        "{hours:Array(DateTime('UTC'))}", measures),
        {**params, "lo": min(hours), "hi": max(hours) + timedelta(hours=1), "hours": hours})
    return hourly, minutely


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
    sql = (f"SELECT {time_column} AS t, {key} AS key, {rollup.aggregates(measures)} "
           f"FROM {table} WHERE {' AND '.join(conditions)} GROUP BY {group}")
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
