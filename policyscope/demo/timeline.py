"""Days of demo history as events, generated without storage: what the seeded fleet of the demo
traffic (`workloads.generate_fleet`, same seed, same workloads) would have sent over the last
`days` days, ending in the state the live demo starts from.

    history = generate(days=30, seed=7, until_ms=now_ms)
    history.events        # Event(time_ms, kind, context, attrs), in time order
    history.contexts      # context key -> the attributes its events share (resource, workload)

Same seed and `until_ms`, same events (ids included). Nothing is timed after `until_ms`.

The world, per workload:
- *rollouts* (admission requests) arrive as a Poisson process following office hours
  (weekdays 08-18 UTC busiest, nights and weekends quiet); staging rolls out more often. Each
  rollout may bump the image version; versions run so that the last one is the fleet's.
- *flaws* come and go in episodes: a flaw (a policy the workload breaks) starts at random and
  is fixed after a time to remediate drawn by its policy's severity (critical: hours, low:
  days). The fleet's own flaws are the episodes still running at the end, so the live demo
  continues them. While a flaw runs, every rollout's Rego evaluation of it denies.
- every applicable policy is evaluated per rollout with the demo's real Rego policies
  (regopy), once per distinct workload state (flaws, image, replicas, annotation) and reused
  for every rollout in that state; outcome, enforcement (warn turns a deny into warn), gate
  (the first enforce-mode deny blocks a Deployment's deploy, 10 % of blocks overridden) and
  violation lifecycle (opened at the first deny/warn, remediated at the next allow) follow
  the live traffic's rules (`traffic.DemoTraffic._admission`).
- policies change *versions* over time (staging days before production); in production
  `k8s.require-resource-limits` ran in audit mode until its current version made it enforce.
- latencies: a per-policy base (about a millisecond, as regopy's), log-normal noise, a load
  factor and rare spikes; one slow spell in one cluster.
- one *error storm* (a bundle that failed to activate), and the fleet's workload with the
  non-numeric max-replicas annotation (a real Rego error) only for its last hours.
- hourly `workload.inventory` per workload (the image of the time), `sbom.generated` for new
  images of workloads with SBOMs, `drift.detected` now and then (rising over the period).
- `agent.heartbeat` every 10 minutes per cluster agent, one degraded spell, and one audit agent
  that went stale 20 hours before the end.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field, replace

from . import workloads as wl
from .engine import CATALOG, Evaluation, PolicyEngine, PolicySpec
from .otlp import AGENT_SERVICE

MINUTE_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000
ENGINE = "opa"
SALT = "policyscope-demo-history"

# rollouts per hour of a workload at activity 1 (the weekday office-hours plateau is 1.6)
ROLLOUTS_PER_HOUR = {"production": 0.8, "staging": 1.2}
VERSION_BUMP = 0.25  # share of rollouts that ship a new image version
# new flaws per workload per day (besides the fleet's own, running at the end)
FLAWS_PER_DAY = {"production": 1 / 18, "staging": 1 / 8}
# time to remediate by severity: log-normal, (median hours, sigma)
TTR = {"critical": (3.0, 0.6), "high": (16.0, 0.7), "medium": (30.0, 0.8), "low": (110.0, 0.7),
       "info": (110.0, 0.7)}
OVERRIDE_SHARE = 0.1  # blocked deploys a human overrides (as the live traffic)
# per-policy latency base, seconds (regopy evaluates these in about a millisecond)
LATENCY_BASE = {wl.NON_ROOT: 0.0009, wl.LATEST_TAG: 0.0012, wl.LIMITS: 0.0008,
                wl.REGISTRY: 0.0011, wl.TEAM_LABEL: 0.0006, wl.MAX_REPLICAS: 0.0007}
LATENCY_SIGMA = 0.35
SPIKE_SHARE, SPIKE = 0.003, (8.0, 40.0)
HEARTBEAT_S = 600
DRIFT_PER_ROLLOUT = 0.012  # at the start; doubles (linearly) by the end
STORM_REASON = ("rego evaluation error: data.k8s.allowed_registries.allowed is undefined "
                "(bundle activation failed)")
STALE_AGENT_CLUSTER = "prod-us-1"
_DRIFT_FIELDS = ("spec.replicas", "spec.template.spec.containers[0].image",
                 "metadata.labels.team", "spec.template.spec.containers[0].resources.limits")
_SEVERITY_OF = {p.id: p.severity for p in CATALOG}
_SPECS = {p.id: p for p in CATALOG}


@dataclass(frozen=True)
class Event:
    """One event as the demo traffic would send it: kind, time, the key of the attributes it
    shares with others (`History.contexts`: the OTLP resource and the workload) and its own."""

    time_ms: int
    kind: str
    context: str
    attrs: dict


@dataclass(frozen=True)
class Window:
    """A time span [start_ms, end_ms) of something unusual, in one cluster (or every one)."""

    start_ms: int
    end_ms: int
    cluster: str | None = None

    def covers(self, cluster: str, t: int) -> bool:
        return self.start_ms <= t < self.end_ms and self.cluster in (None, cluster)


@dataclass
class Episode:
    """A flaw of one workload from `start_ms` to `end_ms` (None: still there at the end)."""

    flaw: str
    start_ms: int
    end_ms: int | None
    replicas_seed: int = 0

    def covers(self, t: int) -> bool:
        return self.start_ms <= t and (self.end_ms is None or t < self.end_ms)


@dataclass
class History:
    start_ms: int
    until_ms: int
    events: list[Event]
    contexts: dict[str, dict]
    #: (workload id, policy id) -> id of each violation still open at the end
    open_violations: dict[tuple[str, str], str]
    evaluations: int  # Rego evaluations made (distinct workload states x policies)
    kinds: Counter = field(default_factory=Counter)
    storm: Window | None = None
    slow_spell: Window | None = None


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join([SALT, str(seed), *map(str, parts)]))


def _uid(rng: random.Random) -> str:
    """A uuid4-shaped id from `rng` (uuid.UUID is slow for a few hundred thousand)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _activity_table() -> list[float]:
    """Rollout activity per hour of the week (Monday 00 UTC = 0), 1.6 at the weekday peak."""
    day = [0.25] * 6 + [0.6, 1.0] + [1.6] * 10 + [1.0, 0.7, 0.5, 0.4, 0.3, 0.25]
    return [a * (1.0 if d < 5 else 0.3) for d in range(7) for a in day]


