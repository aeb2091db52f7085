"""OTLP/HTTP receiver (spec v1.11): POST /v1/logs, /v1/traces, /v1/metrics on one port.

Protobuf (`application/x-protobuf`) and JSON (`application/json`) by Content-Type; gzip by
Content-Encoding. Answers: 200 + empty (or partial_success) response in the request's encoding;
400 + google.rpc.Status for an undecodable body; 401 without a valid bearer token (when tokens
are configured, collector/auth.py); 408 when the body takes longer than `body_timeout`; 413
over `max_request_size` -- at once from Content-Length, else while reading or after
decompression; 415 for another content type or encoding; 405 for a non-POST; 429 + Retry-After
over the in-flight limits and 503 + Retry-After under memory pressure or when the spool cannot
take the rows (collector/admission.py). Connections beyond `max_connections` are closed at
once; one that sends no complete request within `header_timeout` (or idles that long) is
closed. Also GET /metrics (self-metrics, Prometheus text) and GET /health (200 ok / 503
degraded, with the failing checks).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Callable

from aiohttp import web
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from collector.admission import Overloaded
from collector.auth import TokenAuth, http_ssl_context
from collector.config import CollectorConfig
from collector.errors import (
    CollectorError,
    DecodeError,
    RequestTimeout,
    RequestTooLarge,
    RetryableError,
    UnsupportedMediaType,
)
from collector.pipeline import Pipeline
from collector.signals import JSON, PROTOBUF, SIGNALS, Signal

log = logging.getLogger(__name__)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo Content-Encoding, refusing output larger than `limit` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > limit:
            raise RequestTooLarge(f"request body is {len(body)} bytes; the limit is {limit}")
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; "
                                   "use gzip, deflate or identity")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    out, rest = b"", body
    while True:  # gzip allows several members back to back; each must be whole and valid
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise DecodeError(f"body is not valid {encoding}"
                              f"{' (after its first member)' if out else ''}: {exc}") from exc
        if len(out) > limit or inflater.unconsumed_tail:
            raise RequestTooLarge(f"decompressed request exceeds the limit of {limit} bytes")
        if not inflater.eof:
            raise DecodeError(f"{encoding} body is truncated")
        rest = inflater.unused_data
        if not rest:
            return out
        if encoding != "gzip":
            raise DecodeError(f"{len(rest)} bytes follow the end of the deflate stream")


def encode(message, content_type: str) -> bytes:
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def status_body(code: int, message: str, content_type: str) -> bytes:
    return encode(status_pb2.Status(code=code, message=message), content_type)


OPEN_PATHS = ("/health",)  # answered without a receiver token
OWN_AUTH_PREFIX = "/api/"  # the admin API checks its own, stricter credential


class OtlpHttpReceiver:
    def __init__(self, pipeline: Pipeline, config: CollectorConfig, auth: TokenAuth, *,
                 extra_routes: Callable[[web.Application], None] | None = None):
        self.pipeline = pipeline
        self.config = config
        self.auth = auth
        self.host = config.http_host
        self.port = config.http_port
        self.max_request_size = config.max_request_size
        self.ssl_context = http_ssl_context(config)
        # Decompression is ours (decompress()): the size limit applies after it, errors are 400.
        self.app = web.Application(client_max_size=self.max_request_size + 1,
                                   middlewares=[self._authenticate],
                                   handler_args={"auto_decompress": False})
        for signal in SIGNALS:
            self.app.router.add_route("*", signal.http_path, self._handler(signal))
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/health", self._health)
        from collector.receivers.json_http import add_native_routes  # (imports this module)
        add_native_routes(self.app, pipeline, config)  # /opa/logs[/<partition>], /falco
        if extra_routes is not None:
            extra_routes(self.app)
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None
        self.refused_connections = 0

    async def start(self) -> None:
        # aiohttp's keep-alive timer also runs before the first request and closes a
        # connection still waiting for a complete one: that is the header timeout.
        self._runner = web.AppRunner(self.app, access_log=None,
                                     keepalive_timeout=self.config.header_timeout,
                                     shutdown_timeout=self.config.shutdown_timeout)
        await self._runner.setup()
        self._limit_connections(self._runner.server)
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True,
                           ssl_context=self.ssl_context)
        await site.start()
        self.bound_port = site._server.sockets[0].getsockname()[1]
        log.info("OTLP/HTTP receiver listening on %s:%d%s%s", self.host, self.bound_port,
                 " (TLS)" if self.ssl_context else "",
                 ", bearer token required" if self.auth.enabled else "")

    def _limit_connections(self, server: web.Server) -> None:
        """Close connections beyond max_connections as soon as they are made."""
        limit, accept = self.config.max_connections, server.connection_made

        def connection_made(handler, transport) -> None:
            accept(handler, transport)
            if len(server.connections) > limit:
                self.refused_connections += 1
                # after aiohttp has set the connection up: closing inside this call breaks it
                asyncio.get_running_loop().call_soon(transport.close)

        server.connection_made = connection_made

    async def shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _authenticate(self, request: web.Request, handler) -> web.StreamResponse:
        path = request.path
        if self.auth.enabled and path not in OPEN_PATHS \
                and not path.startswith(OWN_AUTH_PREFIX):
            try:
                self.auth.check(request.headers.get("Authorization"))
            except CollectorError as exc:
                reply_type = JSON if request.content_type == JSON else PROTOBUF
                response = self._error(401, code_pb2.UNAUTHENTICATED, str(exc), reply_type,
                                       headers={"WWW-Authenticate":
                                                'Bearer realm="policyscope"'})
                response.force_close()  # the body was not read
                return response
        return await handler(request)

    def _handler(self, signal: Signal):
        async def handle(request: web.Request) -> web.Response:
            content_type = request.content_type
            reply_type = JSON if content_type == JSON else PROTOBUF
            if request.method != "POST":
                return self._error(405, code_pb2.UNIMPLEMENTED,
                                   f"{request.method} is not allowed on {signal.http_path}; use POST",
                                   reply_type, headers={"Allow": "POST"})
            ticket = None
            try:
                if content_type not in (PROTOBUF, JSON):
                    raise UnsupportedMediaType(
                        f"Content-Type {content_type or '(none)'!r} is not supported; "
                        f"use {PROTOBUF} or {JSON}")
                declared = request.content_length
                if declared is not None and declared > self.max_request_size:
                    raise RequestTooLarge(f"Content-Length {declared} is over the limit of "
                                          f"{self.max_request_size} bytes")
                ticket = self.pipeline.admit()
                raw = await self._read(request)
                body = decompress(raw, request.headers.get("Content-Encoding", ""),
                                  self.max_request_size)
                ticket.charge(len(raw) + (len(body) if body is not raw else 0))
                batch = await asyncio.wrap_future(
                    self.pipeline.normalize(signal.name, body, content_type))
                response = signal.response_type()
                if signal.stored:
                    submission = self.pipeline.consume(signal.name, batch)
                    await asyncio.wrap_future(submission.durable)
                    if batch.rejected or batch.truncated:
                        partial = response.partial_success
                        setattr(partial, signal.rejected_field, batch.rejected)
                        partial.error_message = batch.reject_message()
            except RetryableError as exc:
                status = 429 if isinstance(exc, Overloaded) else 503
                return self._error(status, code_pb2.RESOURCE_EXHAUSTED if status == 429 else
                                   code_pb2.UNAVAILABLE, str(exc), reply_type,
                                   headers={"Retry-After": str(max(1, round(exc.retry_after)))})
            except CollectorError as exc:
                status = exc.http_status
                code = code_pb2.RESOURCE_EXHAUSTED if status == 413 else \
                    code_pb2.DEADLINE_EXCEEDED if status == 408 else code_pb2.INVALID_ARGUMENT
                answer = self._error(status, code, str(exc), reply_type)
                if status in (408, 413):
                    answer.force_close()  # what is left of the body is not worth reading
                return answer
            finally:
                if ticket is not None:
                    ticket.release()
            return web.Response(body=encode(response, reply_type), content_type=reply_type)
        return handle

    async def _read(self, request: web.Request) -> bytes:
        try:
            async with asyncio.timeout(self.config.body_timeout):
                return await request.read()
        except TimeoutError:
            raise RequestTimeout(f"the request body did not arrive within "
                                 f"{self.config.body_timeout:g} s (body_timeout)") from None
        except web.HTTPRequestEntityTooLarge as exc:
            raise RequestTooLarge(f"request body exceeds the limit of "
                                  f"{self.max_request_size} bytes") from exc

    def _error(self, status: int, code: int, message: str, reply_type: str,
               headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=status, body=status_body(code, message, reply_type),
                            content_type=reply_type, headers=headers)

    async def _metrics(self, request: web.Request) -> web.Response:
        metrics = self.pipeline.self_metrics()
        metrics["policyscope_http_refused_connections_total"] = float(
            self.refused_connections)
        if self._runner is not None and self._runner.server is not None:
            metrics["policyscope_http_connections"] = float(
                len(self._runner.server.connections))
        lines = [f"{name} {value}" for name, value in sorted(metrics.items())]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _health(self, request: web.Request) -> web.Response:
        health = self.pipeline.health()
        return web.json_response(health, status=200 if health["status"] == "ok" else 503)
