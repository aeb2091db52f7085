"""`sli_writer.write`: one insert of SLI rows is one part of `sli_values`, however many rows (the
default would cut one per million rows, more parts for the background merges to rewrite),
and the rows read back as written."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from metrics import sli_writer
from metrics.sli.base import OUTPUT

pytestmark = pytest.mark.integration


def _rows(n: int) -> pl.DataFrame:
    start_us = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()) * 1_000_000
    return pl.DataFrame({
        "at": pl.Series(start_us + np.arange(n) % 50_000 * 60_000_000).cast(
            pl.Datetime("us", "UTC")),
        "sli": pl.Series(["M1", "M6"]).gather(np.arange(n) // 50_000 % 2),
        "window": pl.Series(["1h", "5m", "1d"]).gather(np.arange(n) // 100_000 % 3),
        "dimension": pl.Series(["", "team"]).gather(np.arange(n) // 300_000 % 2),
        "dimension_value": pl.Series(["", "a", "b"]).gather(np.arange(n) // 600_000 % 3),
        "good": np.ones(n), "total": np.full(n, 2.0), "value": np.full(n, 0.5),
    }).select(pl.col(c).cast(t) for c, t in OUTPUT.items()).unique(
        ["at", "sli", "window", "dimension", "dimension_value"])


def test_an_insert_of_more_than_a_million_rows_is_one_part(chdb_client, database):
    rows = _rows(1_300_000)
    assert rows.height > 1_048_576  # ClickHouse's default block: one part per that many rows
    chdb_client.command("SYSTEM STOP MERGES sli_values")  # count the parts the insert made
    try:
        assert sli_writer.write(chdb_client, rows) == rows.height
        parts = chdb_client.command(
            "SELECT count() FROM system.parts WHERE database = currentDatabase() "
            "AND table = 'sli_values' AND active")
        assert parts == 1
        back = chdb_client.query(
            "SELECT count(), sum(good), countIf(value = 0.5) FROM sli_values").result_rows[0]
        assert back == (rows.height, float(rows.height), rows.height)
    finally:
        chdb_client.command("SYSTEM START MERGES sli_values")


def test_the_writers_key_order_is_the_tables_sort_key(chdb_client, database):
    sorting_key = chdb_client.command(
        "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() "
        "AND name = {table:String}", parameters={"table": sli_writer.TABLE})
    assert [c.strip() for c in str(sorting_key).split(",")] == list(sli_writer.KEY_ORDER)