ACTIVITY = _activity_table()
PEAK = max(ACTIVITY)
MEAN_ACTIVITY = sum(ACTIVITY) / len(ACTIVITY)


def activity(t_ms: int) -> float:
    hours = t_ms // HOUR_MS
    weekday = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday
    return ACTIVITY[weekday * 24 + hours % 24]


def _poisson_times(rng: random.Random, per_hour: float, start: int, end: int) -> list[int]:
    """Arrival times in [start, end) of a Poisson process of `per_hour` x activity (thinning)."""
    times, t, peak = [], float(start), per_hour * PEAK
    while True:
        t += rng.expovariate(peak) * HOUR_MS
        if t >= end:
            return times
        if rng.random() * PEAK < activity(int(t)):
            times.append(int(t))


def _ttr_ms(rng: random.Random, severity: str) -> int:
    median, sigma = TTR[severity]
    return int(median * math.exp(rng.gauss(0.0, sigma)) * HOUR_MS)


def _previous_image(version: str) -> str:
    major, minor, patch = (int(x) for x in version.split("."))
    if patch:
        return f"{major}.{minor}.{patch - 1}"
    if minor:
        return f"{major}.{minor - 1}.9"
    return f"{max(major - 1, 0)}.9.9" if major else version


def _previous_release(version: str) -> str:
    major, minor, patch = (int(x) for x in version.split("."))
    if patch:
        return f"{major}.{minor}.{patch - 1}"
    if minor:
        return f"{major}.{minor - 1}.2"
    return f"{max(major - 1, 0)}.9.0"


