"""Spool -> ClickHouse, exactly once per event_id.

Each batch (size- and time-bounded by the spool's `take`) is inserted per table in two steps:
the rows go into a per-collector Memory staging table, then one INSERT ... SELECT copies the
rows whose event_id is not stored yet (looked up in the batch's time range, which the sorting
key and the event_id bloom filter prune) and collapses duplicates within the batch. The insert
carries a deduplication token derived from the batch's event ids, so an identical retry is a
no-op even before the lookup. A client retry, a spool replay after a crash, or both, therefore
never add a row twice. Failed inserts are retried with backoff; a batch the server refuses
5 times in a row is parked in `spool_dir/dead-letter/` (same frame format), never dropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from collector.spool import Frame, Spool, encode
from schemas.events import TABLES, Table

log = logging.getLogger(__name__)

POISON_ATTEMPTS = 5  # consecutive refusals of one batch before it is parked as dead letter


class ClickHouseWriter:
    """The sink stage: owns the client it inserts with while running."""

    def __init__(self, client: Client, database: str, spool: Spool, *, instance: str,
                 max_rows: int, max_delay: float):
        self.client = client
        self.database = database
        self.spool = spool
        self.instance = instance
        self.max_rows = max_rows
        self.max_delay = max_delay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.inserted_rows = 0
        self.duplicate_rows = 0
        self.failed_inserts = 0
        self.dead_letter_rows = 0
        self.last_insert_at: float | None = None

    def staging_name(self, table: Table) -> str:
        return f"{self.database}._staging_{table.name}_{self.instance}"

    def start(self) -> None:
        for table in TABLES:
            columns = ", ".join(f"{c.name} {c.clickhouse_type}" for c in table.columns)
            self.client.command(
                f"CREATE TABLE IF NOT EXISTS {self.staging_name(table)} ({columns}) "
                "ENGINE = Memory")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="clickhouse-writer", daemon=True)
        self._thread.start()

    def shutdown(self, drain_timeout: float = 30.0) -> None:
        """Insert what is durable (up to `drain_timeout` seconds), then stop. Idempotent."""
        if self._thread is None:
            return
        deadline = time.monotonic() + drain_timeout
        while self.spool.pending_rows and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        backoff, rejected_in_a_row = 0.2, 0
        while not self._stop.is_set():
            frames = self.spool.take(self.max_rows, self.max_delay, self._stop)
            if not frames:
                continue
            try:
                self.write(frames)
            except Exception as exc:  # noqa: BLE001 - any storage error: keep rows, retry
                self.failed_inserts += 1
                # The server refusing the same data again and again (not being unreachable)
                # means a poison batch: park it rather than block every later row behind it.
                rejected_in_a_row = rejected_in_a_row + 1 if isinstance(exc, DatabaseError) \
                    and not isinstance(exc, OperationalError) else 0
                if rejected_in_a_row >= POISON_ATTEMPTS:
                    self._dead_letter(frames, exc)
                    rejected_in_a_row = 0
                    continue
                log.warning("insert failed (%s); retrying in %.1fs, rows kept in the spool",
                            exc, backoff)
                self.spool.give_back(frames)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff, rejected_in_a_row = 0.2, 0
            self.spool.done(frames)

    def _dead_letter(self, frames: list[Frame], exc: Exception) -> None:
        """Write frames ClickHouse keeps refusing to spool_dir/dead-letter/, then release them."""
        folder = self.spool.directory / "dead-letter"
        folder.mkdir(exist_ok=True)
        path = folder / f"{time.time_ns()}.seg"
        with open(path, "wb") as fh:
            for frame in frames:
                fh.write(encode(frame.table_name, frame.rows))
            fh.flush()
            os.fsync(fh.fileno())
        rows = sum(f.rows.num_rows for f in frames)
        self.dead_letter_rows += rows
        log.error("ClickHouse refused a batch %d times (%s); %d rows parked in %s",
                  POISON_ATTEMPTS, exc, rows, path)
        self.spool.done(frames)

    def write(self, frames: list[Frame]) -> None:
        by_table: dict[str, list[pa.Table]] = {}
        for frame in frames:
            by_table.setdefault(frame.table_name, []).append(frame.rows)
        for table in TABLES:
            parts = by_table.get(table.name)
            if parts:
                self._insert(table, pa.concat_tables(parts))
        self.last_insert_at = time.time()

    def _insert(self, table: Table, rows: pa.Table) -> None:
        ids = rows.column("event_id")
        token = hashlib.blake2b(
            "\n".join(sorted(ids.to_pylist())).encode(), digest_size=16).hexdigest()
        times = rows.column("event_time")
        lo, hi = pc.min(times).value, pc.max(times).value  # ms since epoch
        staging = self.staging_name(table)
        target = f"{self.database}.{table.name}"
        columns = ", ".join(table.column_names)
        self.client.command(f"TRUNCATE TABLE {staging}")
        self.client.insert_arrow(staging, rows)
        before = self._count(target, lo, hi)
        self.client.command(
            f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staging} "
            f"WHERE event_id NOT IN (SELECT event_id FROM {target} "
            f"WHERE event_time BETWEEN fromUnixTimestamp64Milli({int(lo)}) "
            f"AND fromUnixTimestamp64Milli({int(hi)}) "
            f"AND event_id IN (SELECT event_id FROM {staging})) "
            "LIMIT 1 BY event_id",
            settings={"insert_deduplication_token": token})
        added = self._count(target, lo, hi) - before
        self.inserted_rows += added
        self.duplicate_rows += rows.num_rows - added

    def _count(self, target: str, lo: int, hi: int) -> int:
        return int(self.client.command(
            f"SELECT count() FROM {target} WHERE event_time BETWEEN "
            f"fromUnixTimestamp64Milli({int(lo)}) AND fromUnixTimestamp64Milli({int(hi)})"))
