"""The only place the collector's stages are wired: normalize (worker processes) -> spool -> ClickHouse writer.

Start order is sink first (storage, migrations, spool replay, writer), receivers last; shutdown
is the reverse and idempotent. Every receiver hands its rows to the pipeline the same way:
`consume(source, batch)` with a NormalizedBatch (collector/rows.py), then acknowledges once the
returned `Submission.durable` has resolved. The OTLP receivers get their batch from
`normalize(signal, body, content_type)`, which decodes the body in a worker process; a native
receiver or importer builds it itself with `collector.rows.RowBuilder`.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from collector.admission import Admission, Ticket, default_memory_limit
from collector.rows import NormalizedBatch, row_settings
from collector.self_metrics import SelfMetricsRecorder
from collector.normalize_pool import NormalizerPool
from collector.spool import Spool
from collector.writer import ClickHouseWriter
from collector.config import CollectorSettings
from core.config import redacted
from core.storage import connect
from schemas.events import TABLES
from schemas.migrations import migrate

log = logging.getLogger(__name__)


@dataclass
class Submission:
    """A request's rows on their way to durability: `durable` resolves (None) once they are
    fsync'd to the spool, or fails with StorageUnavailable."""

    batch: NormalizedBatch
    durable: Future


class Pipeline:
    def __init__(self, config: CollectorSettings, *, client: Client | None = None,
                 database: str | None = None):
        self.config = config
        c = config.collector
        self.normalizers = NormalizerPool(workers=c.normalize_workers,
                                          retry_after=c.retry_after, **row_settings(c))
        self.spool = Spool(c.spool_dir, max_bytes=c.spool_max_size, retry_after=c.retry_after)
        self.admission = Admission(
            max_requests=c.max_concurrent_requests, max_bytes=c.max_inflight_bytes,
            memory_limit=default_memory_limit() if c.memory_limit is None else c.memory_limit,
            retry_after=c.retry_after, worker_pids=self.normalizers.worker_pids)
        self._client = client
        self._database = database
        self._owns_client = client is None
        self.writer: ClickHouseWriter | None = None
        self.counts: Counter = Counter()
        self.truncated: Counter = Counter()  # values cut to the limits, by column
        self.rejects: Counter = Counter()  # records rejected, by (source, reason code)
        self.recorder = SelfMetricsRecorder(self, interval=c.self_metrics_interval)
        self._schemas = {t.name: t.arrow_schema() for t in TABLES}
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
        self.admission.start()
        self.recorder.start()
        self._started = True
        log.info("pipeline started with config %s", redacted(self.config))

    def shutdown(self) -> None:
        """Drain durable rows into ClickHouse, then stop. Safe to call twice or before start.
        Call it after the receivers have stopped: their requests in flight need the workers."""
        self.admission.stop()
        self.normalizers.shutdown()
        if self.writer is not None:
            self.writer.shutdown(drain_timeout=self.config.collector.shutdown_timeout)
        self.recorder.shutdown()  # after the drain: its final snapshot counts those rows
        self.spool.shutdown()
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
        if self._started:
            log.info("pipeline stopped: %s", dict(self.counts))
        self._started = False

    def admit(self) -> Ticket:
        """Take on one request (release the ticket once it is answered), or raise
        `Overloaded` (429 / RESOURCE_EXHAUSTED) or `MemoryPressure` (503 / UNAVAILABLE); see
        collector/admission.py. Every receiver calls it before reading a request's body."""
        return self.admission.admit()

    def normalize(self, signal_name: str, body: bytes, content_type: str) -> Future:
        """Decode and normalize an OTLP request body (in a worker process); a future of the
        NormalizedBatch to hand to `consume`.

        The future's exception is a DecodeError (permanent) for an undecodable body; raises
        RetryableError when the worker processes are unavailable.
        """
        return self.normalizers.submit(signal_name, body, content_type)

    def consume(self, source: str, batch: NormalizedBatch) -> Submission:
        """Take one request's rows towards durability: the one entry for every receiver.

        `source` names the counters in /metrics (`policyscope_records_<source>_accepted_total`,
        `_rejected_total`, `_ignored_total`): the OTLP signal (`logs`, `traces`) or the native
        receiver / importer (`opa`, `falco`, ...). `batch` comes from `normalize()` or from a
        `collector.rows.BatchBuilder`; its records already split into rows, rejects and
        ignores.

        Acknowledge the request only once `Submission.durable` has resolved without an
        exception: the rows are then fsync'd to the spool and will reach ClickHouse even if
        the collector crashes. Errors, by what the sender should do:

        * retryable (`RetryableError`, here `StorageUnavailable`): the spool's backlog is over
          its limit or the collector is stopping (raised by this call), or the spool write
          failed (the exception of `durable`). Nothing was stored; answer "try again after
          `exc.retry_after` seconds" (HTTP 503 + Retry-After, gRPC UNAVAILABLE + RetryInfo)
          and never acknowledge.
        * permanent (`PermanentError`: `DecodeError`, `RequestTooLarge`,
          `UnsupportedMediaType`): the request can never succeed as sent (HTTP 4xx, gRPC
          INVALID_ARGUMENT / RESOURCE_EXHAUSTED). They arise before a batch exists (the
          receiver's own parsing, or `normalize()`'s future), so this call never raises one.
        * per record: records that break the contract are not errors of the request; they are
          counted in `batch.rejected` with reason codes. Acknowledge the rest once durable and
          report `batch.reject_message()` to the sender (OTLP: partial_success); resending
          them cannot help.

        Raises ValueError for a batch whose tables are not event tables with their exact Arrow
        schema (a bug in the caller, not in the data).
        """
        for name, rows in batch.tables.items():
            schema = self._schemas.get(name)
            if schema is None or not rows.schema.equals(schema):
                raise ValueError(f"table {name!r} of the batch is not an event table with its "
                                 "schema from schemas/events.py; build it with RowBuilder")
        durable = self.spool.append(batch.tables)
        self.counts[f"{source}_accepted"] += batch.accepted
        self.counts[f"{source}_rejected"] += batch.rejected
        self.counts[f"{source}_ignored"] += batch.ignored
        for reason, n in batch.reject_codes.items():
            self.rejects[source, reason] += n
        self.truncated.update(batch.truncated)
        return Submission(batch, durable)

    def health(self) -> dict:
        """{"status": "ok" | "degraded", "checks": {...}} for /health: degraded while the
        normalizer pool rebuilds, while the spool refuses new requests (backlog over its
        limit) and while inserts into storage keep failing."""
        checks: dict[str, str] = {"normalizers": self.normalizers.state}
        over = self.spool.backlog_bytes > self.spool.max_bytes
        checks["spool"] = "full" if over else "ok"
        checks["memory"] = "over the soft limit" if self.admission.under_pressure else "ok"
        failing = self.writer.failing_since if self.writer is not None else None
        checks["storage"] = "ok" if failing is None else \
            f"inserts failing for {time.monotonic() - failing:.0f} s"
        if not self._started:
            checks["pipeline"] = "stopped"
        ok = all(v == "ok" for v in checks.values())
        return {"status": "ok" if ok else "degraded", "checks": checks}

    def self_metrics(self) -> dict[str, float]:
        """Counters and gauges for /metrics; names follow the otelcol_receiver_* style."""
        metrics = {f"policyscope_records_{k}_total": float(v) for k, v in self.counts.items()}
        metrics.update(self.admission.metrics())
        for (source, reason), n in sorted(self.rejects.items()):
            metrics[f'policyscope_records_{source}_rejected_total{{reason="{reason}"}}'] = \
                float(n)
        for column, n in sorted(self.truncated.items()):
            metrics[f'policyscope_values_truncated_total{{column="{column}"}}'] = float(n)
        metrics["policyscope_normalizer_restarts_total"] = float(self.normalizers.restarts)
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
            for reason, rows in sorted(self.writer.dead_letter_reasons.items()):
                metrics[f'policyscope_writer_dead_letter_rows_total{{reason="{reason}"}}'] = \
                    float(rows)
        return metrics
