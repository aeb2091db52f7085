"""One JSON POST over urllib (stdlib only), with failures classed for the dispatcher.

Retryable: HTTP 408, 425, 429 and 5xx (with Retry-After, seconds or an HTTP date), connection
errors, timeouts, truncated responses. Permanent: other 4xx, redirects (a webhook that moved
must be reconfigured; following a 30x would turn the POST into a GET), bad URLs. Error messages
name the notifier and the status, never the URL, which may carry a token.

`timeout` bounds the connect and each socket read, as urllib does; it is not a deadline for
the whole exchange, but a target that stops answering hits it.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from slo.notify.base import DeliveryError

USER_AGENT = "PolicyScope-notifier/0.1"
_RETRYABLE_STATUS = {408, 425, 429}
_MAX_BODY = 64 * 1024  # of a response: enough for an error message


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 30x status


_OPENER = urllib.request.build_opener(_NoRedirect())


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


def encode_json(payload: Any) -> bytes:
    """Compact UTF-8 JSON; these exact bytes are what gets signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def check_url(url: str, *, key: str) -> None:
    """Raise ValueError unless `url` is http(s) with a host. The message never shows the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key} is not an http(s) URL with a host")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: a number of seconds or an HTTP date; None if absent
    or unreadable.

    >>> parse_retry_after("7")
    7.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    >>> parse_retry_after("soon") is None
    True
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def post(url: str, body: bytes, *, target: str, timeout: float,
         headers: Mapping[str, str] | None = None) -> Response:
    """POST `body` as application/json; return the 2xx response or raise DeliveryError.
    `target` names the notifier in error messages.

    The DeliveryError is raised outside the `except` blocks on purpose, with neither cause
    nor context: urllib's exceptions keep the full URL (a credential for Slack) in their
    attributes, so what matters (status, reason, Retry-After) is copied out instead."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return Response(answer.status, answer.read(_MAX_BODY))
    except urllib.error.HTTPError as exc:
        error = _from_status(exc, target)
    except urllib.error.URLError as exc:
        error = _from_reason(exc.reason, target, timeout)
    except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
        error = _from_reason(exc, target, timeout)
    except ValueError as exc:  # urllib's "unknown url type" quotes the URL: don't
        error = DeliveryError(f"{target}: invalid URL ({exc.__class__.__name__})",
                              retryable=False, reason="bad_url")
    raise error


def _from_reason(reason: object, target: str, timeout: float) -> DeliveryError:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return DeliveryError(f"{target}: TLS certificate rejected ({reason.verify_message})",
                             retryable=False, reason="tls")
    if isinstance(reason, TimeoutError):
        return DeliveryError(f"{target}: timed out after {timeout:g}s", retryable=True,
                             reason="timeout")
    return DeliveryError(f"{target}: connection failed ({_describe(reason)})", retryable=True,
                         reason="connection")


def _describe(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return reason.__class__.__name__ if isinstance(reason, BaseException) else str(reason)


def _from_status(exc: urllib.error.HTTPError, target: str) -> DeliveryError:
    status = exc.code
    try:
        detail = exc.read(512).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        detail = ""
    finally:
        exc.close()
    message = f"{target}: HTTP {status}" + (f": {detail[:200]}" if detail else "")
    if 300 <= status < 400:
        return DeliveryError(message + " (redirects are not followed; fix the URL)",
                             retryable=False, reason="redirect", status=status)
    retryable = status in _RETRYABLE_STATUS or status >= 500
    retry_after = parse_retry_after(exc.headers.get("Retry-After")) if retryable else None
    return DeliveryError(message, retryable=retryable, reason=f"http_{status}", status=status,
                         retry_after=retry_after)
