"""Demo traffic: real Rego admission decisions for a seeded fleet, sent as OTLP log events.

Usage::

    stats = DemoTraffic("http://localhost:4317", "grpc", rate=50).run(duration=60)
    stats = DemoTraffic("http://localhost:4318", "http").emit_batch(1000)

Per admission request (one workload rollout) every applicable policy is evaluated with
regopy and emitted as one `policy.decision`; Deployments also get a `deploy.gate`.
Around that: `workload.inventory` + `sbom.generated` (every `inventory_interval` s),
`agent.heartbeat` per cluster (every `heartbeat_interval` s), `policy.violation`
opened/remediated as decisions flip, and rare `drift.detected`. Attributes follow the
wire contract of DESIGN §3; `k8s.cluster.name` is a resource attribute.
"""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry._logs import SeverityNumber

from . import workloads as wl
from .engine import CATALOG_BY_ID, PolicyEngine, PolicySpec
from .otlp import OtlpSinks

log = logging.getLogger(__name__)
ENGINE = "opa"
_SEVERITY = {"allow": SeverityNumber.INFO, "warn": SeverityNumber.WARN,
             "deny": SeverityNumber.WARN, "error": SeverityNumber.ERROR}
_DRIFT_FIELDS = ("spec.replicas", "spec.template.spec.containers[0].image",
                 "metadata.labels.team", "spec.template.spec.containers[0].resources.limits")


@dataclass
class DemoStats:
    """Counts of one `run`/`emit_batch` call; `elapsed` in seconds."""

    events: Counter = field(default_factory=Counter)      # event kind → records
    outcomes: Counter = field(default_factory=Counter)    # policy.outcome → decisions
    gates: Counter = field(default_factory=Counter)       # deploy.gate.outcome → gates
    violations: Counter = field(default_factory=Counter)  # policy.violation.status → events
    records_emitted: int = 0
    records_exported: int = 0
    records_failed: int = 0
    exported_ok: bool = False  # every emitted record was accepted by the endpoint
    elapsed: float = 0.0

    @property
    def decisions(self) -> int:
        return self.events["policy.decision"]


def _uid() -> str:
    """Random (not seeded) uuid4: two runs with one seed must not dedupe each other."""
    return str(uuid.uuid4())