class PolicyVersions:
    """Which version of each policy ran in each environment when, and in which mode."""

    def __init__(self, rng: random.Random, start: int, until: int):
        self.timelines: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self.enforce_from: dict[str, int] = {}  # policy id -> when production began enforcing
        for spec in CATALOG:
            previous = _previous_release(spec.version)
            prod_switch = until - int(rng.uniform(9, 20) * DAY_MS)
            staging_switch = prod_switch - int(rng.uniform(2, 4) * DAY_MS)
            self.timelines[spec.id, "production"] = [(start, previous), (prod_switch, spec.version)]
            staging = [(start, previous), (staging_switch, spec.version)]
            if spec.staging_version != spec.version:
                staging.append((until - int(rng.uniform(2, 5) * DAY_MS), spec.staging_version))
            self.timelines[spec.id, "staging"] = staging
            if spec.id == wl.LIMITS:  # audit until its current version made it enforce
                self.enforce_from[spec.id] = prod_switch
        versions = sorted({v for line in self.timelines.values() for _, v in line})
        self.latency_factor = {(p.id, v): rng.uniform(0.85, 1.2) for p in CATALOG for v in versions}

    def version(self, spec: PolicySpec, environment: str, t: int) -> str:
        current = None
        for since, version in self.timelines[spec.id, environment]:
            if since > t:
                break
            current = version
        return current

    def mode(self, spec: PolicySpec, workload: wl.Workload, t: int) -> str:
        mode = spec.mode_for(workload)
        since = self.enforce_from.get(spec.id)
        if mode == "enforce" and workload.environment == "production" and since is not None \
                and t < since:
            return "audit"
        return mode


class _Rego:
    """The demo's Rego policies over workload states, each distinct state evaluated once."""

    def __init__(self, engine: PolicyEngine | None):
        self.engine = engine or PolicyEngine()
        self.cache: dict[tuple, list[Evaluation]] = {}
        self.evaluations = 0

    def evaluate(self, w: wl.Workload, flaws: frozenset, version: str, annotation: str | None,
                 replicas_seed: int) -> list[Evaluation]:
        image_matters = wl.REGISTRY in flaws or wl.LATEST_TAG in flaws
        key = (w.id, flaws, version if image_matters else "", annotation,
               replicas_seed if wl.MAX_REPLICAS in flaws else 0)
        found = self.cache.get(key)
        if found is None:
            state = replace(w, flaws=set(flaws), version=version,
                            max_replicas_annotation=annotation)
            review = wl.admission_review(state, random.Random(replicas_seed), "history")
            found = self.cache[key] = self.engine.evaluate_all(review)
            self.evaluations += len(found)
        return found


def _workload_base(w: wl.Workload) -> dict:
    return {"service.name": w.service, "k8s.cluster.name": w.cluster,
            "deployment.environment.name": w.environment, "team.name": w.team,
            "k8s.namespace.name": w.namespace, "policy.resource.kind": w.kind,
            "policy.resource.name": w.name, "policy.resource.id": w.id}


def _cluster_base(cluster: str, environment: str) -> dict:
    return {"service.name": AGENT_SERVICE, "k8s.cluster.name": cluster,
            "deployment.environment.name": environment}


