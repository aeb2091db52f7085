"""The collector's own counters, recorded to ClickHouse (`collector_metrics`), so the on-call
page and an SLI on telemetry loss read them from storage, never from the collector's memory.

`SelfMetricsRecorder` is a thread the Pipeline owns: started after the writer, it takes a
snapshot every `collector.self_metrics_interval` (0 = off) and inserts it on a connection of
its own (`core.storage.another`: the same client path as the writer's, but never waiting on
the writer's calls, nor the writer on its), and takes a final snapshot at shutdown, once the
writer has drained, so the last run's inserted rows are in it. A snapshot that cannot be
written is logged once per outage (not once per interval) and simply replaced by the next
one; it never blocks or fails ingest.

**Cumulative counters, not deltas per interval.** Each counter is the total since the run
started (`started_at`), as a Prometheus counter is, and a run is (instance, started_at):
- a snapshot that fails to be written loses nothing: the next one carries the totals (with
  deltas the interval's counts would be gone, or would have to be kept and resent exactly
  once);
- a snapshot stored twice (an insert retried after it had landed) adds nothing;
- a restart is explicit, not guessed from a drop: a new `started_at`, and `seq` 1 on the first
  snapshot the run stored, where every counter counts from zero.
`collector/self_metrics_read.py` turns them into deltas and rates per interval.

Series: `metric` (kind) [`source`, `label`; '' where they do not apply] -- what.

    records_accepted, records_ignored (counter) [receiver / signal] -- per Pipeline.counts
    records_rejected (counter) [receiver / signal, reason code] -- per Pipeline.rejects
    values_truncated (counter) [label: column] -- values cut to the limits
    requests_refused (counter) [label: requests | bytes | memory] -- by admission control
    normalizer_restarts (counter) -- normalizer pools rebuilt
    writer_inserted_rows, writer_duplicate_rows, writer_dead_letter_rows (counter) -- rows
    writer_failed_inserts (counter) -- batch inserts that failed (and were retried)
    insert_seconds_count, insert_seconds_sum (counter) -- successful batch inserts, seconds
    insert_seconds_max (gauge) -- the longest of them since the previous stored snapshot
    spool_backlog_bytes, spool_backlog_rows (gauge) -- durable, not yet in storage
    memory_bytes (gauge) -- resident: collector + workers (memory_limit's sample; with
        memory_limit 0, this process)
    uptime_seconds (gauge) -- since started_at; in every snapshot, so a reader knows when
        each of a run's snapshots was taken (collector/self_metrics_read.py)
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING

import psutil
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from core.storage import another, insert_arrow
from schemas.tables import COLLECTOR_METRICS

if TYPE_CHECKING:
    from collector.pipeline import Pipeline

log = logging.getLogger(__name__)

COUNTER, GAUGE = "counter", "gauge"
UPTIME = "uptime_seconds"  # the one series every snapshot has
_TIME = pa.timestamp("ms", tz="UTC")
SCHEMA = pa.schema([
    ("at", _TIME), ("instance", pa.string()), ("hostname", pa.string()),
    ("started_at", _TIME), ("seq", pa.uint32()), ("metric", pa.string()), ("kind", pa.string()),
    ("source", pa.string()), ("label", pa.string()), ("value", pa.float64())])
Sample = tuple[str, str, str, str, float]  # metric, kind, source, label, value


class InsertLatency:
    """Durations (seconds) of the writer's successful batch inserts: how many and their sum
    since the writer started, and the longest since it was last taken. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._sum = 0.0
        self._max = 0.0

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._count += 1
            self._sum += seconds
            self._max = max(self._max, seconds)

    def totals(self) -> tuple[int, float]:
        """(count, sum of seconds), read together."""
        with self._lock:
            return self._count, self._sum

    def take_max(self) -> float:
        """The longest insert since the previous call (0.0: none), and start again."""
        with self._lock:
            longest, self._max = self._max, 0.0
            return longest


