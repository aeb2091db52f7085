"""The SLI batch's watermark and its probes of the tables SLIs are computed from.

Both probes are built from `schemas.tables.SLI_SOURCES` (table, event-time column, ingest-time
column, minute grain or not), so a new source table is one entry there; identifiers come only
from that registry, values are bound parameters.
"""

from __future__ import annotations

from datetime import datetime, timezone

from clickhouse_connect.driver.client import Client

from schemas.tables import SLI_SOURCES, SLI_WATERMARK, SliSource


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def ingested_through(client: Client, sources: tuple[SliSource, ...] = SLI_SOURCES
                     ) -> datetime:
    """The newest ingest time over every source (1970 when all are empty)."""
    newest = ", ".join(f"(SELECT max({s.ingested_at}) FROM {s.table})" for s in sources)
    return _utc(str(client.command(
        f"SELECT greatest({newest}, toDateTime64(0, 3, 'UTC'))")))


def _late_sql(source: SliSource) -> str:
    """The earliest event minute of `source` before {before} among rows ingested after
    {since}; no row when there are none."""
    if source.minute_grain:  # a row of a minute ingested later <=> its max is later
        return (f"SELECT min({source.event_time}) AS m FROM {source.table} "
                f"WHERE {source.event_time} < {{before:DateTime('UTC')}} "
                f"AND {source.ingested_at} > {{since:DateTime64(3, 'UTC')}} HAVING count() > 0")
    return (f"SELECT toStartOfMinute(min({source.event_time})) AS m FROM {source.table} "
            f"WHERE {source.ingested_at} > {{since:DateTime64(3, 'UTC')}} "
            f"AND {source.event_time} < {{before:DateTime64(3, 'UTC')}} HAVING count() > 0")


def late_minutes(client: Client, since: datetime, before: datetime,
                 sources: tuple[SliSource, ...] = SLI_SOURCES) -> datetime | None:
    """The earliest event minute before `before` that gained rows ingested after `since`."""
    union = " UNION ALL ".join(_late_sql(s) for s in sources)
    text = str(client.command(f"SELECT min(m) FROM ({union})",
                              parameters={"since": since, "before": before}))
    if not text or text.startswith("1970") or text == "\\N":
        return None
    return _utc(text)


def watermark(client: Client, job: str) -> tuple[datetime | None, datetime | None]:
    """(the last evaluation time written, the newest ingest it had seen) of a batch job, or
    (None, None) before its first run."""
    rows = client.query(f"SELECT last_at, ingested_through FROM {SLI_WATERMARK} FINAL "
                        "WHERE job = {job:String}", parameters={"job": job}).result_rows
    if not rows:
        return None, None
    last_at, through = rows[0]
    return last_at.replace(tzinfo=timezone.utc), through.replace(tzinfo=timezone.utc)
