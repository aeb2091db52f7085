"""Spool -> ClickHouse, exactly once per event_id.

Each batch (size- and time-bounded by the spool's `take`) is inserted per table in two steps:
the rows go into a per-collector Memory staging table, then one INSERT ... SELECT copies the
rows whose event_id is not stored yet (looked up in the batch's time range, which the sorting
key and the event_id bloom filter prune) and collapses duplicates within the batch. The insert
carries a deduplication token derived from the batch's event ids, so an identical retry is a
no-op even before the lookup. A client retry, a spool replay after a crash, or both, therefore
never add a row twice. Rows go in one insert per 50 months (the tables' partitions), so a
batch spanning many months is not refused for having too many partitions. Failed inserts are
retried with backoff; when the server refuses a batch 5 times in a row, the batch is bisected
until only the rows it refuses for themselves remain -- the rest is stored -- and only those
are parked in `spool_dir/dead-letter/` (same frame format, the server's reasons in a sidecar:
collector/deadletters.py), counted by the server's reason; nothing is dropped. Replaying them
(`policyscope deadletters replay`) goes through the same insert path (`store_accepted`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from collector.deadletters import UNKNOWN_TABLE, DeadLetterFolder, Refused, folder_of, reason_of
from collector.self_metrics import InsertLatency
from collector.spool import Frame, Spool
from schemas.events import TABLES, Table

log = logging.getLogger(__name__)

POISON_ATTEMPTS = 5  # consecutive refusals of one batch before it is parked as dead letter
MONTHS_PER_INSERT = 50  # partitions per insert block, well under the server's limit of 100
# Server errors about the server's state, not about the rows: a batch refused with one of
# these is retried for as long as they last (the spool holds it; /health says degraded) and
# never parked. chDB reports every engine error as a DatabaseError, never OperationalError.
TRANSIENT_REASONS = frozenset({
    "TOO_MANY_PARTS", "MEMORY_LIMIT_EXCEEDED", "CANNOT_ALLOCATE_MEMORY", "NOT_ENOUGH_SPACE",
    "CANNOT_WRITE_TO_FILE_DESCRIPTOR", "CANNOT_FSYNC", "TABLE_IS_READ_ONLY", "READONLY",
    "TIMEOUT_EXCEEDED", "TOO_MANY_SIMULTANEOUS_QUERIES", "SOCKET_TIMEOUT", "NETWORK_ERROR",
    "ALL_CONNECTION_TRIES_FAILED", "KEEPER_EXCEPTION", "ABORTED", "QUERY_WAS_CANCELLED",
    "TABLE_IS_DROPPED", "UNKNOWN_TABLE", "UNKNOWN_DATABASE", "DISTRIBUTED_TOO_MANY_PENDING_BYTES",
    "AUTHENTICATION_FAILED", "ACCESS_DENIED", "REQUIRED_PASSWORD", "UNFINISHED"})


def transient(exc: Exception) -> bool:
    """Storage unreachable, or refusing for a reason of its own (TRANSIENT_REASONS)."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DatabaseError) and reason_of(exc) in TRANSIENT_REASONS)


FIRST_BACKOFF = 0.2  # seconds before a failed insert is retried; doubled each time, up to 30


class StorageStateError(OperationalError):
    """Bisection met a transient refusal: the batch is not poison, retry it whole (handled
    wherever unreachable storage is)."""


