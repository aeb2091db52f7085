"""`storage.insert_arrow`: an Arrow table sent as an IPC stream batch by batch arrives whole --
every batch, dictionary columns as LowCardinality, nulls as NULL -- and nothing for no rows."""

from __future__ import annotations

import pyarrow as pa
import pytest

from core import storage

pytestmark = pytest.mark.integration


def _table(rows: int) -> pa.Table:
    names = pa.array([f"team-{i % 7}" for i in range(rows)]).dictionary_encode()
    values = pa.array([None if i % 5 == 0 else i * 0.5 for i in range(rows)], pa.float64())
    return pa.table({"name": names, "n": pa.array(range(rows), pa.uint32()), "value": values})


def test_every_batch_arrives_with_dictionaries_and_nulls(chdb_client, database):
    chdb_client.command("CREATE TABLE t_stream (name LowCardinality(String), n UInt32, "
                        "value Nullable(Float64)) ENGINE = MergeTree ORDER BY n")
    storage.insert_arrow(chdb_client, "t_stream", _table(10_007), batch_rows=1_000)
    got = chdb_client.query("SELECT count(), uniqExact(n), countIf(value IS NULL), "
                            "sum(value), uniqExact(name), min(name), max(name) "
                            "FROM t_stream").result_rows[0]
    expected = _table(10_007).to_pydict()
    assert got == (10_007, 10_007, sum(v is None for v in expected["value"]),
                   sum(v for v in expected["value"] if v is not None), 7, "team-0", "team-6")


def test_no_rows_sends_nothing(chdb_client, database):
    class Spy:
        def raw_insert(self, *args, **kwargs):
            raise AssertionError("an empty table was sent")

    storage.insert_arrow(Spy(), "t_stream", _table(0))


def test_a_bad_table_name_fails_with_the_servers_message(chdb_client, database):
    with pytest.raises(Exception, match="(?i)t_missing"):
        storage.insert_arrow(chdb_client, "t_missing", _table(3))
