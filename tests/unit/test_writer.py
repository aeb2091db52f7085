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


def start(tmp_path, error, first_backoff=0.02):
    """A writer over a spool of two rows and a client refusing every insert with `error`;
    its retries back off as in service, from 0.02 s rather than 0.2 s (only faster)."""
    spool = Spool(tmp_path, max_bytes=10**9, retry_after=1)
    spool.start()
    times = pa.array([1, 2], pa.timestamp("ms", tz="UTC"))
    spool.append({"policy_decisions": pa.table({"event_id": ["a", "b"],
                                                "event_time": times})}).result(5)
    client = RefusingClient(error)
    writer = ClickHouseWriter(client, "db", spool, instance="x", max_rows=100, max_delay=0.01,
                              first_backoff=first_backoff)
    writer.start()
    return spool, writer, client


def test_a_batch_the_server_keeps_refusing_is_parked_in_the_dead_letter_folder(tmp_path):
    spool, writer, client = start(tmp_path, DatabaseError("Code: 53. Type mismatch"))
    deadline = time.monotonic() + 20
    while writer.dead_letter_rows == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.shutdown(drain_timeout=0)
    # refused 5 times as a batch, once more as the table's rows, then once per row as they
    # are bisected down to single rows
    assert client.attempts == POISON_ATTEMPTS + 3 and writer.dead_letter_rows == 2
    assert writer.dead_letter_reasons == {"DatabaseError": 2}
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


@pytest.mark.parametrize("reason", ["TOO_MANY_PARTS", "MEMORY_LIMIT_EXCEEDED",
                                    "NOT_ENOUGH_SPACE", "TABLE_IS_READ_ONLY"])
def test_storage_refusing_for_its_own_reasons_never_parks_rows(tmp_path, reason):
    # chDB reports these as DatabaseError, like a row the server refuses; they are about the
    # server's state, so the rows wait in the spool for as long as it lasts
    spool, writer, client = start(tmp_path, DatabaseError(
        f"Code: 252. DB::Exception: the server says no for now. ({reason})"),
    )  # the 7th attempt comes ~1.3 s in (12.6 s with the service's first backoff)
    deadline = time.monotonic() + 40
    while client.attempts < POISON_ATTEMPTS + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.shutdown(drain_timeout=0)
    assert client.attempts > POISON_ATTEMPTS + 1
    assert writer.dead_letter_rows == 0 and spool.pending_rows == 2
    assert not (tmp_path / "dead-letter").exists() or not list(
        (tmp_path / "dead-letter").iterdir())
    spool.shutdown()


class PoisonRowClient:
    """Stands in for ClickHouse refusing any insert whose staging rows hold the event id
    `poison`, and storing the rest; `stored` is every event id it took."""

    def __init__(self, poison: str):
        self.poison = poison
        self.staged: list[str] = []
        self.stored: list[str] = []

    def insert_arrow(self, table, rows):
        self.staged = rows.column("event_id").to_pylist()

    def command(self, sql, settings=None):
        if sql.startswith("INSERT INTO"):
            if self.poison in self.staged:
                raise DatabaseError("Code: 53. Cannot convert the value (TYPE_MISMATCH)")
            self.stored += self.staged
        return 0


def test_only_the_rows_the_server_refuses_for_themselves_are_parked(tmp_path):
    spool = Spool(tmp_path, max_bytes=10**9, retry_after=1)
    spool.start()
    ids = [f"e{i}" for i in range(10)]
    times = pa.array(list(range(10)), pa.timestamp("ms", tz="UTC"))
    spool.append({"policy_decisions": pa.table({"event_id": ids, "event_time": times})}
                 ).result(5)
    client = PoisonRowClient("e6")
    writer = ClickHouseWriter(client, "db", spool, instance="x", max_rows=100, max_delay=0.01,
                              first_backoff=0.02)
    writer.start()
    deadline = time.monotonic() + 20
    while writer.dead_letter_rows == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.shutdown(drain_timeout=0)
    assert sorted(client.stored) == sorted(i for i in ids if i != "e6")
    assert writer.dead_letter_rows == 1 and writer.dead_letter_reasons == {"TYPE_MISMATCH": 1}
    (parked,) = (tmp_path / "dead-letter").glob("*.seg")
    frames, _ = decode_segment(parked.read_bytes())
    assert [f[1].column("event_id").to_pylist() for f in frames] == [["e6"]]
    assert spool.pending_rows == 0
    spool.shutdown()


def test_the_months_of_a_batch_are_its_partitions():
    from collector.writer import _months

    ms = pa.array(["2026-01-15", "2026-03-02", "2026-01-31", "2031-07-01"]).cast(
        pa.timestamp("ms")).cast(pa.int64()).to_pylist()
    rows = pa.table({"event_id": ["a", "b", "c", "d"],
                     "event_time": pa.array(ms, pa.timestamp("ms", tz="UTC"))})
    assert _months(rows) == [202601, 202603, 203107]
    assert _months(rows.slice(0, 1)) == [202601]
