"""Generic JSON webhook, HMAC-SHA256 signed.

Each request carries two headers:

    X-PolicyScope-Timestamp: <unix seconds, integer>
    X-PolicyScope-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

where `body` is the exact request body bytes (UTF-8 JSON) and the signed string is the ASCII
timestamp, a dot, then the body. A receiver recomputes the HMAC over the raw body it read
(before any JSON parsing), compares in constant time, and rejects timestamps too far from its
clock to stop replays; `verify_signature` does all three. Retries are re-signed with a fresh
timestamp.

The body: {"version": 1, "group_key", "slo", "severity", "state", "title", "alerts": [...]},
each alert as `AlertNotice.to_dict()`; `alert_id` is the stable dedup key.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from slo.notify.base import Notification
from slo.notify.secrets import Secret, reveal
from slo.notify.transport import check_url, encode_json, post

SIGNATURE_HEADER = "X-PolicyScope-Signature"
TIMESTAMP_HEADER = "X-PolicyScope-Timestamp"
PAYLOAD_VERSION = 1


def _key(secret: str | bytes | Secret) -> bytes:
    if isinstance(secret, Secret):
        secret = secret.reveal()
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def sign(secret: str | bytes | Secret, timestamp: str, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(_key(secret), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str | bytes | Secret, timestamp: str, body: bytes, header: str,
                     *, tolerance_s: float | None = 300.0, now: float | None = None) -> bool:
    """True when `header` is the signature of `body` at `timestamp` under `secret`, and the
    timestamp is within `tolerance_s` seconds of `now` (None disables the replay check)."""
    if not header or not header.startswith("sha256="):
        return False
    try:
        sent_at = int(timestamp)
        expected = sign(secret, timestamp, body)
    except (TypeError, ValueError, UnicodeEncodeError):
        return False
    if tolerance_s is not None:
        current = time.time() if now is None else now
        if abs(current - sent_at) > tolerance_s:
            return False
    return hmac.compare_digest(expected.encode("ascii"), header.encode("ascii", "replace"))


def render(notification: Notification) -> dict[str, Any]:
    slo, severity = notification.group_key
    return {
        "version": PAYLOAD_VERSION,
        "group_key": f"{slo}/{severity}",
        "slo": slo,
        "severity": severity,
        "state": notification.state,
        "title": notification.title,
        "alerts": [a.to_dict() for a in notification.alerts],
    }


class WebhookNotifier:
    """POSTs `render(notification)` to `url`, signed with `secret`."""

    def __init__(self, name: str, url: str | Secret, secret: str | bytes | Secret, *,
                 timeout: float = 5.0, clock: Callable[[], float] = time.time):
        check_url(reveal(url), key=f"notifier {name!r} url")
        if not _key(secret):
            raise ValueError(f"notifier {name!r}: the signing secret is empty")
        self.name = name
        self.timeout = timeout
        self._url = url
        self._secret = secret if isinstance(secret, Secret) else Secret(
            secret.decode() if isinstance(secret, bytes) else secret)
        self._clock = clock

    def send(self, notification: Notification) -> None:
        body = encode_json(render(notification))
        timestamp = str(int(self._clock()))
        post(reveal(self._url), body, target=self.name, timeout=self.timeout, headers={
            TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(self._secret, timestamp, body)})

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.name!r}, url={self._url!r}, secret={self._secret!r})"
