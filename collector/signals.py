"""The OTLP signals the collector accepts, defined once for both receivers and the normalizer."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from collector import otlp_json
from collector.errors import DecodeError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@dataclass(frozen=True)
class Signal:
    name: str
    http_path: str
    grpc_service: str
    request_type: type
    response_type: type
    rejected_field: str  # the count field of partial_success
    stored: bool  # False: decoded and counted, not stored (metrics)


LOGS = Signal("logs", "/v1/logs", "opentelemetry.proto.collector.logs.v1.LogsService",
              logs_service_pb2.ExportLogsServiceRequest,
              logs_service_pb2.ExportLogsServiceResponse, "rejected_log_records", True)
TRACES = Signal("traces", "/v1/traces", "opentelemetry.proto.collector.trace.v1.TraceService",
                trace_service_pb2.ExportTraceServiceRequest,
                trace_service_pb2.ExportTraceServiceResponse, "rejected_spans", True)
METRICS = Signal("metrics", "/v1/metrics",
                 "opentelemetry.proto.collector.metrics.v1.MetricsService",
                 metrics_service_pb2.ExportMetricsServiceRequest,
                 metrics_service_pb2.ExportMetricsServiceResponse, "rejected_data_points", False)
SIGNALS = (LOGS, TRACES, METRICS)
BY_NAME = {s.name: s for s in SIGNALS}


def decode(signal: Signal, body: bytes, content_type: str = PROTOBUF):
    """Parse a request body (protobuf or OTLP/JSON). Raises DecodeError naming what is wrong."""
    message = signal.request_type()
    if content_type == JSON:
        return otlp_json.parse(body, message)
    try:
        message.ParseFromString(body)
    except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"body is not a valid {signal.request_type.__name__} "
                          f"protobuf: {exc}") from exc
    return message
