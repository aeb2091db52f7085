"""Raw event kinds the rollups do not cover, read as rows (`events`) or as per-state report
times (`report_histories`), and the batch layer's own tables (`triage_verdicts`,
`fired_alerts`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

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
                     points: list[datetime], memo: dict | None = None) -> pl.DataFrame:
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
    ClickHouse, each state's strings are sent once, not once per report.

    With a `memo` (kept between scheduled runs) and one point, the latest report per state
    is kept there and only rows that can change it are read (`_latest_kept`)."""
    if memo is not None and len(points) == 1:
        return _latest_kept(client, memo, kind, [entity, *keys, *values], start, points[0])
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


OVERLAP = timedelta(minutes=5)  # ingest times are re-read this far back: inserts in flight


def _latest_kept(client: Client, memo: dict, kind: str, group: list[str], start: datetime,
                 at: datetime) -> pl.DataFrame:
    """`report_histories` at one point from the latest report per state kept in `memo`.

    Kept: for every state, the max event_time of its reports before the previous point
    `before`, over all rows stored when the previous read began (`through`, the server's
    clock). A later point `at` needs the max before `at`, and a max only grows, so reading
    the rows that can raise it is enough: event_time in [before, at), or ingested since
    `through` (late rows; re-read `OVERLAP` back, as an insert stamped before the read may
    commit after it). The result equals a full read; a point before the kept one, or an
    earlier `start`, reads everything again."""
    key = (kind, tuple(group))
    kept = memo.get(key)
    columns = ", ".join(group)
    params: dict = {"kind": kind, "start": start, "at": at}
    where = ("event_kind = {kind:String} AND event_time >= {start:DateTime64(3, 'UTC')} AND "
             "event_time < {at:DateTime64(3, 'UTC')}")
    if kept is not None and kept["before"] <= at and kept["start"] <= start:
        where += (" AND (event_time >= {before:DateTime64(3, 'UTC')} OR "
                  "ingested_at >= {through:DateTime64(3, 'UTC')})")
        params.update(before=kept["before"], through=kept["through"] - OVERLAP)
    else:
        kept = None
    read_at = datetime.fromisoformat(str(client.command("SELECT now64(3, 'UTC')"))).replace(
        tzinfo=timezone.utc)
    sql = (f"SELECT {columns}, max(event_time) AS latest FROM policy_events WHERE {where} "
           f"GROUP BY {columns}")
    states = pl.from_arrow(client.query_arrow(sql, parameters=params))
    assert isinstance(states, pl.DataFrame)
    states = states.with_columns(utc_datetime(states, "latest"))
    if kept is not None:
        states = pl.concat([kept["states"], states], how="vertical_relaxed").group_by(
            group).agg(pl.col("latest").max())
    live = states.filter(pl.col("latest") >= start)  # states not reported since `start` drop
    memo[key] = {"before": at, "start": start, "states": live, "through": read_at}
    return live.select(*group, pl.concat_list("latest").cast(
        pl.List(pl.Datetime("us", "UTC"))).alias("event_times"))


VERDICTS_SQL = """
    SELECT subject_time AS event_time, subject_kind, verdict, source, team, service, policy_id,
           engine, environment, cluster
    FROM triage_verdicts FINAL
    WHERE subject_time >= {start:DateTime64(3, 'UTC')}
      AND subject_time < {end:DateTime64(3, 'UTC')}
      AND verdict != ''
      AND (expires_at IS NULL OR expires_at > {as_of:DateTime64(3, 'UTC')})
    ORDER BY subject_time"""


def triage_verdicts(client: Client, start: datetime, end: datetime,
                    as_of: datetime | None = None) -> pl.DataFrame:
    """The current verdicts (the latest per subject, written by `triage`) whose subject's
    time is in [start, end), oldest first: event_time (the subject's time), subject_kind,
    verdict, source (`hand`, or `rule` for a sticky rule's) and the subject's dimension
    columns. Current: not "no verdict" ('', an undone first label) and, for a benign verdict
    with an expiry, not expired at `as_of` (default `end`)."""
    return _timed_rows(client, VERDICTS_SQL, {"start": start, "end": end,
                                              "as_of": end if as_of is None else as_of})


ALERTS_SQL = """
    SELECT at AS event_time, alert_id, slo, severity, team, service
    FROM alert_events
    WHERE state = 'firing' AND at >= {start:DateTime64(3, 'UTC')}
      AND at < {end:DateTime64(3, 'UTC')}
    ORDER BY at"""


def fired_alerts(client: Client, start: datetime, end: datetime) -> pl.DataFrame:
    """The alert evaluator's entries into `firing` in [start, end), oldest first: event_time,
    alert_id, slo, severity, team, service."""
    return _timed_rows(client, ALERTS_SQL, {"start": start, "end": end})


def _timed_rows(client: Client, sql: str, parameters: dict) -> pl.DataFrame:
    """Rows of a query over a batch-layer table, its `event_time` a UTC datetime."""
    frame = pl.from_arrow(client.query_arrow(sql, parameters=parameters))
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(utc_datetime(frame, "event_time"))
