"""Delivery over OTLP/HTTP to a PolicyScope collector (or any OTLP endpoint in front of one):
`POST <endpoint>/v1/logs`, protobuf, `Authorization: Bearer <token>` when a token is given.

A request counts as delivered on 200 -- the collector answers only once its records are
fsync'd to its spool. Its `partial_success` (records the collector rejected) fails the import
naming the count and the collector's message: it is never a silent partial. 429 / 503 are
retried after their `Retry-After` (at most `retries` times); a connection error likewise;
any other status fails with the collector's message (a `google.rpc.Status` body).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from importers.errors import DeliveryFailed

RETRYABLE = (429, 502, 503, 504)


def logs_url(endpoint: str) -> str:
    """`http://host:4318` -> `http://host:4318/v1/logs`; a URL naming a path is kept."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/logs") else endpoint + "/v1/logs"


class OtlpHttpDelivery:
    def __init__(self, endpoint: str, token: str | None = None, *, timeout: float = 30.0,
                 retries: int = 8, max_wait: float = 30.0):
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"--endpoint {endpoint!r} is not an http(s):// URL")
        self.url = logs_url(endpoint)
        self.headers = {"Content-Type": "application/x-protobuf"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout, self.retries, self.max_wait = timeout, retries, max_wait

    def deliver(self, requests: list[ExportLogsServiceRequest], progress=None) -> None:
        total = sum(len(sl.log_records) for r in requests for rl in r.resource_logs
                    for sl in rl.scope_logs)
        done = 0
        for request in requests:
            self._send(request.SerializeToString())
            done += sum(len(sl.log_records) for rl in request.resource_logs
                        for sl in rl.scope_logs)
            if progress is not None:
                progress(done, total)

    def _send(self, body: bytes) -> None:
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=body, headers=self.headers,
                                             method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    answer = ExportLogsServiceResponse.FromString(response.read())
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                if exc.code in RETRYABLE and attempt < self.retries:
                    time.sleep(_retry_after(exc.headers.get("Retry-After"), attempt,
                                            self.max_wait))
                    continue
                raise DeliveryFailed(f"{self.url} answered {exc.code}: "
                                     f"{_status_message(payload)}") from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt < self.retries:
                    time.sleep(_retry_after(None, attempt, self.max_wait))
                    continue
                reason = getattr(exc, "reason", exc)
                raise DeliveryFailed(f"no collector answered at {self.url}: {reason}") from None
            rejected = answer.partial_success.rejected_log_records
            if rejected:
                raise DeliveryFailed(f"the collector at {self.url} rejected {rejected} records: "
                                     f"{answer.partial_success.error_message}")
            return


def _retry_after(header: str | None, attempt: int, cap: float) -> float:
    try:
        return min(float(header), cap) if header else min(0.5 * 2 ** attempt, cap)
    except ValueError:
        return min(0.5 * 2 ** attempt, cap)


def _status_message(payload: bytes) -> str:
    try:
        status = status_pb2.Status.FromString(payload)
        if status.message:
            return status.message
    except DecodeError:  # not a Status: show the text
        pass
    return payload[:300].decode("utf-8", "replace") or "(no body)"
