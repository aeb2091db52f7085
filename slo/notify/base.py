"""What a notifier is given and what it may raise.

An `AlertNotice` is one burn-rate alert as the evaluator sees it at a state change; a
`Notification` is the group of notices that share an SLO and a severity tier, delivered as one
message (one HTTP request per notifier, except PagerDuty, which deduplicates per alert and so
gets one event per notice). Notifiers raise `DeliveryError` and nothing else for delivery
failures; `retryable` decides whether the dispatcher tries again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

SEVERITIES = ("page", "ticket")
STATES = ("firing", "resolved")


def rfc3339(moment: datetime) -> str:
    """UTC, millisecond precision, 'Z' suffix: the form PagerDuty and Alertmanager both accept."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _utc(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"{name} {value!r} is a naive datetime; expected a timezone-aware one")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class AlertNotice:
    """One alert of one (SLO, severity tier, dimension values), at a state change.

    Burn rates are multiples of the budget rate (1 spends the budget exactly over the SLO
    period); `budget_remaining` is a ratio of the period's budget (1 = untouched, negative =
    overspent); `time_to_exhaustion_s` is seconds at the current burn, None when nothing burns.
    Numbers may be given as Fractions; they are stored as floats (display only: decisions are
    made exactly, upstream). Datetimes must be timezone-aware and are stored in UTC.
    """

    alert_id: str  # stable across re-evaluations: the dedup key of PagerDuty and webhooks
    slo: str
    severity: str  # "page" | "ticket"
    state: str  # "firing" | "resolved"
    summary: str
    long_window: str  # e.g. "1h"
    short_window: str  # e.g. "5m"
    factor: float
    burn_long: float | None
    burn_short: float | None
    budget_remaining: float | None
    time_to_exhaustion_s: float | None
    dashboard_url: str
    started_at: datetime
    resolved_at: datetime | None = None
    dimensions: Mapping[str, str] = field(default_factory=dict, hash=False)
    runbook_url: str = ""  # the SLO's `runbook_url` annotation, else its policy's catalog entry
    owner_team: str = ""  # the owning team of the SLO's policy, from the policy catalog

    def __post_init__(self) -> None:
        if not self.alert_id:
            raise ValueError("alert_id is empty; expected a stable dedup key")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r}; expected one of page, ticket")
        if self.state not in STATES:
            raise ValueError(f"state {self.state!r}; expected one of firing, resolved")
        set_ = object.__setattr__
        set_(self, "factor", float(self.factor))
        for name in ("burn_long", "burn_short", "budget_remaining", "time_to_exhaustion_s"):
            value = getattr(self, name)
            set_(self, name, None if value is None else _finite(float(value)))
        set_(self, "started_at", _utc("started_at", self.started_at))
        set_(self, "resolved_at", _utc("resolved_at", self.resolved_at))
        set_(self, "dimensions", {str(k): str(v) for k, v in self.dimensions.items()})

    @property
    def group_key(self) -> tuple[str, str]:
        """Notices with the same (slo, severity) are sent together."""
        return (self.slo, self.severity)

    @property
    def firing(self) -> bool:
        return self.state == "firing"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as RFC 3339 strings, non-finite numbers as null."""
        return {
            "alert_id": self.alert_id,
            "slo": self.slo,
            "severity": self.severity,
            "state": self.state,
            "summary": self.summary,
            "long_window": self.long_window,
            "short_window": self.short_window,
            "factor": self.factor,
            "burn_long": self.burn_long,
            "burn_short": self.burn_short,
            "budget_remaining": self.budget_remaining,
            "time_to_exhaustion_s": self.time_to_exhaustion_s,
            "dimensions": dict(self.dimensions),
            "dashboard_url": self.dashboard_url,
            "started_at": rfc3339(self.started_at),
            "resolved_at": rfc3339(self.resolved_at) if self.resolved_at else None,
            "runbook_url": self.runbook_url,
            "owner_team": self.owner_team,
        }


@dataclass(frozen=True)
class Notification:
    """Alerts that share an SLO and a severity tier, sent as one message. May mix firing and
    resolved notices (one dimension value recovers while another still burns)."""

    alerts: tuple[AlertNotice, ...]

    def __post_init__(self) -> None:
        alerts = tuple(self.alerts)
        if not alerts:
            raise ValueError("a notification needs at least one alert")
        keys = {a.group_key for a in alerts}
        if len(keys) > 1:
            raise ValueError(f"alerts of one notification must share (slo, severity); got "
                             f"{sorted(keys)}")
        object.__setattr__(self, "alerts", alerts)

    @property
    def group_key(self) -> tuple[str, str]:
        return self.alerts[0].group_key

    @property
    def slo(self) -> str:
        return self.alerts[0].slo

    @property
    def severity(self) -> str:
        return self.alerts[0].severity

    @property
    def state(self) -> str:
        """'firing' while any alert of the group fires, else 'resolved'."""
        return "firing" if any(a.firing for a in self.alerts) else "resolved"

    @property
    def title(self) -> str:
        firing = sum(a.firing for a in self.alerts)
        resolved = len(self.alerts) - firing
        counts = ", ".join(part for part in (f"{firing} firing" if firing else "",
                                             f"{resolved} resolved" if resolved else "") if part)
        return f"[{self.state.upper()}] SLO {self.slo} ({self.severity}): {counts}"


def group_notices(notices: Iterable[AlertNotice]) -> list[Notification]:
    """One Notification per (slo, severity), in order of first appearance."""
    groups: dict[tuple[str, str], list[AlertNotice]] = {}
    for notice in notices:
        groups.setdefault(notice.group_key, []).append(notice)
    return [Notification(tuple(group)) for group in groups.values()]


class DeliveryError(Exception):
    """A notification did not reach its target.

    `retryable` is True for the target's or the network's trouble (HTTP 408/425/429/5xx,
    connection errors, timeouts) and False when the request can never succeed as sent (other
    4xx, a bad URL). `retry_after` is the delay in seconds the target asked for, if any.
    `reason` is a short code for the dead-letter record: http_<status>, timeout, connection,
    redirect, queue_full, shutdown, notifier_error. Messages never contain URLs or keys.
    """

    def __init__(self, message: str, *, retryable: bool, reason: str = "error",
                 status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


@runtime_checkable
class Notifier(Protocol):
    """Delivers a Notification to one target, synchronously, within its own timeout."""

    name: str

    def send(self, notification: Notification) -> None:
        """Deliver or raise DeliveryError."""
        ...
