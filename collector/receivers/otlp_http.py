"""OTLP/HTTP receiver (spec v1.11): POST /v1/logs, /v1/traces, /v1/metrics on one port.

Protobuf (`application/x-protobuf`) and JSON (`application/json`) by Content-Type; gzip by
Content-Encoding. Answers: 200 + empty (or partial_success) response in the request's encoding;
400 + google.rpc.Status for an undecodable body; 413 over `max_request_size` (checked after
decompression); 415 for another content type or encoding; 405 for a non-POST; 503 +
Retry-After when the spool cannot take the rows. Also GET /metrics (self-metrics, Prometheus
text) and GET /health.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Callable

from aiohttp import web
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from collector.errors import (
    CollectorError,
    DecodeError,
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
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise DecodeError(f"body is not valid {encoding}: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise RequestTooLarge(f"decompressed request exceeds the limit of {limit} bytes")
    if not inflater.eof:
        raise DecodeError(f"{encoding} body is truncated")
    return out


def encode(message, content_type: str) -> bytes:
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def status_body(code: int, message: str, content_type: str) -> bytes:
    return encode(status_pb2.Status(code=code, message=message), content_type)


class OtlpHttpReceiver:
    def __init__(self, pipeline: Pipeline, host: str, port: int, *, max_request_size: int,
                 extra_routes: Callable[[web.Application], None] | None = None):
        self.pipeline = pipeline
        self.host = host
        self.port = port
        self.max_request_size = max_request_size
        # Decompression is ours (decompress()): the size limit applies after it, errors are 400.
        self.app = web.Application(client_max_size=max_request_size + 1,
                                   handler_args={"auto_decompress": False})
        for signal in SIGNALS:
            self.app.router.add_route("*", signal.http_path, self._handler(signal))
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/health", self._health)
        if extra_routes is not None:
            extra_routes(self.app)
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.bound_port = site._server.sockets[0].getsockname()[1]
        log.info("OTLP/HTTP receiver listening on %s:%d", self.host, self.bound_port)

    async def shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _handler(self, signal: Signal):
        async def handle(request: web.Request) -> web.Response:
            content_type = request.content_type
            reply_type = JSON if content_type == JSON else PROTOBUF
            if request.method != "POST":
                return self._error(405, code_pb2.UNIMPLEMENTED,
                                   f"{request.method} is not allowed on {signal.http_path}; use POST",
                                   reply_type, headers={"Allow": "POST"})
            try:
                if content_type not in (PROTOBUF, JSON):
                    raise UnsupportedMediaType(
                        f"Content-Type {content_type or '(none)'!r} is not supported; "
                        f"use {PROTOBUF} or {JSON}")
                try:
                    raw = await request.read()
                except web.HTTPRequestEntityTooLarge as exc:
                    raise RequestTooLarge(f"request body exceeds the limit of "
                                          f"{self.max_request_size} bytes") from exc
                body = decompress(raw, request.headers.get("Content-Encoding", ""),
                                  self.max_request_size)
                batch = await asyncio.wrap_future(
                    self.pipeline.normalize(signal.name, body, content_type))
                response = signal.response_type()
                if signal.stored:
                    submission = self.pipeline.consume(signal.name, batch)
                    await asyncio.wrap_future(submission.durable)
                    if batch.rejected:
                        partial = response.partial_success
                        setattr(partial, signal.rejected_field, batch.rejected)
                        partial.error_message = batch.reject_message()
            except RetryableError as exc:
                return self._error(503, code_pb2.UNAVAILABLE, str(exc), reply_type,
                                   headers={"Retry-After": str(max(1, round(exc.retry_after)))})
            except CollectorError as exc:
                status = exc.http_status
                code = code_pb2.RESOURCE_EXHAUSTED if status == 413 else \
                    code_pb2.INVALID_ARGUMENT
                return self._error(status, code, str(exc), reply_type)
            return web.Response(body=encode(response, reply_type), content_type=reply_type)
        return handle

    def _error(self, status: int, code: int, message: str, reply_type: str,
               headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=status, body=status_body(code, message, reply_type),
                            content_type=reply_type, headers=headers)

    async def _metrics(self, request: web.Request) -> web.Response:
        lines = [f"{name} {value}" for name, value in sorted(
            self.pipeline.self_metrics().items())]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})
