"""OTLP/gRPC receiver: LogsService/Export and TraceService/Export (MetricsService accepted, not
stored). gzip is handled by grpcio. The message size limit is `max_request_size` (grpcio's own
default is 4 MiB); a larger message gets RESOURCE_EXHAUSTED from grpcio itself. When the spool
cannot take the rows the call fails with UNAVAILABLE and a google.rpc.RetryInfo detail, which
OTLP exporters honour as the retry delay.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from collector.errors import DecodeError, RetryableError
from collector.pipeline import Pipeline
from collector.signals import PROTOBUF, SIGNALS, Signal

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


def _export_handler(pipeline: Pipeline, signal: Signal):
    """Export takes raw bytes, so a worker decodes them and an undecodable message gets
    INVALID_ARGUMENT (grpcio's own deserializer would answer INTERNAL)."""

    def export(raw: bytes, context: grpc.ServicerContext):
        try:
            batch = pipeline.normalize(signal.name, raw, PROTOBUF).result()
        except DecodeError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except RetryableError as exc:
            _unavailable(context, exc)
        response = signal.response_type()
        if not signal.stored:
            return response
        try:
            pipeline.consume(signal.name, batch).durable.result()
        except RetryableError as exc:
            _unavailable(context, exc)
        if batch.rejected:
            setattr(response.partial_success, signal.rejected_field, batch.rejected)
            response.partial_success.error_message = batch.reject_message()
        return response

    return grpc.method_handlers_generic_handler(signal.grpc_service, {
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
            tuple(_export_handler(pipeline, signal) for signal in SIGNALS))
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
