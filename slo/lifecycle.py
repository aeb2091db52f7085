"""Alert lifecycle: pending -> firing -> resolved, one alert per (SLO, tier, dimension values).

`advance(previous, evaluation, tier, ...)` is pure: given the stored state of an alert and a
new evaluation, it returns the new state and the transition (if any). `AlertStore` loads and
saves states (`alerts`, latest row per alert id) and transitions (`alert_events`, which
feeds M7). Re-evaluations update an alert, never duplicate it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from clickhouse_connect.driver.client import Client

from slo.evaluate import Evaluation

TIERS = ("page", "ticket")
INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"


def alert_id(slo: str, severity: str, dimensions: dict[str, str]) -> str:
    text = json.dumps([slo, severity, sorted(dimensions.items())])
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


@dataclass(frozen=True)
class AlertState:
    alert_id: str
    slo: str
    severity: str
    dimensions: dict[str, str]
    state: str
    pending_since: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    long_window: str = ""
    short_window: str = ""
    factor: float = 0.0
    burn_long: float | None = None
    burn_short: float | None = None
    budget_remaining: float | None = None
    time_to_exhaustion_s: float | None = None
    silenced: bool = False
    updated_at: datetime | None = None


def _f(value) -> float | None:
    return None if value is None else float(value)


def advance(previous: AlertState | None, evaluation: Evaluation, severity: str, *,
            pending_seconds: float, silenced: bool) -> tuple[AlertState, str | None]:
    """The alert's next state and the transition made ('pending', 'firing', 'resolved',
    'cancelled' for a pending alert whose condition cleared), or None."""
    at = evaluation.at
    pair = evaluation.tier_firing(severity)
    shown = pair or next(p for p in evaluation.pairs if p.severity == severity)
    base = previous or AlertState(alert_id(evaluation.slo, severity, evaluation.dimensions),
                                  evaluation.slo, severity, evaluation.dimensions, INACTIVE)
    state = replace(base, long_window=shown.long_window, short_window=shown.short_window,
                    factor=float(shown.factor), burn_long=_f(shown.burn_long),
                    burn_short=_f(shown.burn_short),
                    budget_remaining=_f(evaluation.budget_remaining),
                    time_to_exhaustion_s=evaluation.time_to_exhaustion_s, silenced=silenced,
                    updated_at=at)
    current = base.state
    if pair is not None:
        if current == FIRING:
            return state, None
        if current == PENDING:
            if at - base.pending_since >= timedelta(seconds=pending_seconds):
                return replace(state, state=FIRING, fired_at=at), FIRING
            return state, None
        if pending_seconds > 0:
            return replace(state, state=PENDING, pending_since=at, fired_at=None,
                           resolved_at=None), PENDING
        return replace(state, state=FIRING, pending_since=at, fired_at=at,
                       resolved_at=None), FIRING
    if current == FIRING:
        return replace(state, state=RESOLVED, resolved_at=at), RESOLVED
    if current == PENDING:
        return replace(state, state=INACTIVE, pending_since=None), "cancelled"
    return state, None


_COLUMNS = ["alert_id", "slo", "severity", "dimensions", "state", "pending_since", "fired_at",
            "resolved_at", "long_window", "short_window", "factor", "burn_long", "burn_short",
            "budget_remaining", "time_to_exhaustion_s", "silenced", "updated_at"]


def _utc(value):
    return value.replace(tzinfo=timezone.utc) if isinstance(value, datetime) else value


class AlertStore:
    def __init__(self, client: Client):
        self.client = client

    def load(self) -> dict[str, AlertState]:
        rows = self.client.query(f"SELECT {', '.join(_COLUMNS)} FROM alerts FINAL").result_rows
        states = {}
        for row in rows:
            values = dict(zip(_COLUMNS, (_utc(v) for v in row)))
            values["dimensions"] = dict(values["dimensions"])
            states[values["alert_id"]] = AlertState(**values)
        return states

    def save(self, states: list[AlertState], transitions: list[tuple[AlertState, str]],
             owners: dict[str, tuple[str, str]] | None = None) -> None:
        """`owners`: alert id -> (team, service) for the history rows (default: from the
        alert's dimension values)."""
        owners = owners or {}
        if states:
            self.client.insert("alerts", [[getattr(s, c) for c in _COLUMNS] for s in states],
                               column_names=_COLUMNS)
        if transitions:
            self.client.insert(
                "alert_events",
                [[s.alert_id, s.slo, s.severity, kind, s.updated_at,
                  *owners.get(s.alert_id, (s.dimensions.get("team", ""),
                                           s.dimensions.get("service", ""))), s.dimensions]
                 for s, kind in transitions],
                column_names=["alert_id", "slo", "severity", "state", "at", "team", "service",
                              "dimensions"])
