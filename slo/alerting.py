"""One alert-evaluation run: evaluate every SLO, advance each alert's lifecycle, record it,
and hand new firing/resolved alerts, grouped by (SLO, tier), to the routed notifiers.

Silenced alerts are evaluated and recorded (with `silenced` set) but not notified; one still
firing when its silence ends is notified then, as Alertmanager does. Error-budget
policies are checked in the same run: each threshold of budget consumed triggers its action
once per SLO, dimension values and period, recorded in `budget_policy_events` and notified.
Every run ends by storing each SLO's standing (`slo_standings`), which the dashboards read.
Notification never blocks evaluation: the dispatcher delivers on its own threads.

A notice about an SLO that names a policy (a `policy` dimension value, or `policy` in its
`where` filter) carries that policy's runbook link and owning team from the latest stored
policy catalog (`catalog/`), read once per run and only when such a notice is sent; an SLO's
own `metadata.annotations.runbook_url` wins over the catalog's runbook.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from catalog import store as catalog_store
from catalog.model import Catalog
from metrics.windows import floor_minute, window_start
from slo import silences as silence_store
from slo import store
from slo.evaluate import Evaluation, evaluate
from slo.lifecycle import (
    FIRING,
    RESOLVED,
    TIERS,
    AlertState,
    AlertStore,
    advance,
    alert_id,
)
from slo.notify.base import AlertNotice, Notification, group_notices
from slo.report import record_standings
from slo.routing import Router

log = logging.getLogger(__name__)


@dataclass
class EvaluationReport:
    evaluations: int = 0
    transitions: list[tuple[str, str, str]] = field(default_factory=list)  # (slo, tier, kind)
    notified: int = 0
    silenced: int = 0
    budget_actions: int = 0


def _owner(slo, dimensions: dict[str, str]) -> tuple[str, str]:
    """(team, service) an alert belongs to, for its history rows (M7 by team): its dimension
    values, else the SLO's `where` filter, else the SLO's team label and service."""
    labels = getattr(slo.metadata, "labels", None) or {}
    team = dimensions.get("team") or slo.where.get("team") or str(labels.get("team", ""))
    service = dimensions.get("service") or slo.where.get("service") or slo.spec.service
    return team, service


def budget_period_start(slo, at: datetime) -> datetime:
    """The start of the budget period `at` falls in, for "once per period" actions: the
    calendar month, or for a rolling period the epoch-aligned slice of that length."""
    if slo.period_seconds is None:
        return window_start(at, "month").replace(tzinfo=None)
    seconds = int(at.timestamp()) // slo.period_seconds * slo.period_seconds
    return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)


RUNBOOK_ANNOTATION = "runbook_url"  # metadata.annotations key of an SLO's own runbook


def runbook_and_owner(slo, dimensions: dict[str, str], catalog: Catalog | None
                      ) -> tuple[str, str]:
    """(runbook URL, owning team) of an alert: the SLO's `runbook_url` annotation, else the
    catalog entry of the policy it is about (its `policy` dimension value, else the SLO's
    `where` filter); the owner from that entry. Empty strings for what is not known."""
    policy_id = dimensions.get("policy") or slo.where.get("policy")
    entry = catalog.get(policy_id) if catalog is not None and policy_id else None
    annotations = getattr(slo.metadata, "annotations", None) or {}
    runbook = annotations.get(RUNBOOK_ANNOTATION) or (entry.runbook if entry else "")
    return runbook, entry.owner if entry else ""


def dashboard_link(base: str, slo: str, dimensions: dict[str, str]) -> str:
    query = urlencode({"slo": slo, **dimensions})
    return f"{base.rstrip('/')}/?{query}"


class AlertEvaluator:
    def __init__(self, client: Client, slos, *, dispatcher=None, router: Router | None = None,
                 silence_dir: Path | None = None, dashboard_url: str = "http://127.0.0.1:8501",
                 latency_threshold: float = 0.1):
        self.client = client
        self.slos = list(slos)
        self.by_name = {s.name: s for s in self.slos}
        self.dispatcher = dispatcher
        self.router = router or Router([])
        self.silence_dir = silence_dir
        self.dashboard_url = dashboard_url
        self.latency_threshold = latency_threshold
        self.store = AlertStore(client)
        self._catalog: Catalog | None = None
        self._catalog_read = False

    def _links(self, slo, dimensions: dict[str, str]) -> tuple[str, str]:
        """`runbook_and_owner`, reading the latest policy catalog at most once per run, and
        only for an alert about a policy; a failed read leaves the links out, never the
        notification."""
        if slo is None:
            return "", ""
        if not self._catalog_read and (dimensions.get("policy") or slo.where.get("policy")):
            self._catalog_read = True
            try:
                version = catalog_store.latest(self.client)
            except ClickHouseError as exc:
                log.warning("policy catalog not read; notices go without its runbook links: "
                            "%s", str(exc).splitlines()[0])
            else:
                self._catalog = version.catalog if version else None
        return runbook_and_owner(slo, dimensions, self._catalog)

    def run(self, at: datetime | None = None) -> EvaluationReport:
        at = floor_minute(at or datetime.now(timezone.utc))
        report = EvaluationReport()
        if not self.slos:
            return report
        self._catalog, self._catalog_read = None, False
        evaluations = evaluate(self.client, self.slos, [at],
                               latency_threshold=self.latency_threshold)
        report.evaluations = len(evaluations)
        active = silence_store.load_table(self.client, at)
        if self.silence_dir is not None:
            active += silence_store.load_files(self.silence_dir)
        previous = self.store.load()
        states: list[AlertState] = []
        transitions: list[tuple[AlertState, str]] = []
        unmuted: list[AlertState] = []
        owners: dict[str, tuple[str, str]] = {}
        for evaluation in evaluations:
            slo = self.by_name[evaluation.slo]
            for tier in TIERS:
                if not any(p.severity == tier for p in evaluation.pairs):
                    continue
                labels = {"slo": slo.name, "severity": tier, **evaluation.dimensions}
                muted = silence_store.silenced(active, labels, at)
                key = alert_id(slo.name, tier, evaluation.dimensions)
                prior = previous.get(key)
                if prior is not None and prior.updated_at is not None \
                        and at < prior.updated_at:
                    continue  # an evaluation of the past (--at) never rewinds an alert
                owners[key] = _owner(slo, evaluation.dimensions)
                state, kind = advance(prior, evaluation, tier,
                                      pending_seconds=slo.pending_seconds, silenced=muted)
                if prior is None and kind is None:
                    continue  # never fired, nothing to remember
                states.append(state)
                if kind is not None:
                    transitions.append((state, kind))
                    report.transitions.append((slo.name, tier, kind))
                elif prior is not None and prior.silenced and not muted \
                        and state.state == FIRING:
                    unmuted.append(state)  # its silence ended while it still fires
        self.store.save(states, transitions, owners)
        notices = [self._notice(s) for s, kind in transitions
                   if kind in (FIRING, RESOLVED) and not s.silenced]
        notices += [self._notice(s) for s in unmuted]
        report.silenced = sum(1 for s, kind in transitions if s.silenced)
        for notification in group_notices(notices):
            report.notified += self._send(notification)
        report.budget_actions = self._budget_policies(evaluations, at)
        # what the dashboards show: this run's standing of every SLO (slo.report.standings)
        record_standings(self.client, self.slos, evaluations,
                         latency_threshold=self.latency_threshold,
                         computed_at=datetime.now(timezone.utc))
        if report.transitions:
            log.info("alerts at %s: %s", at.isoformat(), report.transitions)
        return report

    def _notice(self, state: AlertState) -> AlertNotice:
        started = state.fired_at or state.updated_at
        what = "burning" if state.state == FIRING else "recovered"
        burn = "" if state.burn_long is None else f" ({state.burn_long:.1f}x over " \
            f"{state.long_window})"
        dims = ", ".join(f"{k}={v}" for k, v in state.dimensions.items())
        runbook, owner = self._links(self.by_name.get(state.slo), state.dimensions)
        return AlertNotice(
            alert_id=state.alert_id, slo=state.slo, severity=state.severity,
            state=state.state, summary=f"SLO {state.slo}{' [' + dims + ']' if dims else ''} "
                                       f"error budget {what}{burn}",
            long_window=state.long_window, short_window=state.short_window,
            factor=state.factor, burn_long=state.burn_long, burn_short=state.burn_short,
            budget_remaining=state.budget_remaining,
            time_to_exhaustion_s=state.time_to_exhaustion_s,
            dashboard_url=dashboard_link(self.dashboard_url, state.slo, state.dimensions),
            started_at=started, resolved_at=state.resolved_at if state.state == RESOLVED
            else None, dimensions=state.dimensions, runbook_url=runbook, owner_team=owner)

    def _send(self, notification: Notification) -> int:
        first = notification.alerts[0]
        targets = self.router.route({"slo": first.slo, "severity": first.severity,
                                     **dict(first.dimensions)})
        if not targets or self.dispatcher is None:
            log.info("no notifier routed for %s %s (%d alerts)", first.slo, first.severity,
                     len(notification.alerts))
            return 0
        self.dispatcher.submit(notification, to=targets)
        return 1

    def _budget_policies(self, evaluations: list[Evaluation], at: datetime) -> int:
        taken = self._actions_taken()
        rows = []
        notices: dict[tuple[str, str, str], list[AlertNotice]] = {}
        for evaluation in evaluations:
            slo = self.by_name[evaluation.slo]
            if not slo.budget_policies or evaluation.budget_remaining is None:
                continue
            consumed = 1 - evaluation.budget_remaining
            period_start = budget_period_start(slo, at)
            dims = tuple(sorted(evaluation.dimensions.items()))
            for policy in slo.budget_policies:
                key = (slo.name, dims, float(policy.consumed), policy.action, period_start)
                if consumed < policy.consumed or key in taken:
                    continue
                taken.add(key)
                rows.append({"slo": slo.name, "dimensions": evaluation.dimensions,
                             "threshold": float(policy.consumed), "action": policy.action,
                             "owner": policy.owner or "", "budget_consumed": float(consumed),
                             "period_start": period_start, "at": at})
                notices.setdefault((slo.name, policy.action, policy.owner or ""), []).append(
                    self._budget_notice(slo, evaluation, policy, consumed, at))
        for (name, action, owner), group in notices.items():
            log.warning("error-budget policy of SLO %s: %s for %d dimension value(s)", name,
                        action, len(group))
            targets = self.router.route({"slo": name, "severity": "ticket", "action": action,
                                         "owner": owner})
            if targets and self.dispatcher is not None:
                self.dispatcher.submit(Notification(tuple(group)), to=targets)
        store.record_budget_actions(self.client, rows)
        return len(rows)

    def _budget_notice(self, slo, evaluation: Evaluation, policy, consumed,
                       at: datetime) -> AlertNotice:
        """An error-budget policy action as a ticket-tier notice; routes match it by the
        labels `action` and `owner` (so it can go to the policy's owner)."""
        wording = {"review-ticket": "open a policy review",
                   "notify-owner": "tell the policy's owner",
                   "freeze-enforce-rollouts": "freeze new enforce-mode rollouts"}[policy.action]
        dims = ", ".join(f"{k}={v}" for k, v in evaluation.dimensions.items())
        runbook, owner = self._links(slo, evaluation.dimensions)
        return AlertNotice(
            alert_id=alert_id(slo.name, f"budget-{policy.action}", evaluation.dimensions),
            slo=slo.name, severity="ticket", state="firing",
            summary=f"SLO {slo.name}{' [' + dims + ']' if dims else ''} consumed "
                    f"{float(consumed):.0%} of its error budget (policy at "
                    f"{float(policy.consumed):.0%}): {wording}",
            long_window=evaluation.period, short_window=evaluation.period, factor=0.0,
            burn_long=None, burn_short=None,
            budget_remaining=float(evaluation.budget_remaining),
            time_to_exhaustion_s=evaluation.time_to_exhaustion_s,
            dashboard_url=dashboard_link(self.dashboard_url, slo.name, evaluation.dimensions),
            started_at=at, dimensions=evaluation.dimensions, runbook_url=runbook,
            owner_team=owner)

    def _actions_taken(self) -> set[tuple]:
        """(SLO, dimension values, threshold, action, period start) of every action taken."""
        return {(r["slo"], tuple(sorted(r["dimensions"].items())), float(r["threshold"]),
                 r["action"], r["period_start"].replace(tzinfo=None))
                for r in store.budget_actions(self.client)}
