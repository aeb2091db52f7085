"""Writing the batch's tables: SLI rows to `sli_values` (the table's key order and the one
encoding step) and the run's watermark to `sli_watermark`.

**Key order.** `sli_values` is sorted by `KEY_ORDER`: sli, window, dimension, dimension_value,
at -- the labels by their text (bytes), as ClickHouse compares strings. An insert whose rows
arrive in that order is not sorted again by ClickHouse; rows out of order are still stored
correctly, only sorted at insert. So the writer does not reorder rows: the SLI families build
theirs in this order, where it costs least (`sort_ranks` gives the places; the window sums'
dense engine and `sli.base.window_rows` emit each SLI's rows so, `sli.base.by_sli` joins a
family's SLIs in id order), and `in_key_order` states the rule the tests hold them to.

**Encoding.** `write` is the one step that turns rows into what the table stores: the
LowCardinality columns (`LOW_CARDINALITY`) as Arrow dictionaries with the narrowest index
type (they map onto LowCardinality directly), `at` as epoch seconds (a DateTime), and
`computed_at` left to the column's default, the server's clock, unless given. The families
carry their labels as categoricals already (few distinct values in many rows; `sli.base.OUTPUT`),
so the cast here is free for them; anything else is cast here.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from core import storage
from schemas.tables import SLI_VALUES, SLI_WATERMARK

TABLE = SLI_VALUES
KEY_ORDER = ("sli", "window", "dimension", "dimension_value", "at")  # the table's sort key
LOW_CARDINALITY = ["sli", "window", "dimension", "dimension_value"]  # sli_values' types

# Rows of one run never repeat a key, so ReplacingMergeTree's merge at insert time has nothing
# to replace: skipping it makes the insert much cheaper. And one part per insert (a call's rows
# are bounded by one family's), not one per million rows: fewer parts for the background
# merges to rewrite.
INSERT_SETTINGS = {"optimize_on_insert": 0, "max_insert_block_size": 100_000_000,
                   "min_insert_block_size_rows": 100_000_000,
                   "min_insert_block_size_bytes": 10_000_000_000}


def sort_ranks(frame: pl.DataFrame, columns: list[str], dense: bool = False) -> np.ndarray:
    """Each row's place when `frame` is sorted by `columns` (ties in row order; strings by
    their text, as ClickHouse orders them; a null first), or with `dense` the number of
    distinct values before its own. What the families order their rows by (`KEY_ORDER`)."""
    if dense:
        return frame.select(pl.struct(columns).rank("dense") - 1).to_series().to_numpy(
        ).astype(np.int64)
    rank = np.empty(frame.height, dtype=np.int64)
    rank[frame.select(pl.arg_sort_by(columns, maintain_order=True)).to_series().to_numpy()] = \
        np.arange(frame.height)
    return rank


def in_key_order(frame: pl.DataFrame) -> bool:
    """Whether rows (with the columns of `KEY_ORDER`) are in `sli_values`' key order, the
    labels compared by their text."""
    keys = frame.select(KEY_ORDER).with_columns(pl.col(LOW_CARDINALITY).cast(pl.String))
    return bool((sort_ranks(keys, list(KEY_ORDER)) == np.arange(keys.height)).all())


def write(client: Client, frame: pl.DataFrame, computed_at: datetime | None = None) -> int:
    """Insert rows into `sli_values` as compact Arrow (see the module's "Encoding"); returns
    the number of rows. Rows are sent in the order given (see "Key order")."""
    if not frame.height:
        return 0
    table = frame.with_columns(  # chunks as they are: the IPC stream sends them in turn
        pl.col(LOW_CARDINALITY).cast(pl.Categorical),
        pl.col("at").dt.epoch("s").cast(pl.UInt32),
        *([pl.lit(computed_at).cast(pl.Datetime("ms", "UTC")).alias("computed_at")]
          if computed_at else [])).to_arrow()
    columns = [_narrow_dictionary(table.column(name).combine_chunks())
               if name in LOW_CARDINALITY else table.column(name) for name in table.column_names]
    storage.insert_arrow(client, TABLE, pa.table(columns, names=table.column_names),
                         settings=INSERT_SETTINGS)
    return frame.height


def _narrow_dictionary(column: pa.DictionaryArray) -> pa.DictionaryArray:
    size = len(column.dictionary)
    index = pa.int8() if size <= 127 else pa.int16() if size <= 32767 else pa.int32()
    return pa.DictionaryArray.from_arrays(column.indices.cast(index), column.dictionary)


def set_watermark(client: Client, job: str, last_at: datetime, through: datetime) -> None:
    """Record that `job` has written every point up to `last_at`, having seen rows ingested up
    to `through` (read back by `sources.watermark`; the latest row per job wins)."""
    client.insert(SLI_WATERMARK, [[job, last_at.replace(tzinfo=None),
                                   through.replace(tzinfo=None)]],
                  column_names=["job", "last_at", "ingested_through"])
