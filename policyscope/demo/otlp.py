"""OTLP log sinks built on the official OpenTelemetry Python SDK, one per cluster.

Each cluster gets its own LoggerProvider (resource: `k8s.cluster.name`,
`deployment.environment.name`, `service.name=opa-admission-controller`), a
BatchLogRecordProcessor and an OTLPLogExporter (gRPC or HTTP/protobuf). Two things the
SDK does not do for us:

* it silently drops records when its queue is full, so `emit` applies back-pressure:
  after `max_queue_size // 2` records since the last flush it calls `force_flush()`
  (a synchronous export), so the queue can never overflow;
* `force_flush()` returns True even when exports failed, so the exporter is wrapped
  to count exported / failed records; `close()` reports those counts.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Sequence

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (BatchLogRecordProcessor, LogRecordExporter,
                                            LogRecordExportResult)
from opentelemetry.sdk.resources import Resource

SCOPE = "policyscope.demo"
AGENT_SERVICE = "opa-admission-controller"


class CountingExporter(LogRecordExporter):
    """Delegates to a real exporter and counts the records it accepted or failed."""

    def __init__(self, inner: LogRecordExporter):
        self.inner = inner
        self.exported = 0
        self.failed = 0
        self._lock = threading.Lock()

    def export(self, batch: Sequence) -> LogRecordExportResult:
        try:
            result = self.inner.export(batch)
        except Exception:  # noqa: BLE001 - an exporter bug counts as a failed export
            result = LogRecordExportResult.FAILURE
        with self._lock:
            if result == LogRecordExportResult.SUCCESS:
                self.exported += len(batch)
            else:
                self.failed += len(batch)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def make_exporter(endpoint: str, protocol: str, timeout: float, compression: str) -> LogRecordExporter:
    """OTLPLogExporter for `protocol` 'grpc' (host:4317) or 'http' (…:4318[/v1/logs])."""
    gzip = compression == "gzip"
    if protocol == "grpc":
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        return OTLPLogExporter(endpoint=endpoint, insecure=not endpoint.startswith("https://"),
                               timeout=timeout,
                               compression=grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression)
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        url = endpoint.rstrip("/")
        if not url.endswith("/v1/logs"):
            url += "/v1/logs"
        return OTLPLogExporter(endpoint=url, timeout=timeout,
                               compression=Compression.Gzip if gzip else Compression.NoCompression)
    raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")


@dataclass
class _Sink:
    provider: LoggerProvider
    logger: object
    exporter: CountingExporter
    pending: int = 0


class OtlpSinks:
    """One SDK pipeline per cluster; `emit` sends one event as an OTLP log record."""

    def __init__(self, endpoint: str, protocol: str, clusters: dict[str, str], *,
                 timeout: float = 10.0, compression: str = "gzip",
                 max_queue_size: int = 8192, max_export_batch_size: int = 512,
                 schedule_delay_millis: int = 1000):
        self._flush_every = max(1, max_queue_size // 2)
        self._sinks: dict[str, _Sink] = {}
        for cluster, env in clusters.items():
            resource = Resource.create({"service.name": AGENT_SERVICE, "k8s.cluster.name": cluster,
                                        "deployment.environment.name": env})
            exporter = CountingExporter(make_exporter(endpoint, protocol, timeout, compression))
            provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
            provider.add_log_record_processor(BatchLogRecordProcessor(
                exporter, schedule_delay_millis=schedule_delay_millis,
                max_export_batch_size=max_export_batch_size, max_queue_size=max_queue_size))
            self._sinks[cluster] = _Sink(provider, provider.get_logger(SCOPE), exporter)
        self.emitted = 0

    def emit(self, cluster: str, event_name: str, attributes: dict,
             severity: SeverityNumber = SeverityNumber.INFO) -> None:
        """Emit one record with `event_name` set; never lets the SDK queue overflow."""
        sink = self._sinks[cluster]
        sink.logger.emit(timestamp=time.time_ns(), severity_number=severity,
                         severity_text=severity.name, event_name=event_name, attributes=attributes)
        self.emitted += 1
        sink.pending += 1
        if sink.pending >= self._flush_every:
            sink.provider.force_flush()
            sink.pending = 0

    def close(self) -> tuple[int, int]:
        """Flush and shut down every pipeline; returns (records exported, records failed)."""
        for sink in self._sinks.values():
            sink.provider.force_flush()
            sink.provider.shutdown()
        return (sum(s.exporter.exported for s in self._sinks.values()),
                sum(s.exporter.failed for s in self._sinks.values()))
