"""More than one connection to the embedded store (`storage.another`), as a backfill's writers
use: same engine and database, its own handle, calls that overlap."""

from __future__ import annotations

import threading
import time

import pytest

from core import storage

pytestmark = pytest.mark.integration


def test_another_connection_sees_the_same_database_and_rows(chdb_client, database):
    chdb_client.command("CREATE TABLE t_rows (n UInt32) ENGINE = MergeTree ORDER BY n")
    other = storage.another(chdb_client)
    try:
        assert other is not chdb_client
        assert other.database == database  # the database the client is on now
        other.insert("t_rows", [[1], [2]], column_names=["n"])
        assert chdb_client.command("SELECT sum(n) FROM t_rows") == 3
    finally:
        other.close()
    assert chdb_client.command("SELECT count() FROM t_rows") == 2  # still open


def test_calls_on_two_connections_overlap(chdb_client, database):
    """A query on one handle does not wait for a long one on the other (one client would
    serialize them: its calls take turns)."""
    other = storage.another(chdb_client)
    started, finished = threading.Event(), []

    def long_query():
        started.set()
        other.command("SELECT sleepEachRow(0.5) FROM numbers(4) FORMAT Null")  # 2 s
        finished.append(True)

    try:
        worker = threading.Thread(target=long_query)
        worker.start()
        started.wait()
        time.sleep(0.3)  # the long query is under way
        assert chdb_client.command("SELECT 1") == 1
        assert not finished, "the short query waited for the long one"
        worker.join()
    finally:
        other.close()


def test_a_client_not_opened_by_connect_is_returned_as_it_is():
    class Foreign:
        database = "default"

    client = Foreign()
    assert storage.another(client) is client
