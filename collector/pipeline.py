"""The only place the collector's stages are wired: normalize (worker processes) -> spool -> ClickHouse writer.

Start order is sink first (storage, migrations, spool replay, writer), receivers last; shutdown
is the reverse and idempotent. Receivers call `normalize(signal, body, content_type)`: a worker
process decodes the body and splits it into rows and rejects; then `store(signal, batch)` hands
the rows to the spool, and its future resolves when they are durable, which is when the
receiver may acknowledge.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from collector.normalize import NormalizedBatch
from collector.normalize_pool import NormalizerPool
from collector.spool import Spool
from collector.writer import ClickHouseWriter
from collector.config import CollectorSettings
from core.config import redacted
from core.storage import connect
from schemas.migrations import migrate

log = logging.getLogger(__name__)


@dataclass
class Submission:
    """A normalized request on its way to durability."""

    batch: NormalizedBatch
    durable: Future


class Pipeline:
    def __init__(self, config: CollectorSettings, *, client: Client | None = None,
                 database: str | None = None):
        self.config = config
        c = config.collector
        self.normalizers = NormalizerPool(workers=c.normalize_workers,
                                          max_extra_attributes=c.max_extra_attributes,
                                          redact_attributes=c.redact_attributes,
                                          retry_after=c.retry_after)
        self.spool = Spool(c.spool_dir, max_bytes=c.spool_max_size, retry_after=c.retry_after)
        self._client = client
        self._database = database
        self._owns_client = client is None
        self.writer: ClickHouseWriter | None = None
        self.counts: Counter = Counter()
        self._started = False

    @property
    def client(self) -> Client:
        assert self._client is not None, "pipeline not started"
        return self._client

    @property
    def database(self) -> str:
        assert self._database is not None, "pipeline not started"
        return self._database

    def start(self) -> None:
        if self._started:
            return
        if self._client is None:
            self._client, target = connect(self.config.storage.dsn, self.config.storage.database)
            self._database = target.database
        migrate(self._client, self._database, retention_days=self.config.storage.retention_days)
        self.spool.start()
        instance = hashlib.blake2b(
            f"{socket.gethostname()}:{self.spool.directory.resolve()}".encode(),
            digest_size=4).hexdigest()
        c = self.config.collector
        self.writer = ClickHouseWriter(self._client, self._database, self.spool,
                                       instance=instance, max_rows=c.batch_max_rows,
                                       max_delay=c.batch_max_delay)
        self.writer.start()
        self.normalizers.start()
        self._started = True
        log.info("pipeline started with config %s", redacted(self.config))

    def shutdown(self) -> None:
        """Drain durable rows into ClickHouse, then stop. Safe to call twice or before start."""
        self.normalizers.shutdown()
        if self.writer is not None:
            self.writer.shutdown()
        self.spool.shutdown()
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
        if self._started:
            log.info("pipeline stopped: %s", dict(self.counts))
        self._started = False

    def normalize(self, signal_name: str, body: bytes, content_type: str) -> Future:
        """Decode and normalize a request body (in a worker process); a future of the batch.

        The future's exception is a DecodeError for an undecodable body.
        """
        return self.normalizers.submit(signal_name, body, content_type)

    def store(self, signal_name: str, batch: NormalizedBatch) -> Submission:
        """Hand normalized rows to the spool. Raises StorageUnavailable when it cannot take them.

        Acknowledge the request only once `Submission.durable` has resolved.
        """
        durable = self.spool.append(batch.tables)
        self.counts[f"{signal_name}_accepted"] += batch.accepted
        self.counts[f"{signal_name}_rejected"] += batch.rejected
        self.counts[f"{signal_name}_ignored"] += batch.ignored
        return Submission(batch, durable)

    def self_metrics(self) -> dict[str, float]:
        """Counters and gauges for /metrics; names follow the otelcol_receiver_* style."""
        metrics = {f"policyscope_records_{k}_total": float(v) for k, v in self.counts.items()}
        metrics["policyscope_spool_backlog_bytes"] = float(self.spool.backlog_bytes)
        metrics["policyscope_spool_fsyncs_total"] = float(self.spool.fsyncs)
        metrics["policyscope_spool_replayed_rows_total"] = float(self.spool.replayed_rows)
        if self.writer is not None:
            metrics["policyscope_writer_inserted_rows_total"] = float(self.writer.inserted_rows)
            metrics["policyscope_writer_duplicate_rows_total"] = float(self.writer.duplicate_rows)
            metrics["policyscope_writer_failed_inserts_total"] = float(
                self.writer.failed_inserts)
            metrics["policyscope_writer_dead_letter_rows_total"] = float(
                self.writer.dead_letter_rows)
        return metrics
