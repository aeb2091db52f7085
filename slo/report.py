"""What `slo status` and `alerts replay` print: the current standing of every SLO, and when its
alerts would have fired and resolved over history (a precision check before an SLO pages).

The alert evaluator stores the standing it computes at each run (`record_standings`, table
`slo_standings`): the same rows `status` builds, by the same function (`standing`). Readers
that may show a minute-old standing (the dashboards) take the stored one through `standings`,
a small read, and evaluate only where nothing is stored; `slo status` always evaluates (it
answers for any `--at`, and is the check on what was stored).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from clickhouse_connect.driver.client import Client

from metrics.windows import floor_minute
from slo import store
from slo.evaluate import Evaluation, evaluate
from slo.lifecycle import FIRING, PENDING, RESOLVED, TIERS, advance


def _num(value) -> float | None:
    return None if value is None else float(value)


PAIR_FIELDS = ("severity", "long_window", "short_window", "factor", "burn_long", "burn_short",
               "firing")
_STANDING_FIELDS = ("objective", "period", "good", "total", "budget_remaining",
                    "time_to_exhaustion_s")


def standing(e: Evaluation) -> dict:
    """One SLO and dimension value's standing at `e.at`: `slo status`'s JSON object but its
    budget policy actions."""
    return {
        "slo": e.slo, "dimensions": e.dimensions, "objective": float(e.objective),
        "period": e.period, "good": e.good, "total": e.total,
        "budget_remaining": _num(e.budget_remaining),
        "time_to_exhaustion_s": e.time_to_exhaustion_s,
        "pairs": [{"severity": p.severity, "long_window": p.long_window,
                   "short_window": p.short_window, "factor": float(p.factor),
                   "burn_long": _num(p.burn_long), "burn_short": _num(p.burn_short),
                   "firing": p.firing} for p in e.pairs],
    }


def _with_actions(row: dict, actions: dict[tuple, list[dict]]) -> dict:
    key = (row["slo"], tuple(sorted(row["dimensions"].items())))
    return {**row, "budget_policy_actions": actions.get(key, [])}


def status(client: Client, slos, at: datetime, *, latency_threshold: float = 0.1
           ) -> list[dict]:
    """One object per SLO and dimension value (the JSON form of `slo status`), evaluated."""
    actions = _budget_actions(client)
    return [_with_actions(standing(e), actions)
            for e in evaluate(client, slos, [floor_minute(at)],
                              latency_threshold=latency_threshold)]


def definition(slo, latency_threshold: float) -> str:
    """A digest of all a standing depends on but the data: the SLO's name and spec (objective,
    SLI, filter, breakdown, period, windows, ...) and the latency threshold. A stored standing
    stands for the SLO as defined now only when its digest is this one."""
    text = json.dumps([slo.name, slo.spec.model_dump(warnings=False), float(latency_threshold)],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def record_standings(client: Client, slos, evaluations: list[Evaluation], *,
                     latency_threshold: float, computed_at: datetime) -> int:
    """Store the standings of one evaluation run (`standing` of each evaluation, in order)
    for `standings` to read; returns the rows stored."""
    digests = {s.name: definition(s, latency_threshold) for s in slos}
    rows, positions = [], {}
    for e in evaluations:
        row = standing(e)
        position = positions[(e.slo, e.at)] = positions.get((e.slo, e.at), -1) + 1
        rows.append({"slo": e.slo, "definition": digests[e.slo], "at": e.at,
                     "computed_at": computed_at, "position": position,
                     "dimensions": e.dimensions, **{f: row[f] for f in _STANDING_FIELDS},
                     **{f"pair_{f}": [p[f] for p in row["pairs"]] for f in PAIR_FIELDS}})
    store.record_standings(client, rows)
    return len(rows)


def backfill_standings(client: Client, slos, points: list[datetime], *,
                       latency_threshold: float, computed_at: datetime) -> int:
    """Store the standings the alert evaluator would have stored at `points` (a history
    generated or imported at once, where no evaluator ran): every SLO evaluated at all the
    points in one evaluation, as `alerts replay` does. Returns the rows stored."""
    if not slos or not points:
        return 0
    evaluations = evaluate(client, slos, sorted({floor_minute(p) for p in points}),
                           latency_threshold=latency_threshold)
    return record_standings(client, slos, evaluations, latency_threshold=latency_threshold,
                            computed_at=computed_at)


def _from_stored(row: dict) -> dict:
    """A stored row back as `standing` made it."""
    pairs = [dict(zip(PAIR_FIELDS, values))
             for values in zip(*(row[f"pair_{f}"] for f in PAIR_FIELDS))]
    return {"slo": row["slo"], "dimensions": row["dimensions"],
            **{f: row[f] for f in _STANDING_FIELDS}, "pairs": pairs}


def standings(client: Client, slos, points: list[datetime], *, latency_threshold: float = 0.1,
              within: timedelta = timedelta(0), together: bool = False,
              stored_only: bool = False) -> dict[datetime, list[dict]]:
    """`status` at each of `points` (floored to the minute), SLO by SLO: the standing the
    alert evaluator stored at the latest minute from point - `within` to the point when it
    stored one for the SLO as defined now (a small read), else evaluated as `status` does,
    each point on its own (the SLOs missing at a point in one evaluation). `within` 0: only
    the point's own minute. Point -> rows in `slos` order, as `status` returns them.

    `together`: the points nothing is stored for are evaluated in one evaluation (one read
    for all, as a burndown over many points needs); the numbers are the same, but each of
    those points then has a row for every dimension value any of them has (empty where it
    had no events), where `status` at that point alone lists only its own.

    `stored_only`: nothing is evaluated; a point with nothing stored for an SLO has no rows
    of it (a comparison with the past that should cost a read, not an evaluation)."""
    points = sorted({floor_minute(p) for p in points})
    digests = {s.name: definition(s, latency_threshold) for s in slos}
    seconds = max(int(within.total_seconds()), 0) + 1  # the store reads (p - seconds, p]
    latest: dict[tuple[str, datetime], tuple] = {}  # (digest, minute) -> (run, rows)
    for row in store.stored_standings(client, list(set(digests.values())), points, seconds):
        key = (row["definition"], row["at"])
        run = latest.get(key)
        if run is None or row["computed_at"] > run[0]:
            latest[key] = run = (row["computed_at"], [])
        if row["computed_at"] == run[0]:
            run[1].append(_from_stored(row))
    found: dict[tuple[str, datetime], list[dict]] = {}
    missing: dict[tuple[datetime, ...], list] = {}  # points evaluated together -> their SLOs
    for slo in slos:
        lacking = []
        for point in points:
            minutes = [m for (d, m) in latest
                       if d == digests[slo.name] and point - within <= m <= point]
            if minutes:
                found[(slo.name, point)] = latest[(digests[slo.name], max(minutes))][1]
            else:
                lacking.append(point)
        for group in [lacking] if together else [[p] for p in lacking]:
            if group and not stored_only:
                missing.setdefault(tuple(group), []).append(slo)
    for lacking, group in missing.items():
        for e in evaluate(client, group, list(lacking), latency_threshold=latency_threshold):
            found.setdefault((e.slo, e.at), []).append(standing(e))
    actions = _budget_actions(client)
    return {point: [_with_actions(row, actions) for slo in slos
                    for row in found.get((slo.name, point), [])] for point in points}


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
