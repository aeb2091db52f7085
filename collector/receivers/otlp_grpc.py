"""OTLP/gRPC receiver: LogsService/Export and TraceService/Export (MetricsService accepted, not
stored). gzip is handled by grpcio. The message size limit is `max_request_size` (grpcio's own
default is 4 MiB); a larger message gets RESOURCE_EXHAUSTED from grpcio itself. When the spool
cannot take the rows the call fails with UNAVAILABLE and a google.rpc.RetryInfo detail, which
OTLP exporters honour as the retry delay.
"""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from collector.errors import RetryableError
from collector.pipeline import Pipeline

log = logging.getLogger(__name__)


def _unavailable(context: grpc.ServicerContext, exc: RetryableError) -> None:
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=max(1, int(round(exc.retry_after)))))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(exc))
    status.details.add().Pack(retry)
    context.abort_with_status(_RichStatus(status))


class _RichStatus(grpc.Status):
    """A grpc.Status carrying google.rpc.Status details in grpc-status-details-bin."""

    def __init__(self, status: status_pb2.Status):
        self.code = grpc.StatusCode.UNAVAILABLE
        self.details = status.message
        self.trailing_metadata = (("grpc-status-details-bin", status.SerializeToString()),)


@dataclass(frozen=True)
class _Service:
    name: str  # fully qualified gRPC service name
    request_type: type
    response_type: type
    rejected_field: str
    submit: str | None  # Pipeline method, or None: decoded, not stored


_SERVICES = (
    _Service("opentelemetry.proto.collector.logs.v1.LogsService",
             logs_service_pb2.ExportLogsServiceRequest,
             logs_service_pb2.ExportLogsServiceResponse, "rejected_log_records", "submit_logs"),
    _Service("opentelemetry.proto.collector.trace.v1.TraceService",
             trace_service_pb2.ExportTraceServiceRequest,
             trace_service_pb2.ExportTraceServiceResponse, "rejected_spans", "submit_spans"),
    _Service("opentelemetry.proto.collector.metrics.v1.MetricsService",
             metrics_service_pb2.ExportMetricsServiceRequest,
             metrics_service_pb2.ExportMetricsServiceResponse, "rejected_data_points", None),
)


def _export_handler(pipeline: Pipeline, service: _Service):
    """Export takes raw bytes so an undecodable message gets INVALID_ARGUMENT, not INTERNAL."""

    def export(raw: bytes, context: grpc.ServicerContext):
        request = service.request_type()
        try:
            request.ParseFromString(raw)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"message is not a valid {service.request_type.__name__}: {exc}")
        response = service.response_type()
        if service.submit is None:
            return response
        try:
            submission = getattr(pipeline, service.submit)(request)
            submission.durable.result()
        except RetryableError as exc:
            _unavailable(context, exc)
        if submission.batch.rejected:
            setattr(response.partial_success, service.rejected_field, submission.batch.rejected)
            response.partial_success.error_message = submission.batch.reject_message()
        return response

    return grpc.method_handlers_generic_handler(service.name, {
        "Export": grpc.unary_unary_rpc_method_handler(
            export, request_deserializer=None,
            response_serializer=lambda message: message.SerializeToString()),
    })


class OtlpGrpcReceiver:
    def __init__(self, pipeline: Pipeline, host: str, port: int, *, max_request_size: int,
                 workers: int = 8):
        self.pipeline = pipeline
        self.address = f"{host}:{port}"
        options = [("grpc.max_receive_message_length", max_request_size),
                   ("grpc.max_send_message_length", 4 * 1024**2)]
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers,
                                                             thread_name_prefix="otlp-grpc"),
                                  options=options)
        self.server.add_generic_rpc_handlers(
            tuple(_export_handler(pipeline, service) for service in _SERVICES))
        self.bound_port: int | None = None
        self._started = False

    def start(self) -> None:
        self.bound_port = self.server.add_insecure_port(self.address)
        if self.bound_port == 0:
            raise OSError(f"cannot listen on {self.address} for OTLP/gRPC")
        self.server.start()
        self._started = True
        log.info("OTLP/gRPC receiver listening on %s (port %d)", self.address, self.bound_port)

    def shutdown(self, grace: float = 5.0) -> None:
        if self._started:
            self.server.stop(grace).wait()
            self._started = False
