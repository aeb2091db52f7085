"""The writer's failure handling: storage down keeps rows; a poison batch is parked, not lost."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from collector.spool import Spool, decode_segment
from collector.writer import POISON_ATTEMPTS, ClickHouseWriter

pytestmark = pytest.mark.unit


class RefusingClient:
    """Stands in for ClickHouse answering every insert with `error`; counts the attempts."""

    def __init__(self, error: Exception):
        self.error = error
        self.attempts = 0

    def command(self, sql, settings=None):
        if sql.startswith("TRUNCATE"):
            self.attempts += 1
            raise self.error
        return None


def start(tmp_path, error):
    spool = Spool(tmp_path, max_bytes=10**9, retry_after=1)
    spool.start()
    times = pa.array([1, 2], pa.timestamp("ms", tz="UTC"))
    spool.append({"policy_decisions": pa.table({"event_id": ["a", "b"],
                                                "event_time": times})}).result(5)
    client = RefusingClient(error)
    writer = ClickHouseWriter(client, "db", spool, instance="x", max_rows=100, max_delay=0.01)
    writer.start()
    return spool, writer, client


def test_a_batch_the_server_keeps_refusing_is_parked_in_the_dead_letter_folder(tmp_path):
    spool, writer, client = start(tmp_path, DatabaseError("Code: 53. Type mismatch"))
    deadline = time.monotonic() + 20
    while writer.dead_letter_rows == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.shutdown(drain_timeout=0)
    assert client.attempts == POISON_ATTEMPTS and writer.dead_letter_rows == 2
    (parked,) = (tmp_path / "dead-letter").glob("*.seg")
    frames, _ = decode_segment(parked.read_bytes())
    assert frames[0][1].column("event_id").to_pylist() == ["a", "b"]
    assert spool.pending_rows == 0 and not list(tmp_path.glob("*.seg"))
    spool.shutdown()


def test_storage_being_unreachable_never_parks_rows(tmp_path):
    spool, writer, client = start(tmp_path, OperationalError("connection refused"))
    deadline = time.monotonic() + 15
    while client.attempts < POISON_ATTEMPTS + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.shutdown(drain_timeout=0)
    assert client.attempts > POISON_ATTEMPTS  # kept retrying past the poison threshold
    assert writer.dead_letter_rows == 0 and spool.pending_rows == 2
    spool.shutdown()
