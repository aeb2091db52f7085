"""PagerDuty Events API v2: one event per alert of the group, since PagerDuty deduplicates and
resolves per `dedup_key` (= the alert's stable `alert_id`).

A firing alert sends `event_action: trigger` with the payload (severity `critical` for a page,
`warning` for a ticket; component = the SLO, group = "<slo>/<tier>", class = slo_burn_rate;
burn rates, windows, budget, dimensions and the owning team in `custom_details`) and links to
the dashboard and, when known, the runbook.
A resolved alert sends `event_action: resolve` with the same dedup_key. A retry re-sends the
whole group; PagerDuty treats a repeated trigger of an open incident as a no-op.

The routing key (integration key) is the credential: it is a `Secret`. PagerDuty answers
202 on success, 400 for an invalid event (dead-lettered), 429 and 5xx to retry.
"""

from __future__ import annotations

import hashlib
from typing import Any

from slo.notify.base import AlertNotice, Notification, rfc3339
from slo.notify.secrets import Secret, reveal
from slo.notify.transport import check_url, encode_json, post

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITY = {"page": "critical", "ticket": "warning"}
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255


def dedup_key(alert: AlertNotice) -> str:
    """The alert id, or its SHA-256 when longer than PagerDuty's 255 characters."""
    if len(alert.alert_id) <= MAX_DEDUP_KEY:
        return alert.alert_id
    return hashlib.sha256(alert.alert_id.encode("utf-8")).hexdigest()


def event(alert: AlertNotice, routing_key: str, source: str = "policyscope") -> dict[str, Any]:
    """The Events API v2 body for one alert."""
    base = {"routing_key": routing_key, "dedup_key": dedup_key(alert)}
    if not alert.firing:
        return {**base, "event_action": "resolve"}
    body: dict[str, Any] = {**base, "event_action": "trigger", "payload": {
        "summary": alert.summary[:MAX_SUMMARY] or f"SLO {alert.slo} is burning",
        "source": source,
        "severity": SEVERITY[alert.severity],
        "timestamp": rfc3339(alert.started_at),
        "component": alert.slo,
        "group": f"{alert.slo}/{alert.severity}",
        "class": "slo_burn_rate",
        "custom_details": {
            "alert_id": alert.alert_id,
            "slo": alert.slo,
            "tier": alert.severity,
            "long_window": alert.long_window,
            "short_window": alert.short_window,
            "factor": alert.factor,
            "burn_long": alert.burn_long,
            "burn_short": alert.burn_short,
            "budget_remaining": alert.budget_remaining,
            "time_to_exhaustion_s": alert.time_to_exhaustion_s,
            "dimensions": dict(alert.dimensions),
        },
    }, "client": "PolicyScope"}
    details = body["payload"]["custom_details"]
    for key in ("runbook_url", "owner_team"):  # known when the SLO names a catalogued policy
        if getattr(alert, key):
            details[key] = getattr(alert, key)
    links = []
    if alert.dashboard_url:
        links.append({"href": alert.dashboard_url, "text": "PolicyScope dashboard"})
        body["client_url"] = alert.dashboard_url
    if alert.runbook_url:
        links.append({"href": alert.runbook_url, "text": "Runbook"})
    if links:
        body["links"] = links
    return body


def events(notification: Notification, routing_key: str,
           source: str = "policyscope") -> list[dict[str, Any]]:
    return [event(a, routing_key, source) for a in notification.alerts]


class PagerDutyNotifier:
    """POSTs one event per alert to the Events API v2 enqueue endpoint."""

    def __init__(self, name: str, routing_key: str | Secret, *, url: str | Secret = DEFAULT_URL,
                 source: str = "policyscope", timeout: float = 5.0):
        check_url(reveal(url), key=f"notifier {name!r} url")
        if not reveal(routing_key):
            raise ValueError(f"notifier {name!r}: routing_key is empty")
        self.name = name
        self.timeout = timeout
        self.source = source
        self._url = url
        self._routing_key = routing_key

    def send(self, notification: Notification) -> None:
        key = reveal(self._routing_key)
        for body in events(notification, key, self.source):
            post(reveal(self._url), encode_json(body), target=self.name, timeout=self.timeout)

    def __repr__(self) -> str:
        key = self._routing_key if isinstance(self._routing_key, Secret) else "<key>"
        return f"PagerDutyNotifier({self.name!r}, url={self._url!r}, routing_key={key!r})"
