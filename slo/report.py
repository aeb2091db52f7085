"""What `slo status` and `alerts replay` print: the current standing of every SLO, and when its
alerts would have fired and resolved over history (a precision check before an SLO pages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from clickhouse_connect.driver.client import Client

from metrics.windows import floor_minute
from slo import store
from slo.evaluate import Evaluation, evaluate
from slo.lifecycle import FIRING, PENDING, RESOLVED, TIERS, advance


def _num(value) -> float | None:
    return None if value is None else float(value)


def status(client: Client, slos, at: datetime, *, latency_threshold: float = 0.1
           ) -> list[dict]:
    """One object per SLO and dimension value (the JSON form of `slo status`)."""
    actions = _budget_actions(client)
    out = []
    for e in evaluate(client, slos, [floor_minute(at)], latency_threshold=latency_threshold):
        out.append({
            "slo": e.slo, "dimensions": e.dimensions, "objective": float(e.objective),
            "period": e.period, "good": e.good, "total": e.total,
            "budget_remaining": _num(e.budget_remaining),
            "time_to_exhaustion_s": e.time_to_exhaustion_s,
            "pairs": [{"severity": p.severity, "long_window": p.long_window,
                       "short_window": p.short_window, "factor": float(p.factor),
                       "burn_long": _num(p.burn_long), "burn_short": _num(p.burn_short),
                       "firing": p.firing} for p in e.pairs],
            "budget_policy_actions": actions.get((e.slo, tuple(sorted(e.dimensions.items()))),
                                                 []),
        })
    return out


def _budget_actions(client: Client) -> dict[tuple, list[dict]]:
    """(SLO, dimension values) -> the error-budget policy actions taken, oldest first."""
    found: dict[tuple, list[dict]] = {}
    for r in store.budget_actions(client):
        found.setdefault((r["slo"], tuple(sorted(r["dimensions"].items()))), []).append(
            {"threshold": r["threshold"], "action": r["action"],
             "at": r["at"].replace(tzinfo=None).isoformat() + "Z"})
    return found


@dataclass(frozen=True)
class ReplayedAlert:
    slo: str
    severity: str
    dimensions: dict[str, str]
    fired_at: datetime
    resolved_at: datetime | None
    peak_burn: float | None


def replay(client: Client, slos, since: timedelta, until: datetime, *,
           step: timedelta = timedelta(minutes=1), latency_threshold: float = 0.1
           ) -> list[ReplayedAlert]:
    """Evaluate every `step` over (until - since, until] and play the alert lifecycle."""
    end = floor_minute(until)
    count = int(since / step)
    points = [end - step * i for i in range(count - 1, -1, -1)]
    by_name = {s.name: s for s in slos}
    evaluations = evaluate(client, slos, points, latency_threshold=latency_threshold)
    evaluations.sort(key=lambda e: e.at)
    states: dict = {}
    open_alerts: dict = {}
    done: list[ReplayedAlert] = []
    for e in evaluations:
        slo = by_name[e.slo]
        for tier in TIERS:
            if not any(p.severity == tier for p in e.pairs):
                continue
            key = (e.slo, tier, tuple(sorted(e.dimensions.items())))
            state, kind = advance(states.get(key), e, tier, pending_seconds=slo.pending_seconds,
                                  silenced=False)
            states[key] = state
            burn = _peak(e, tier)
            if kind == FIRING:
                open_alerts[key] = [e.at, burn]
            elif key in open_alerts and state.state in (FIRING, PENDING):
                if burn is not None and (open_alerts[key][1] or 0) < burn:
                    open_alerts[key][1] = burn
            if kind == RESOLVED and key in open_alerts:
                fired, peak = open_alerts.pop(key)
                done.append(ReplayedAlert(e.slo, tier, e.dimensions, fired, e.at, peak))
    for (name, tier, dims), (fired, peak) in open_alerts.items():
        done.append(ReplayedAlert(name, tier, dict(dims), fired, None, peak))
    return sorted(done, key=lambda a: (a.fired_at, a.slo, a.severity))


def _peak(e: Evaluation, tier: str) -> float | None:
    burns = [float(p.burn_long) for p in e.pairs if p.severity == tier and p.burn_long]
    return max(burns) if burns else None