class _Generator:
    def __init__(self, days: int, seed: int, until_ms: int, engine: PolicyEngine | None):
        self.seed = seed
        self.until = until_ms
        self.start = until_ms - days * DAY_MS
        self.fleet = wl.generate_fleet(random.Random(seed))  # the live demo's fleet
        world = _rng(seed, "world")
        self.versions = PolicyVersions(world, self.start, self.until)
        self.storm = self._window(self._weekday(9, 14 * HOUR_MS + 10 * MINUTE_MS), 25,
                                  "prod-us-1")
        self.slow = self._window(self._weekday(13, 10 * HOUR_MS + 20 * MINUTE_MS), 35,
                                 "prod-eu-1")
        self.rego = _Rego(engine)
        self.events: list[Event] = []
        self.contexts: dict[str, dict] = {}
        self.open: dict[tuple[str, str], str] = {}
        self.images: dict[tuple, str] = {}

    def _weekday(self, days_back: int, offset_ms: int) -> int:
        """`offset_ms` into the day `days_back` days before the end, or into the weekday
        before it when that is a weekend (busy hours, so things happen in it)."""
        day = self.until - self.until % DAY_MS - days_back * DAY_MS
        while (day // DAY_MS + 3) % 7 >= 5:  # 1970-01-01 was a Thursday
            day -= DAY_MS
        return day + offset_ms

    def _window(self, start: int, minutes: int, cluster: str) -> Window | None:
        if start < self.start or start + minutes * MINUTE_MS > self.until:
            return None  # a short history has no room for it
        return Window(start, start + minutes * MINUTE_MS, cluster)

    def emit(self, t: int, kind: str, context: str, attrs: dict, rng: random.Random) -> None:
        attrs["log.record.uid"] = _uid(rng)
        self.events.append(Event(min(t, self.until), kind, context, attrs))

    # ------------------------------------------------------------------ per workload
    def episodes(self, w: wl.Workload, rng: random.Random) -> list[Episode]:
        out: list[Episode] = []
        for flaw in sorted(w.flaws):  # the fleet's own: still running at the end
            age = _ttr_ms(rng, _SEVERITY_OF[flaw]) * rng.uniform(0.3, 0.9)
            start = max(self.start, self.until - int(age))
            out.append(Episode(flaw, start, None, rng.getrandbits(32)))
        starts = _poisson_times(rng, FLAWS_PER_DAY[w.environment] / 24 / MEAN_ACTIVITY,
                                self.start, self.until)  # introduced as rollouts are
        for start in starts:
            choices = [f for f in wl.FLAW_WEIGHTS if not (w.kind == "Pod" and f == wl.MAX_REPLICAS)]
            flaw = rng.choices(choices, weights=[wl.FLAW_WEIGHTS[f] for f in choices])[0]
            end = start + _ttr_ms(rng, _SEVERITY_OF[flaw])
            if end >= self.until - 10 * MINUTE_MS:
                continue  # would still be open at the end, which the fleet's state is
            if any(e.flaw == flaw and e.start_ms < end and (e.end_ms is None or start < e.end_ms)
                   for e in out):
                continue
            out.append(Episode(flaw, start, end, rng.getrandbits(32)))
        return out

    def workload(self, w: wl.Workload) -> None:
        rng = _rng(self.seed, "workload", w.id)
        episodes = self.episodes(w, rng)
        times = _poisson_times(rng, ROLLOUTS_PER_HOUR[w.environment], self.start,
                               self.until - 1000)
        bumps = [rng.random() < VERSION_BUMP for _ in times]
        versions, version = [], w.version  # backwards: the last rollout runs the fleet's
        for bump in reversed(bumps):
            versions.append(version)
            if bump:
                version = _previous_image(version)
        versions.reverse()
        first_version = version
        # the non-numeric annotation (a real Rego error) only for its last hours
        annotation_from = self.until - int(rng.uniform(5, 9) * HOUR_MS) \
            if w.max_replicas_annotation == "unlimited" else self.start
        wid = f"workload:{w.id}"
        self.contexts[wid] = _workload_base(w)
        for spec in CATALOG:
            if w.kind in spec.kinds:
                self.contexts[f"decision:{w.id}:{spec.id}"] = _workload_base(w) | {
                    "policy.id": spec.id, "policy.engine": ENGINE, "policy.rule": spec.rule,
                    "policy.severity": spec.severity}
        for t, version in zip(times, versions):
            flaws = frozenset(e.flaw for e in episodes if e.covers(t))
            seed = next((e.replicas_seed for e in episodes
                         if e.flaw == wl.MAX_REPLICAS and e.covers(t)), 0)
            annotation = w.max_replicas_annotation if t >= annotation_from else None
            self.rollout(w, t, version, self.rego.evaluate(w, flaws, version, annotation, seed),
                         rng, flaws)
        self.inventory(w, times, versions, first_version, episodes, rng)

    def image(self, w: wl.Workload, version: str, flaws: frozenset) -> str:
        """The workload's image at `version` with `flaws` (Workload.image, memoized)."""
        key = (w.id, version, wl.REGISTRY in flaws, wl.LATEST_TAG in flaws)
        image = self.images.get(key)
        if image is None:
            image = self.images[key] = replace(w, flaws=set(flaws), version=version).image
        return image

    def rollout(self, w: wl.Workload, t: int, version: str, evaluations: list[Evaluation],
                rng: random.Random, flaws: frozenset) -> None:
        image = self.image(w, version, flaws)
        actor = wl.pick_actor(w, rng)
        load = 1.0 + 0.3 * activity(t) / PEAK
        at, blocking = t, None
        for ev in evaluations:
            spec = _SPECS[ev.policy_id]
            mode = self.versions.mode(spec, w, t)
            policy_version = self.versions.version(spec, w.environment, t)
            outcome, reason = ev.outcome, ev.reason
            if self.storm is not None and spec.id == wl.REGISTRY and self.storm.covers(w.cluster, t):
                outcome, reason = "error", STORM_REASON
            if outcome == "deny" and mode == "warn":
                outcome = "warn"
            if outcome == "deny" and mode == "enforce" and blocking is None:
                blocking = spec
            latency = LATENCY_BASE[spec.id] * self.versions.latency_factor[spec.id, policy_version] \
                * math.exp(rng.gauss(0.0, LATENCY_SIGMA)) * load
            if rng.random() < SPIKE_SHARE:
                latency *= rng.uniform(*SPIKE)
            if self.slow is not None and self.slow.covers(w.cluster, t):
                latency *= rng.uniform(40, 120)
            at += max(1, int(latency * 1000))
            attrs = {"policy.outcome": outcome, "policy.version": policy_version,
                     "policy.enforcement": mode, "policy.evaluation.duration": latency,
                     "enduser.id": actor, "artifact.image": image}
            if outcome != "allow":
                attrs["policy.reason"] = reason
            self.emit(at, "policy.decision", f"decision:{w.id}:{spec.id}", attrs, rng)
            self.violation(w, spec, outcome, at, image, rng)
        wid = f"workload:{w.id}"
        if w.kind == "Deployment":
            attrs = {"artifact.image": image, "deploy.id": f"deploy-{rng.getrandbits(48):012x}",
                     "enduser.id": actor}
            outcome = "passed"
            if blocking is not None:
                outcome = "overridden" if rng.random() < OVERRIDE_SHARE else "blocked"
                attrs |= {"policy.id": blocking.id, "policy.severity": blocking.severity}
            attrs["deploy.gate.outcome"] = outcome
            self.emit(at + 20, "deploy.gate", wid, attrs, rng)
        progress = (t - self.start) / (self.until - self.start)
        if rng.random() < DRIFT_PER_ROLLOUT * (1 + progress):
            self.emit(min(at + 60_000, self.until), "drift.detected", wid,
                      {"artifact.image": image, "drift.field": rng.choice(_DRIFT_FIELDS),
                       "drift.source": "argocd"}, rng)

    def violation(self, w: wl.Workload, spec: PolicySpec, outcome: str, t: int, image: str,
                  rng: random.Random) -> None:
        key = (w.id, spec.id)
        if outcome in ("deny", "warn") and key not in self.open:
            vid = self.open[key] = _uid(rng)
            status, extra = "opened", {}
        elif outcome == "allow" and key in self.open:
            vid, status = self.open.pop(key), "remediated"
            extra = {"policy.remediation.kind": "auto" if rng.random() < 0.3 else "manual"}
        else:
            return
        self.emit(t, "policy.violation", f"workload:{w.id}", extra | {
            "artifact.image": image, "policy.id": spec.id, "policy.engine": ENGINE,
            "policy.severity": spec.severity, "policy.violation.id": vid,
            "policy.violation.status": status}, rng)

    def inventory(self, w: wl.Workload, times: list[int], versions: list[str],
                  first_version: str, episodes: list[Episode], rng: random.Random) -> None:
        """Hourly `workload.inventory` with the image running then; an SBOM for each new
        image of a workload that has them (in the cluster's resource, as the traffic)."""
        noise = _rng(self.seed, "inventory", w.id)
        wid = f"workload:{w.id}"
        cluster = f"cluster:{w.cluster}"
        self.contexts.setdefault(cluster, _cluster_base(w.cluster, w.environment))
        sboms: set[str] = set()
        i, version = 0, first_version
        hour = self.start - self.start % HOUR_MS + HOUR_MS
        while hour < self.until:
            t = hour + noise.randint(0, 50_000)
            while i < len(times) and times[i] <= t:
                version, i = versions[i], i + 1
            if t < self.until:
                image = self.image(w, version, frozenset(
                    e.flaw for e in episodes if e.covers(t)))
                self.emit(t, "workload.inventory", wid, {
                    "artifact.image": image, "workload.id": w.id,
                    "workload.enforced": w.enforced}, rng)
                if w.has_sbom and image not in sboms:
                    sboms.add(image)
                    self.emit(t, "sbom.generated", cluster, {
                        "artifact.image": image, "team.name": w.team, "service.name": w.service,
                        "sbom.format": "SPDX" if noise.random() < 0.2 else "CycloneDX",
                        "sbom.component.count": noise.randint(40, 900)}, rng)
            hour += HOUR_MS

    # ------------------------------------------------------------------ agents
    def agents(self) -> None:
        rng = _rng(self.seed, "agents")
        clusters = dict.fromkeys(w.cluster for w in self.fleet)
        envs = {w.cluster: w.environment for w in self.fleet}
        day0 = self.until - self.until % DAY_MS
        degraded = self._window(day0 - 6 * DAY_MS + 3 * HOUR_MS, 50, "prod-eu-1")
        stale_at = self.until - 20 * HOUR_MS  # the audit agent's last heartbeat
        agents = [(f"opa-admission-{c}", c, self.until) for c in clusters]
        if STALE_AGENT_CLUSTER in clusters and stale_at > self.start:
            agents.append((f"opa-audit-{STALE_AGENT_CLUSTER}", STALE_AGENT_CLUSTER, stale_at))
        for agent, cluster, until in agents:
            context = f"cluster:{cluster}"
            self.contexts.setdefault(context, _cluster_base(cluster, envs[cluster]))
            dropped, t = 0, self.start + rng.randint(0, HEARTBEAT_S * 1000)
            while t < until:
                bad = (degraded is not None and agent.startswith("opa-admission")
                       and degraded.covers(cluster, t)) or \
                    (agent.startswith("opa-audit") and t >= until - 90 * MINUTE_MS)
                if bad:
                    dropped += rng.randint(5, 40)
                self.emit(t, "agent.heartbeat", context, {
                    "agent.id": agent, "policy.engine": ENGINE,
                    "agent.status": "degraded" if bad else "healthy",
                    "agent.heartbeat.interval": float(HEARTBEAT_S),
                    "agent.dropped_events": dropped}, rng)
                t += HEARTBEAT_S * 1000 + rng.randint(-3000, 3000)

    def run(self) -> History:
        for w in self.fleet:
            self.workload(w)
        self.agents()
        self.events.sort(key=lambda e: e.time_ms)
        return History(self.start, self.until, self.events, self.contexts, dict(self.open),
                       self.rego.evaluations, Counter(e.kind for e in self.events),
                       self.storm, self.slow)


def generate(days: int = 30, seed: int = 7, *, until_ms: int,
             engine: PolicyEngine | None = None) -> History:
    """The demo's history over (`until_ms` - `days`, `until_ms`]: see the module docstring.
    `engine` (default: a new one) evaluates the Rego policies."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    return _Generator(days, seed, until_ms, engine).run()