class DemoTraffic:
    """Generates demo events and sends them through the OpenTelemetry SDK.

    `rate` is policy decisions per second (run); `seed` fixes the fleet and the
    request sequence. One instance keeps state (open violations, SBOMs sent) across
    calls; each call opens and shuts down its own SDK pipelines.
    """

    def __init__(self, endpoint: str, protocol: str = "grpc", rate: float = 50.0, seed: int = 7, *,
                 inventory_interval: float = 60.0, heartbeat_interval: float = 15.0,
                 export_timeout: float = 10.0, compression: str = "gzip",
                 max_queue_size: int = 8192, max_export_batch_size: int = 512):
        if protocol not in ("grpc", "http"):
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        if rate <= 0:
            raise ValueError("rate must be > 0 decisions per second")
        self.endpoint, self.protocol, self.rate = endpoint, protocol, float(rate)
        self.inventory_interval, self.heartbeat_interval = inventory_interval, heartbeat_interval
        self._sink_opts = dict(timeout=export_timeout, compression=compression,
                               max_queue_size=max_queue_size, max_export_batch_size=max_export_batch_size)
        self._rng = random.Random(seed)
        self._noise = random.Random(seed + 1)  # agent/SBOM noise, independent of the request sequence
        self.fleet = wl.generate_fleet(self._rng)
        self.engine = PolicyEngine()
        self._open: dict[tuple[str, str], str] = {}  # (workload id, policy id) → violation id
        self._sbom_done: set[str] = set()
        self._dropped: Counter = Counter()  # cluster → agent.dropped_events (cumulative)
        self._storms: dict[str, float] = {}  # policy id → time.monotonic() deadline

    # ---------------------------------------------------------------- public API
    def inject_error_storm(self, policy_id: str, seconds: float) -> None:
        """Make every evaluation of `policy_id` an 'error' for the next `seconds` (0 ends it)."""
        if policy_id not in CATALOG_BY_ID:
            raise KeyError(f"unknown policy {policy_id!r}; known: {sorted(CATALOG_BY_ID)}")
        self._storms[policy_id] = time.monotonic() + seconds

    def adopt_open_violations(self, open_violations: dict[tuple[str, str], str]) -> None:
        """Continue violations opened before this instance ran ((workload id, policy id) ->
        violation id, e.g. the demo's stored history): remediated at the next allow, not
        opened twice."""
        self._open.update(open_violations)

    def run(self, duration: float | None, stop_event: threading.Event | None = None) -> DemoStats:
        """Emit paced at `rate` decisions/s for `duration` s, or until `stop_event` is set."""
        if duration is None and stop_event is None:
            raise ValueError("run() needs a duration or a stop_event")
        stop = stop_event or threading.Event()
        with self._session(f"run duration={duration}s") as (sinks, stats):
            start = time.monotonic()
            next_inventory = next_heartbeat = start
            decisions = 0
            while not stop.is_set():
                now = time.monotonic()
                if duration is not None and now - start >= duration:
                    break
                if now >= next_inventory:
                    self._inventory(sinks, stats)
                    next_inventory = now + self.inventory_interval
                if now >= next_heartbeat:
                    self._heartbeats(sinks, stats)
                    next_heartbeat = now + self.heartbeat_interval
                decisions += self._admission(sinks, stats)
                wait = start + decisions / self.rate - time.monotonic()
                if duration is not None:
                    wait = min(wait, start + duration - time.monotonic())
                if wait > 0:
                    stop.wait(wait)
        return stats

    def emit_batch(self, n_decisions: int) -> DemoStats:
        """Inventory + heartbeats, then exactly `n_decisions` decisions (with their gates,
        violations, drift) as fast as possible; flushed before returning."""
        with self._session(f"batch n_decisions={n_decisions}") as (sinks, stats):
            self._inventory(sinks, stats)
            self._heartbeats(sinks, stats)
            done = 0
            while done < n_decisions:
                done += self._admission(sinks, stats, limit=n_decisions - done)
        return stats

    # ---------------------------------------------------------------- internals
    @contextmanager
    def _session(self, what: str):
        log.info("demo traffic start: %s endpoint=%s protocol=%s rate=%.1f/s workloads=%d",
                 what, self.endpoint, self.protocol, self.rate, len(self.fleet))
        stats, started = DemoStats(), time.monotonic()
        clusters = {w.cluster: w.environment for w in self.fleet}
        sinks = OtlpSinks(self.endpoint, self.protocol, clusters, **self._sink_opts)
        try:
            yield sinks, stats
        finally:
            stats.records_emitted = sinks.emitted
            stats.records_exported, stats.records_failed = sinks.close()
            stats.exported_ok = stats.records_failed == 0 and stats.records_exported == sinks.emitted
            stats.elapsed = time.monotonic() - started
            log.info("demo traffic end: events=%s outcomes=%s gates=%s emitted=%d exported=%d "
                     "failed=%d ok=%s in %.1fs", dict(stats.events), dict(stats.outcomes),
                     dict(stats.gates), stats.records_emitted, stats.records_exported,
                     stats.records_failed, stats.exported_ok, stats.elapsed)

    def _emit(self, sinks: OtlpSinks, stats: DemoStats, cluster: str, kind: str, attrs: dict,
              severity: SeverityNumber = SeverityNumber.INFO) -> None:
        attrs["log.record.uid"] = _uid()
        sinks.emit(cluster, kind, attrs, severity)
        stats.events[kind] += 1

    @staticmethod
    def _workload_attrs(w: wl.Workload) -> dict:
        return {"team.name": w.team, "service.name": w.service,
                "deployment.environment.name": w.environment, "k8s.namespace.name": w.namespace,
                "policy.resource.kind": w.kind, "policy.resource.name": w.name,
                "policy.resource.id": w.id, "artifact.image": w.image}

    def _storming(self, policy_id: str) -> bool:
        deadline = self._storms.get(policy_id)
        return deadline is not None and time.monotonic() < deadline

    def _admission(self, sinks: OtlpSinks, stats: DemoStats, limit: int | None = None) -> int:
        """One rollout of a random workload; returns the number of decisions emitted."""
        rng = self._rng
        w = wl.pick_workload(self.fleet, rng)
        wl.evolve(w, rng)
        actor = wl.pick_actor(w, rng)
        review = wl.admission_review(w, rng, actor, "CREATE" if w.kind == "Pod" else "UPDATE")
        engine = self.engine  # once per rollout: a policy rollout swaps it (demo/incident.py)
        evaluations = engine.evaluate_all(review)
        complete = limit is None or len(evaluations) <= limit
        evaluations = evaluations if complete else evaluations[:limit]
        blocking: PolicySpec | None = None
        for ev in evaluations:
            spec = engine.spec(ev.policy_id)
            mode = spec.mode_for(w)
            outcome, reason = ev.outcome, ev.reason
            if self._storming(spec.id):
                outcome, reason = "error", "rego evaluation error: injected fault (error storm)"
            if outcome == "deny" and mode == "warn":
                outcome = "warn"
            if outcome == "deny" and mode == "enforce" and blocking is None:
                blocking = spec
            attrs = self._workload_attrs(w) | {
                "policy.id": spec.id, "policy.outcome": outcome, "policy.engine": ENGINE,
                "policy.version": spec.version_for(w), "policy.rule": spec.rule,
                "policy.enforcement": mode, "policy.severity": spec.severity,
                "policy.evaluation.duration": ev.duration, "enduser.id": actor}
            if outcome != "allow":
                attrs["policy.reason"] = reason
            self._emit(sinks, stats, w.cluster, "policy.decision", attrs, _SEVERITY[outcome])
            stats.outcomes[outcome] += 1
            self._track_violation(sinks, stats, w, spec, outcome)
        if complete and w.kind == "Deployment":
            self._gate(sinks, stats, w, actor, blocking)
        if rng.random() < 0.003:
            attrs = self._workload_attrs(w) | {"drift.field": rng.choice(_DRIFT_FIELDS), "drift.source": "argocd"}
            self._emit(sinks, stats, w.cluster, "drift.detected", attrs, SeverityNumber.WARN)
        return len(evaluations)

    def _gate(self, sinks, stats, w: wl.Workload, actor: str, blocking: PolicySpec | None) -> None:
        outcome = "passed"
        attrs = self._workload_attrs(w) | {"deploy.id": f"deploy-{uuid.uuid4().hex[:12]}", "enduser.id": actor}
        if blocking is not None:
            outcome = "overridden" if self._rng.random() < 0.1 else "blocked"
            attrs |= {"policy.id": blocking.id, "policy.severity": blocking.severity}
        attrs["deploy.gate.outcome"] = outcome
        self._emit(sinks, stats, w.cluster, "deploy.gate", attrs,
                   SeverityNumber.WARN if outcome == "blocked" else SeverityNumber.INFO)
        stats.gates[outcome] += 1

    def _track_violation(self, sinks, stats, w: wl.Workload, spec: PolicySpec, outcome: str) -> None:
        key = (w.id, spec.id)
        if outcome in ("deny", "warn") and key not in self._open:
            self._open[key] = _uid()
            status, extra = "opened", {}
        elif outcome == "allow" and key in self._open:
            status = "remediated"
            extra = {"policy.remediation.kind": "auto" if self._rng.random() < 0.3 else "manual"}
        else:
            return
        vid = self._open[key] if status == "opened" else self._open.pop(key)
        attrs = self._workload_attrs(w) | extra | {
            "policy.id": spec.id, "policy.engine": ENGINE, "policy.severity": spec.severity,
            "policy.violation.id": vid, "policy.violation.status": status}
        self._emit(sinks, stats, w.cluster, "policy.violation", attrs)
        stats.violations[status] += 1

    def _inventory(self, sinks: OtlpSinks, stats: DemoStats) -> None:
        """One `workload.inventory` per workload; `sbom.generated` for new images with an SBOM."""
        for w in self.fleet:
            attrs = self._workload_attrs(w) | {"workload.id": w.id, "workload.enforced": w.enforced}
            self._emit(sinks, stats, w.cluster, "workload.inventory", attrs)
            if w.has_sbom and w.image not in self._sbom_done:
                self._sbom_done.add(w.image)
                fmt = "SPDX" if self._noise.random() < 0.2 else "CycloneDX"
                attrs = {"artifact.image": w.image, "team.name": w.team, "service.name": w.service,
                         "sbom.format": fmt, "sbom.component.count": self._noise.randint(40, 900)}
                self._emit(sinks, stats, w.cluster, "sbom.generated", attrs)

    def _heartbeats(self, sinks: OtlpSinks, stats: DemoStats) -> None:
        for cluster in sorted({w.cluster for w in self.fleet}):
            degraded = self._noise.random() < 0.02
            if degraded:
                self._dropped[cluster] += self._noise.randint(1, 20)
            attrs = {"agent.id": f"opa-admission-{cluster}", "policy.engine": ENGINE,
                     "agent.status": "degraded" if degraded else "healthy",
                     "agent.heartbeat.interval": float(self.heartbeat_interval),
                     "agent.dropped_events": self._dropped[cluster]}
            self._emit(sinks, stats, cluster, "agent.heartbeat", attrs)