def samples(pipeline: Pipeline, insert_max: float, uptime: float) -> list[Sample]:
    """The pipeline's counters and gauges now (see the module's table). Copies each Counter
    in one step (`dict()` of a Counter holds the GIL throughout), so receivers adding keys
    meanwhile cannot break the snapshot."""
    out: list[Sample] = [(UPTIME, GAUGE, "", "", uptime)]
    for key, n in sorted(dict(pipeline.counts).items()):
        source, _, what = key.rpartition("_")
        if what in ("accepted", "ignored"):
            out.append((f"records_{what}", COUNTER, source, "", float(n)))
    for (source, reason), n in sorted(dict(pipeline.rejects).items()):
        out.append(("records_rejected", COUNTER, source, reason, float(n)))
    for column, n in sorted(dict(pipeline.truncated).items()):
        out.append(("values_truncated", COUNTER, "", column, float(n)))
    admission = pipeline.admission
    refused = dict(admission.refused)
    for limit in ("requests", "bytes", "memory"):
        out.append(("requests_refused", COUNTER, "", limit, float(refused.get(limit, 0))))
    out.append(("normalizer_restarts", COUNTER, "", "", float(pipeline.normalizers.restarts)))
    writer = pipeline.writer
    if writer is not None:
        count, total = writer.insert_latency.totals()
        out += [(name, COUNTER, "", "", float(value)) for name, value in (
            ("writer_inserted_rows", writer.inserted_rows),
            ("writer_duplicate_rows", writer.duplicate_rows),
            ("writer_failed_inserts", writer.failed_inserts),
            ("writer_dead_letter_rows", writer.dead_letter_rows),
            ("insert_seconds_count", count), ("insert_seconds_sum", total))]
        out.append(("insert_seconds_max", GAUGE, "", "", insert_max))
    memory = admission.memory_bytes if admission.memory_limit else \
        psutil.Process().memory_info().rss
    out += [("spool_backlog_bytes", GAUGE, "", "", float(pipeline.spool.backlog_bytes)),
            ("spool_backlog_rows", GAUGE, "", "", float(pipeline.spool.pending_rows)),
            ("memory_bytes", GAUGE, "", "", float(memory))]
    return out


class SelfMetricsRecorder:
    """Snapshots of `pipeline`'s counters into `collector_metrics` every `interval` seconds
    (0 = never: `start` does nothing). `stored` and `failed` count this run's snapshots."""

    def __init__(self, pipeline: Pipeline, *, interval: float, stop_timeout: float = 10.0):
        self.pipeline = pipeline
        self.interval = interval
        self.stop_timeout = stop_timeout
        self.hostname = socket.gethostname()
        self.started_at: float | None = None  # seconds since the epoch; set by start()
        self.stored = 0
        self.failed = 0
        self._client: Client | None = None
        self._failing = False
        self._insert_max = 0.0  # the longest insert not yet in a stored snapshot
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (after the writer: a snapshot reads its counters)."""
        if self.interval <= 0 or self._thread is not None:
            return
        self.started_at, self.stored, self.failed = time.time(), 0, 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="self-metrics", daemon=True)
        self._thread.start()
        log.info("recording the collector's own metrics to %s.%s every %g s",
                 self.pipeline.database, COLLECTOR_METRICS, self.interval)

    def shutdown(self) -> None:
        """Take the final snapshot and stop, waiting at most `stop_timeout` seconds for it
        (storage that hangs must not hold the shutdown). Idempotent; safe without start()."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(self.stop_timeout)
        if self._thread.is_alive():
            log.warning("the final snapshot of the collector's metrics did not finish in "
                        "%g s; abandoned", self.stop_timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.record()
        self.record()  # the final snapshot
        self._drop_client()

    def record(self) -> bool:
        """Take one snapshot and store it; False when it could not be stored (logged once
        per outage; the next snapshot carries the same totals)."""
        writer = self.pipeline.writer
        insert_max = max(self._insert_max,
                         writer.insert_latency.take_max() if writer is not None else 0.0)
        try:
            at = time.time()
            rows = self._rows(at, samples(self.pipeline, insert_max, at - self.started_at))
            if self._client is None:
                self._client = another(self.pipeline.client)
            insert_arrow(self._client, f"{self.pipeline.database}.{COLLECTOR_METRICS}", rows)
        except Exception as exc:  # noqa: BLE001 - any failure: count, log once, try next time
            self.failed += 1
            self._insert_max = insert_max
            if isinstance(exc, OperationalError):  # the connection itself may be gone
                self._drop_client()
            if not self._failing:
                self._failing = True
                log.warning("cannot record the collector's metrics to %s.%s (%s: %s); trying "
                            "again every %g s, ingest is not affected", self.pipeline.database,
                            COLLECTOR_METRICS, type(exc).__name__, str(exc).split("\n")[0],
                            self.interval)
            return False
        self.stored += 1
        self._insert_max = 0.0
        if self._failing:
            self._failing = False
            log.info("the collector's metrics are recorded again (%d snapshots could not be)",
                     self.failed)
        return True

    def _rows(self, at: float, found: list[Sample]) -> pa.Table:
        n = len(found)
        metric, kind, source, label, value = zip(*found) if found else ((),) * 5
        writer = self.pipeline.writer
        return pa.table({
            "at": pa.array([int(at * 1000)] * n, _TIME),
            "instance": [writer.instance if writer is not None else ""] * n,
            "hostname": [self.hostname] * n,
            "started_at": pa.array([int(self.started_at * 1000)] * n, _TIME),
            "seq": pa.array([self.stored + 1] * n, pa.uint32()),
            "metric": list(metric), "kind": list(kind), "source": list(source),
            "label": list(label), "value": pa.array(value, pa.float64())}, schema=SCHEMA)

    def _drop_client(self) -> None:
        if self._client is not None and self._client is not self.pipeline.client:
            self._client.close()
        self._client = None
