"""Raw event kinds the rollups do not cover, read as rows (`events`) or as per-state report
times (`report_histories`), and the batch layer's own tables (`table_rows`)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from clickhouse_connect.driver.client import Client

from metrics.sources.rollups import FEW_POINTS, utc_datetime
from metrics.windows import partial_hours as partial_hours_of


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


def table_rows(client: Client, sql: str, parameters: dict) -> pl.DataFrame:
    """Rows of a named query over a batch-layer table (triage verdicts, alert history)."""
    frame = pl.from_arrow(client.query_arrow(sql, parameters=parameters))
    assert isinstance(frame, pl.DataFrame)
    return frame
