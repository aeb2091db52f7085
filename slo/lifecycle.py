"""Alert lifecycle: pending -> firing -> resolved, one alert per (SLO, tier, dimension values).

`advance(previous, evaluation, tier, ...)` is pure: given the stored state of an alert and a
new evaluation, it returns the new state and the transition (if any). `AlertStore` loads and
saves states (`alerts`, latest row per alert id) and transitions (`alert_events`, which
feeds M7) through `slo.store`. Re-evaluations update an alert, never duplicate it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from clickhouse_connect.driver.client import Client

from slo import store
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


class AlertStore:
    """The alerts' states and history in ClickHouse (`slo.store`), as `AlertState`s."""

    def __init__(self, client: Client):
        self.client = client

    def load(self) -> dict[str, AlertState]:
        """alert id -> its latest stored state."""
        return {row["alert_id"]: AlertState(**row)
                for row in store.load_alert_states(self.client)}

    def save(self, states: list[AlertState], transitions: list[tuple[AlertState, str]],
             owners: dict[str, tuple[str, str]] | None = None) -> None:
        """`owners`: alert id -> (team, service) for the history rows (default: from the
        alert's dimension values)."""
        owners = owners or {}
        events = []
        for s, kind in transitions:
            team, service = owners.get(s.alert_id, (s.dimensions.get("team", ""),
                                                    s.dimensions.get("service", "")))
            events.append({"alert_id": s.alert_id, "slo": s.slo, "severity": s.severity,
                           "state": kind, "at": s.updated_at, "team": team, "service": service,
                           "dimensions": s.dimensions})
        store.record_alerts(self.client, [asdict(s) for s in states], events)
