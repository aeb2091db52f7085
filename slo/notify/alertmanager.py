"""Alertmanager API v2: `POST {base}/api/v2/alerts` with a JSON list of postable alerts, one per
alert of the group, so Alertmanager's own grouping, inhibition and silences apply.

Labels identify an alert in Alertmanager, so they hold exactly what identifies ours:
alertname=PolicyScopeSLOBurnRate, slo, severity (page|ticket) and one label per dimension
(names made Prometheus-safe; a dimension that would shadow alertname/slo/severity becomes
dimension_<name>). Windows, burn rates, budget, the dashboard link and, when known, the
runbook (`runbook_url`, the annotation Prometheus alerting rules use) and the owning team are
annotations.
`startsAt` is when the alert started; a resolved alert carries `endsAt` (its resolve time).

A firing alert is sent without `endsAt`, so Alertmanager resolves it by itself after its
`resolve_timeout` (5 m by default) unless it is sent again: re-submit firing alerts on each
evaluation, as Prometheus does (Alertmanager deduplicates by labels).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from slo.notify import describe
from slo.notify.base import AlertNotice, Notification, rfc3339
from slo.notify.secrets import Secret, reveal
from slo.notify.transport import check_url, encode_json, post

ALERTNAME = "PolicyScopeSLOBurnRate"
API_PATH = "/api/v2/alerts"
_RESERVED = {"alertname", "slo", "severity"}
_INVALID = re.compile(r"[^A-Za-z0-9_]")


def label_name(key: str) -> str:
    """A Prometheus label name for a dimension key.

    >>> label_name("policy.id"), label_name("9lives"), label_name("severity")
    ('policy_id', '_9lives', 'dimension_severity')
    """
    name = _INVALID.sub("_", key) or "_"
    if name[0].isdigit():
        name = "_" + name
    return f"dimension_{name}" if name in _RESERVED or name.startswith("__") else name


def _number(value: float | None) -> str | None:
    return None if value is None else f"{value:.6g}"


def postable(alert: AlertNotice) -> dict[str, Any]:
    labels = {"alertname": ALERTNAME, "slo": alert.slo, "severity": alert.severity}
    for key, value in sorted(alert.dimensions.items()):
        labels[label_name(key)] = value
    annotations = {
        "summary": alert.summary,
        "description": describe.description(alert),
        "dashboard": alert.dashboard_url,
        "runbook_url": alert.runbook_url,
        "owner_team": alert.owner_team,
        "alert_id": alert.alert_id,
        "long_window": alert.long_window,
        "short_window": alert.short_window,
        "factor": _number(alert.factor),
        "burn_long": _number(alert.burn_long),
        "burn_short": _number(alert.burn_short),
        "budget_remaining": _number(alert.budget_remaining),
        "time_to_exhaustion_s": _number(alert.time_to_exhaustion_s),
    }
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": rfc3339(alert.started_at),
    }
    if not alert.firing:
        body["endsAt"] = rfc3339(alert.resolved_at or datetime.now(UTC))
    if alert.dashboard_url:
        body["generatorURL"] = alert.dashboard_url
    return body


def alerts(notification: Notification) -> list[dict[str, Any]]:
    return [postable(a) for a in notification.alerts]


def endpoint(base: str) -> str:
    """`base` may be the Alertmanager root or already end in /api/v2/alerts."""
    base = base.rstrip("/")
    return base if base.endswith(API_PATH) else base + API_PATH


class AlertmanagerNotifier:
    """POSTs `alerts(notification)` to one Alertmanager."""

    def __init__(self, name: str, url: str | Secret, *, timeout: float = 5.0):
        check_url(reveal(url), key=f"notifier {name!r} url")
        self.name = name
        self.timeout = timeout
        self._url = url

    def send(self, notification: Notification) -> None:
        post(endpoint(reveal(self._url)), encode_json(alerts(notification)), target=self.name,
             timeout=self.timeout)

    def __repr__(self) -> str:
        return f"AlertmanagerNotifier({self.name!r}, url={self._url!r})"