class ClickHouseWriter:
    """The sink stage: owns the client it inserts with while running. Without a spool
    (`None`) it only inserts what it is given (`store_accepted`: the dead-letter replay)."""

    def __init__(self, client: Client, database: str, spool: Spool | None, *, instance: str,
                 max_rows: int, max_delay: float, first_backoff: float = FIRST_BACKOFF):
        self.client = client
        self.first_backoff = first_backoff  # seconds before the first retry; doubles to 30
        self.database = database
        self.spool = spool
        self.instance = instance
        self.max_rows = max_rows
        self.max_delay = max_delay
        self._stop = threading.Event()
        self._draining = threading.Event()  # set by shutdown: stop waiting for max_delay
        self._thread: threading.Thread | None = None
        self.inserted_rows = 0
        self.duplicate_rows = 0
        self.failed_inserts = 0
        self.dead_letter_rows = 0
        self.dead_letter_reasons: Counter = Counter()  # rows parked, by the server's reason
        self.last_insert_at: float | None = None
        self.failing_since: float | None = None  # monotonic time of the first failed insert
        self.insert_latency = InsertLatency()  # seconds per successful batch insert

    def staging_name(self, table: Table) -> str:
        return f"{self.database}._staging_{table.name}_{self.instance}"

    def create_staging(self) -> None:
        """This writer's Memory staging tables (named by `instance`), one per event table."""
        for table in TABLES:
            columns = ", ".join(f"{c.name} {c.clickhouse_type}" for c in table.columns)
            self.client.command(
                f"CREATE TABLE IF NOT EXISTS {self.staging_name(table)} ({columns}) "
                "ENGINE = Memory")

    def drop_staging(self) -> None:
        for table in TABLES:
            self.client.command(f"DROP TABLE IF EXISTS {self.staging_name(table)}")

    def start(self) -> None:
        self.create_staging()
        self._stop.clear()
        self._draining.clear()
        self._thread = threading.Thread(target=self._run, name="clickhouse-writer", daemon=True)
        self._thread.start()

    def shutdown(self, drain_timeout: float = 30.0) -> None:
        """Insert what is durable (up to `drain_timeout` seconds), then stop. Idempotent."""
        if self._thread is None:
            return
        deadline = time.monotonic() + drain_timeout
        self._draining.set()  # insert what is pending now, without waiting for max_delay
        while self.spool.pending_rows and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.spool.pending_rows:
            log.warning("%d rows not in storage after the %.0f s drain; they stay in the "
                        "spool and go in at the next start", self.spool.pending_rows,
                        drain_timeout)
        self._stop.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        backoff, rejected_in_a_row = self.first_backoff, 0
        while not self._stop.is_set():
            frames = self.spool.take(self.max_rows, self.max_delay, self._draining)
            if not frames:
                if self._draining.is_set():
                    self._stop.wait(0.05)
                continue
            began = time.perf_counter()
            try:
                self.write(frames)
            except Exception as exc:  # noqa: BLE001 - any storage error: keep rows, retry
                self.failed_inserts += 1
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                # The server refusing the same data again and again (not being unreachable)
                # means a poison batch: park it rather than block every later row behind it.
                rejected_in_a_row = rejected_in_a_row + 1 if isinstance(exc, DatabaseError) \
                    and not transient(exc) else 0
                if rejected_in_a_row >= POISON_ATTEMPTS:
                    rejected_in_a_row = 0
                    if self._isolate(frames, exc):
                        continue
                log.warning("insert failed (%s); retrying in %.1fs, rows kept in the spool",
                            exc, backoff)
                self.spool.give_back(frames)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            self.insert_latency.observe(time.perf_counter() - began)
            backoff, rejected_in_a_row = self.first_backoff, 0
            self.failing_since = None
            self.spool.done(frames)

    def _isolate(self, frames: list[Frame], exc: Exception) -> bool:
        """Store what the server takes of a batch it keeps refusing, bisecting each table's
        rows, and park the rows it refuses for themselves; then release the frames. False (the
        caller gives the frames back, once) when storage becomes unreachable meanwhile or the
        refused rows cannot be written to disk: inserts are idempotent, so the whole batch is
        simply retried later."""
        try:
            refused = self.store_accepted((f.table_name, f.rows) for f in frames)
            if refused:
                self._dead_letter(refused, exc)
        except OperationalError as unreachable:
            log.warning("storage went away or refused for its own reasons while isolating "
                        "refused rows (%s); retrying", unreachable)
            return False
        except OSError as failed:
            log.error("cannot park the rows storage refuses (%s); they stay in the spool",
                      failed)
            return False
        self.spool.done(frames)
        return True

    def store_accepted(self, frames: Iterable[tuple[str, pa.Table]]) -> Refused:
        """Insert (table name, rows) pairs exactly once per event_id, bisecting what the server
        refuses, and return the rows it refuses for themselves with its reasons. Raises
        OperationalError when storage is unreachable (inserts are idempotent: retry it all)."""
        by_name: dict[str, list[pa.Table]] = {}
        for name, rows in frames:
            by_name.setdefault(name, []).append(rows)
        refused = Refused()
        for name, parts in by_name.items():
            table = next((t for t in TABLES if t.name == name), None)
            if table is None:
                refused.add(name, pa.concat_tables(parts), UNKNOWN_TABLE,
                            f"this version of PolicyScope has no table {name!r}")
                continue
            self._bisect(table, pa.concat_tables(parts), refused)
        return refused

    def _bisect(self, table: Table, rows: pa.Table, refused: Refused) -> None:
        try:
            self._insert(table, rows)
        except OperationalError:
            raise
        except DatabaseError as exc:
            if transient(exc):
                raise StorageStateError(str(exc)) from exc
            if rows.num_rows == 1:
                refused.add_error(table.name, rows, exc)
                return
            half = rows.num_rows // 2
            self._bisect(table, rows.slice(0, half), refused)
            self._bisect(table, rows.slice(half), refused)

    def _dead_letter(self, refused: Refused, exc: Exception) -> None:
        """Park the rows ClickHouse refuses for themselves in spool_dir/dead-letter/."""
        path = DeadLetterFolder(folder_of(self.spool.directory)).park(refused)
        self.dead_letter_rows += refused.rows
        self.dead_letter_reasons.update(refused.reasons)
        log.error("ClickHouse refused %d rows for themselves (%s; e.g. %s); parked in %s",
                  refused.rows, dict(refused.reasons), str(exc).split("\n")[0][:200], path)

    @staticmethod
    def _by_table(frames: list[Frame]) -> list[tuple[Table, pa.Table]]:
        by_table: dict[str, list[pa.Table]] = {}
        for frame in frames:
            by_table.setdefault(frame.table_name, []).append(frame.rows)
        return [(table, pa.concat_tables(by_table[table.name])) for table in TABLES
                if table.name in by_table]

    def write(self, frames: list[Frame]) -> None:
        for table, rows in self._by_table(frames):
            self._insert(table, rows)
        self.last_insert_at = time.time()

    def _insert(self, table: Table, rows: pa.Table) -> None:
        """Stage the rows, then copy the ones not stored yet into the table: one INSERT ...
        SELECT per `MONTHS_PER_INSERT` months of event time (the partition key; the server
        refuses an insert block of more than `max_partitions_per_insert_block`, 100), each
        with its own deduplication token."""
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
        months = _months(rows)
        groups = [months[i:i + MONTHS_PER_INSERT]
                  for i in range(0, len(months), MONTHS_PER_INSERT)]
        for group in groups:
            some_months = "" if len(groups) == 1 else \
                f"toYYYYMM(event_time) IN ({', '.join(map(str, group))}) AND "
            self.client.command(
                f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staging} "
                f"WHERE {some_months}event_id NOT IN (SELECT event_id FROM {target} "
                f"WHERE event_time BETWEEN fromUnixTimestamp64Milli({int(lo)}) "
                f"AND fromUnixTimestamp64Milli({int(hi)}) "
                f"AND event_id IN (SELECT event_id FROM {staging})) "
                "LIMIT 1 BY event_id",
                settings={"insert_deduplication_token": token if len(groups) == 1
                          else f"{token}-{group[0]}"})
        added = self._count(target, lo, hi) - before
        self.inserted_rows += added
        self.duplicate_rows += rows.num_rows - added

    def _count(self, target: str, lo: int, hi: int) -> int:
        return int(self.client.command(
            f"SELECT count() FROM {target} WHERE event_time BETWEEN "
            f"fromUnixTimestamp64Milli({int(lo)}) AND fromUnixTimestamp64Milli({int(hi)})"))


def _months(rows: pa.Table) -> list[int]:
    """The calendar months (UTC) of the rows' `event_time` as YYYYMM, the tables' partitions."""
    times = rows.column("event_time").combine_chunks()
    if len(times) == 0 or times.null_count:
        return [0]
    ends = pc.min_max(times)
    months = np.array([ends["min"].value, ends["max"].value], dtype="datetime64[ms]").astype(
        "datetime64[M]").astype(np.int64)  # months since 1970-01
    if months[0] != months[1]:  # a batch over several months (rare): every month in it
        months = np.unique(times.cast(pa.int64()).to_numpy().astype("datetime64[ms]").astype(
            "datetime64[M]").astype(np.int64))
    else:
        months = months[:1]
    return [int(1970 + m // 12) * 100 + int(m % 12) + 1 for m in months]
