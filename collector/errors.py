"""Error classes of the collector, after the OpenTelemetry Collector's consumererror.

Permanent errors are the sender's fault and must not be retried (HTTP 4xx, gRPC
INVALID_ARGUMENT / RESOURCE_EXHAUSTED). Retryable errors are ours (storage down, spool full):
HTTP 503 with Retry-After, gRPC UNAVAILABLE with RetryInfo. `Pipeline.consume` documents which
stage raises which, for receivers of every protocol.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error a receiver turns into a protocol answer."""


class PermanentError(CollectorError):
    """The request can never succeed as sent."""

    http_status = 400


class DecodeError(PermanentError):
    """The body is not a valid message of the expected type (400 / INVALID_ARGUMENT)."""


class RequestTooLarge(PermanentError):
    """The decompressed body exceeds `max_request_size` (413 / RESOURCE_EXHAUSTED)."""

    http_status = 413


class RequestTimeout(PermanentError):
    """The body did not arrive within `body_timeout` (408)."""

    http_status = 408


class UnsupportedMediaType(PermanentError):
    """Content-Type or Content-Encoding the receiver does not speak (415)."""

    http_status = 415


class RetryableError(CollectorError):
    """Try again later; `retry_after` is the suggested delay in seconds."""

    http_status = 503

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class StorageUnavailable(RetryableError):
    """The spool cannot take the request durably (full backlog or disk error)."""
