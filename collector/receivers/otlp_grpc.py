"""OTLP/gRPC receiver: LogsService/Export and TraceService/Export (MetricsService accepted, not
stored). gzip is handled by grpcio. The message size limit is `max_request_size` (grpcio's own
default is 4 MiB); a larger message gets RESOURCE_EXHAUSTED from grpcio itself, as do calls
beyond `max_concurrent_requests`. Over the in-flight byte limit a call fails with
RESOURCE_EXHAUSTED, under memory pressure or when the spool cannot take the rows with
UNAVAILABLE -- both with a google.rpc.RetryInfo detail, which OTLP exporters honour as the
retry delay. With tokens configured, a call without `authorization: Bearer <token>` metadata
fails UNAUTHENTICATED before it is read; TLS / mTLS as configured (collector/auth.py).
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from collector.admission import Overloaded
from collector.auth import TokenAuth, grpc_credentials
from collector.config import CollectorConfig
from collector.errors import DecodeError, RetryableError
from collector.pipeline import Pipeline
from collector.signals import PROTOBUF, SIGNALS, Signal

log = logging.getLogger(__name__)


def _retry_later(context: grpc.ServicerContext, exc: RetryableError) -> None:
    code = code_pb2.RESOURCE_EXHAUSTED if isinstance(exc, Overloaded) else code_pb2.UNAVAILABLE
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=max(1, int(round(exc.retry_after)))))
    status = status_pb2.Status(code=code, message=str(exc))
    status.details.add().Pack(retry)
    context.abort_with_status(_RichStatus(status))


class _RichStatus(grpc.Status):
    """A grpc.Status carrying google.rpc.Status details in grpc-status-details-bin."""

    def __init__(self, status: status_pb2.Status):
        self.code = grpc.StatusCode.RESOURCE_EXHAUSTED \
            if status.code == code_pb2.RESOURCE_EXHAUSTED else grpc.StatusCode.UNAVAILABLE
        self.details = status.message
        self.trailing_metadata = (("grpc-status-details-bin", status.SerializeToString()),)


def _export_handler(pipeline: Pipeline, signal: Signal):
    """Export takes raw bytes, so a worker decodes them and an undecodable message gets
    INVALID_ARGUMENT (grpcio's own deserializer would answer INTERNAL)."""

    def export(raw: bytes, context: grpc.ServicerContext):
        try:
            ticket = pipeline.admit()
        except RetryableError as exc:
            _retry_later(context, exc)
        with ticket:
            try:
                ticket.charge(len(raw))
                batch = pipeline.normalize(signal.name, raw, PROTOBUF).result()
            except DecodeError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except RetryableError as exc:
                _retry_later(context, exc)
            response = signal.response_type()
            if not signal.stored:
                return response
            try:
                pipeline.consume(signal.name, batch).durable.result()
            except RetryableError as exc:
                _retry_later(context, exc)
        if batch.rejected or batch.truncated:
            setattr(response.partial_success, signal.rejected_field, batch.rejected)
            response.partial_success.error_message = batch.reject_message()
        return response

    return grpc.method_handlers_generic_handler(signal.grpc_service, {
        "Export": grpc.unary_unary_rpc_method_handler(
            export, request_deserializer=None,
            response_serializer=lambda message: message.SerializeToString()),
    })


class _Authenticate(grpc.ServerInterceptor):
    """Refuses calls without a known bearer token before their message is read."""

    def __init__(self, auth: TokenAuth):
        self.auth = auth

    def intercept_service(self, continuation, handler_call_details):
        metadata = dict(handler_call_details.invocation_metadata or ())
        try:
            self.auth.check(metadata.get("authorization"))
        except Exception as exc:  # noqa: BLE001 - Unauthenticated; its message is the answer
            message = str(exc)

            def refuse(_request, context: grpc.ServicerContext):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

            return grpc.unary_unary_rpc_method_handler(refuse, request_deserializer=None)
        return continuation(handler_call_details)


class OtlpGrpcReceiver:
    def __init__(self, pipeline: Pipeline, config: CollectorConfig, auth: TokenAuth, *,
                 workers: int = 8):
        self.pipeline = pipeline
        self.address = f"{config.grpc_host}:{config.grpc_port}"
        self.credentials = grpc_credentials(config)
        self.auth = auth
        options = [("grpc.max_receive_message_length", config.max_request_size),
                   ("grpc.max_send_message_length", 4 * 1024**2)]
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
            options=options, maximum_concurrent_rpcs=config.max_concurrent_requests,
            interceptors=[_Authenticate(auth)] if auth.enabled else None)
        self.server.add_generic_rpc_handlers(
            tuple(_export_handler(pipeline, signal) for signal in SIGNALS))
        self.bound_port: int | None = None
        self._started = False

    def start(self) -> None:
        if self.credentials is None:
            self.bound_port = self.server.add_insecure_port(self.address)
        else:
            self.bound_port = self.server.add_secure_port(self.address, self.credentials)
        if self.bound_port == 0:
            raise OSError(f"cannot listen on {self.address} for OTLP/gRPC")
        self.server.start()
        self._started = True
        log.info("OTLP/gRPC receiver listening on %s (port %d)%s%s", self.address,
                 self.bound_port, " with TLS" if self.credentials else "",
                 ", bearer token required" if self.auth.enabled else "")

    def shutdown(self, grace: float = 5.0) -> None:
        if self._started:
            self.server.stop(grace).wait()
            self._started = False
