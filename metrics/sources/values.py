"""The batch layer's output read back: rows of `sli_values` (for `metrics.read.sli_values`)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from clickhouse_connect.driver.client import Client

from metrics.sources.rollups import utc_datetime
from schemas.tables import SLI_VALUES

COLUMNS = ("at", "sli", "window", "dimension", "dimension_value", "good", "total", "value")


def sli_values(client: Client, *, sli: str | None, window: str | None, dimension: str,
               at: datetime | None) -> pl.DataFrame:
    """Stored rows (`COLUMNS`, the latest computation of each) of one dimension ('' for the
    overall values), optionally one SLI and window, at the evaluation time `at` (a whole
    minute) or, when None, at the latest one stored for that selection; ordered by sli,
    window, dimension, value."""
    conditions, params = ["1"], {}
    if sli:
        conditions.append("sli = {sli:String}")
        params["sli"] = sli
    if window:
        conditions.append("window = {window:String}")
        params["window"] = window
    conditions.append("dimension = {dimension:String}")
    params["dimension"] = dimension
    where = " AND ".join(conditions)
    if at is None:
        point = f"(SELECT max(at) FROM {SLI_VALUES} WHERE {where})"
    else:
        point = "{at:DateTime('UTC')}"
        params["at"] = at
    # the latest computation of each row, as FINAL would keep it (ReplacingMergeTree by
    # computed_at), picked by LIMIT 1 BY: FINAL merges every part's range first (3x the time)
    sql = (f"SELECT {', '.join(COLUMNS)} FROM {SLI_VALUES} WHERE {where} AND at = {point} "
           "ORDER BY sli, window, dimension, dimension_value, computed_at DESC "
           "LIMIT 1 BY sli, window, dimension, dimension_value")
    frame = pl.from_arrow(client.query_arrow(sql, parameters=params))
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(utc_datetime(frame, "at"))
