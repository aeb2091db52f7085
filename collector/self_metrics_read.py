"""The collector's own metrics read back from `collector_metrics`: deltas and rates per
interval, correct across restarts and across collectors -- what the dashboards (and later an
SLI on telemetry loss) read instead of a collector's memory. The one place the table's SQL
lives; the recorder (collector/self_metrics.py) only inserts Arrow rows.

A series is one run of one collector process and one counter: (instance, started_at, metric,
source, label). Along a series, a counter's delta at a snapshot is its value minus the
previous stored snapshot's, over the seconds between them. Without a predecessor it is the
value itself: over the seconds since the run's previous snapshot when there is one (the series
is new: a source's first records, a reason first seen; it was zero then, as series are never
removed), else, at the first snapshot a run stored (`seq` 1), since `started_at` (the run
counted from zero). A value below its predecessor (a counter never falls within a run) counts
as a reset, as Prometheus does. A snapshot with none of these -- its run's earlier snapshots
older than `lookback` before the window, or gone -- has no delta (null, not summed): a read
never counts the same records twice. Gauges have neither delta nor rate; their value is the
reading at `at`.

A delta belongs to the snapshot that ends its interval, so the first one inside [start, end)
may cover up to one interval before `start`.

    snapshots(client, start, end, metrics=["records_accepted"])  # a row per stored snapshot
    increases(client, start, end)  # metric, source, label, increase: over every run
    summary(client, start, end, metrics=[...])  # per series: increase, latest, highest

`deltas` states the rule, in Polars, over rows read back (`snapshots`). `summary` applies the
same rule in ClickHouse and returns a few rows per series instead of every snapshot, for the
readers that only want totals (the On-call page, `increases`); tests check it against `deltas`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import polars as pl
from clickhouse_connect.driver.client import Client

from collector.self_metrics import UPTIME
from schemas.tables import COLLECTOR_METRICS

STORED = ("at", "instance", "hostname", "started_at", "seq", "metric", "kind", "source",
          "label", "value")
COLUMNS = (*STORED, "delta", "seconds", "rate")
SERIES = ("instance", "started_at", "metric", "source", "label")
LOOKBACK = timedelta(hours=1)


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _conditions(since: datetime, end: datetime, metrics: Sequence[str] | None,
                instance: str | None) -> tuple[list[str], dict]:
    """The rows a read takes: [since, end), of `metrics` (all when None) and `instance`."""
    conditions = ["at >= fromUnixTimestamp64Milli({since:Int64})",
                  "at < fromUnixTimestamp64Milli({end:Int64})"]
    params: dict = {"since": _ms(since), "end": _ms(end)}
    if metrics is not None:  # and the series every snapshot has: when the run's were taken
        conditions.append("metric IN {metrics:Array(String)}")
        params["metrics"] = [*metrics, UPTIME]
    if instance is not None:
        conditions.append("instance = {instance:String}")
        params["instance"] = instance
    return conditions, params


def _stored(client: Client, since: datetime, end: datetime, metrics: Sequence[str] | None,
            instance: str | None) -> pl.DataFrame:
    conditions, params = _conditions(since, end, metrics, instance)
    # unordered: `deltas` sorts the rows by series and time itself
    sql = (f"SELECT {', '.join(STORED)} FROM {COLLECTOR_METRICS} "
           f"WHERE {' AND '.join(conditions)}")
    frame = pl.from_arrow(client.query_arrow(sql, parameters=params))
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(
        *(pl.col(c).cast(pl.Utf8) for c in ("instance", "hostname", "metric", "kind",
                                             "source", "label")),
        *(pl.col(c).cast(pl.Datetime("ms", "UTC")) for c in ("at", "started_at")),
        pl.col("seq").cast(pl.UInt32), pl.col("value").cast(pl.Float64))


def _previous(keys: list[str], column: str) -> pl.Expr:
    """`column` of the row before, where that row has the same `keys`, else null: the
    previous value along a group of a frame sorted by `keys` (what `shift(1).over(keys)`
    gives there, without grouping the frame again for each use)."""
    same = pl.all_horizontal([pl.col(k) == pl.col(k).shift(1) for k in keys])
    return pl.when(same).then(pl.col(column).shift(1))


def deltas(stored: pl.DataFrame, start: datetime | None = None) -> pl.DataFrame:
    """Stored rows (`STORED` columns) with `delta`, `seconds` and `rate` (per second) by the
    module's rule, keeping the rows at or after `start` (all when None); ordered by series
    and time. `stored` holds whole snapshots, or at least their `uptime_seconds` rows (a
    snapshot's time tells a new series from one whose past is unknown). Pure: no storage."""
    series, run = list(SERIES), ["instance", "started_at"]
    snapshot_times = (stored.select(*run, "at").unique().sort([*run, "at"])
                      .with_columns(_previous(run, "at").alias("run_previous_at")))
    frame = stored.join(snapshot_times, on=[*run, "at"], how="left").sort([*series, "at"])
    frame = frame.with_columns(_previous(series, "value").alias("previous"),
                               _previous(series, "at").alias("previous_at"))
    previous, previous_at = pl.col("previous"), pl.col("previous_at")
    counter = pl.col("kind") == "counter"
    new_series = previous.is_null() & pl.col("run_previous_at").is_not_null()
    run_start = previous.is_null() & pl.col("run_previous_at").is_null() & (pl.col("seq") == 1)
    delta = (pl.when(~counter).then(None)
             .when(previous.is_not_null() & (pl.col("value") >= previous))
             .then(pl.col("value") - previous)
             .when(previous.is_not_null() | new_series | run_start)
             .then(pl.col("value"))  # a reset, a new series, a new run: counted from zero
             .otherwise(None))
    since = (pl.when(~counter).then(None)
             .when(previous.is_not_null()).then(previous_at)
             .when(new_series).then(pl.col("run_previous_at"))
             .when(run_start).then(pl.col("started_at"))
             .otherwise(None))
    frame = frame.with_columns(
        delta.cast(pl.Float64).alias("delta"),
        ((pl.col("at") - since).dt.total_milliseconds() / 1000).cast(pl.Float64)
        .alias("seconds"))
    frame = frame.with_columns(
        pl.when(pl.col("seconds") > 0).then(pl.col("delta") / pl.col("seconds"))
        .otherwise(None).alias("rate"))
    if start is not None:
        frame = frame.filter(pl.col("at") >= pl.lit(_ms(start)).cast(pl.Datetime("ms", "UTC")))
    return frame.select(list(COLUMNS))


def snapshots(client: Client, start: datetime, end: datetime, *,
              metrics: Sequence[str] | None = None, instance: str | None = None,
              lookback: timedelta = LOOKBACK) -> pl.DataFrame:
    """Every stored snapshot row in [start, end) (`COLUMNS`), of the given metrics (default
    all) and collector instance (default all), with each counter's delta since the previous
    snapshot of its run and its rate per second. Rows up to `lookback` before `start` are
    read as predecessors only."""
    frame = deltas(_stored(client, start - lookback, end, metrics, instance), start)
    return frame if metrics is None else frame.filter(pl.col("metric").is_in(list(metrics)))


SUMMARY = {"instance": pl.Utf8, "metric": pl.Utf8, "kind": pl.Utf8, "source": pl.Utf8,
           "label": pl.Utf8, "increase": pl.Float64, "latest_at": pl.Datetime("ms", "UTC"),
           "latest": pl.Float64, "highest": pl.Float64, "rows": pl.Int64}

# `deltas`' rule along each series, in one statement. `previous`: the series' value at the
# row before (null at its first row read); `run_first`: the run's first snapshot read, so
# `at > run_first` is "the run has an earlier snapshot" (every snapshot has an UPTIME row,
# which the reader always reads). The table's sort key is series then time, as the window's.
_SUMMARY_SQL = """
SELECT instance, metric, kind, source, label, coalesce(sum(delta), 0) AS increase,
       max(at) AS latest_at, argMax(value, at) AS latest, max(value) AS highest,
       count() AS rows
FROM (
    SELECT at, instance, metric, kind, source, label, value,
           lagInFrame(toNullable(value), 1, NULL) OVER series AS previous,
           min(at) OVER (PARTITION BY instance, started_at) AS run_first,
           multiIf(kind != 'counter', NULL,
                   previous IS NOT NULL AND value >= previous, value - previous,
                   at > run_first OR seq = 1, value,  -- a reset, a new series, a run's start
                   NULL) AS delta
    FROM {table}
    WHERE {conditions}
    WINDOW series AS (PARTITION BY metric, instance, started_at, source, label ORDER BY at
                      ROWS BETWEEN 1 PRECEDING AND CURRENT ROW))
WHERE at >= fromUnixTimestamp64Milli({{start:Int64}}) {wanted}
GROUP BY instance, metric, kind, source, label
ORDER BY instance, metric, source, label"""


def summary(client: Client, start: datetime, end: datetime, *,
            metrics: Sequence[str] | None = None, instance: str | None = None,
            lookback: timedelta = LOOKBACK) -> pl.DataFrame:
    """Per collector instance and series (metric, kind, source, label) of the given metrics
    (default all) with a snapshot in [start, end), over all its runs: `increase`, the sum
    of its counter deltas there (`deltas`' rule; 0 for a gauge, or where none is known);
    `latest_at` and `latest`, its last reading; `highest`, its largest; `rows`, its
    snapshots. Computed in ClickHouse over the rows `snapshots` reads; `SUMMARY` columns,
    ordered by instance and series."""
    conditions, params = _conditions(start - lookback, end, metrics, instance)
    params["start"] = _ms(start)
    wanted = ""  # given metrics: the uptime series is read (for `run_first`), not returned
    if metrics is not None:
        wanted, params["wanted"] = "AND metric IN {wanted:Array(String)}", list(metrics)
    sql = _SUMMARY_SQL.format(table=COLLECTOR_METRICS, conditions=" AND ".join(conditions),
                              wanted=wanted)
    result = client.query(sql, parameters=params)
    return pl.DataFrame(result.result_rows, schema=SUMMARY, orient="row")


def increases(client: Client, start: datetime, end: datetime, *,
              metrics: Sequence[str] | None = None, instance: str | None = None,
              by_instance: bool = False, lookback: timedelta = LOOKBACK) -> pl.DataFrame:
    """How much each counter grew over [start, end), summed over every run (restarts) and
    every collector, or per `instance` with `by_instance`: columns [instance,] metric,
    source, label, increase; ordered by them. Gauges are not in it (read `snapshots`)."""
    keys = ["instance"] if by_instance else []
    keys += ["metric", "source", "label"]
    return (summary(client, start, end, metrics=metrics, instance=instance, lookback=lookback)
            .filter(pl.col("kind") == "counter")
            .group_by(keys).agg(pl.col("increase").sum()).sort(keys))
