"""The demo's scripted incident: a policy rollout that starts denying a legitimate workload.

A few minutes into `policyscope up --demo` (`demo_incident_delay`), version 2.0.0 of
`k8s.require-resource-limits` rolls out to every cluster (the Rego of
`policies/require_resource_limits.v2.rego`, evaluated by regopy like every other decision). It
adds a Guaranteed-QoS rule for services it lists as latency-critical, and the list names
fraud-scorer, which runs Burstable on purpose. From then on every fraud-scorer rollout gets a
deny with one reason (one fingerprint, so one triage group); in production, where the policy
enforces, its deploy gates block, and the example SLO `deploy-block-rate` (by service) pages
for service=fraud-scorer: its 6h/30m pair (6x) fires within minutes (staging, where the
policy audits, still passes, so its block rate stays under the 72 % the 1h/5m pair needs).
fraud-scorer is the victim because it is clean in every cluster of the demo fleet: nothing
else blocks its deploys, so the page is the rollout's. Decisions carry `policy.version` 2.0.0
beside the 1.0.3 of before, so the tuning page can set the versions side by side. After
`demo_incident_duration` the rollout is rolled back (0 keeps it).

    incident = PolicyRollout.default()
    script = IncidentScript(traffic, incident, delay=180, duration=1800, stop=stop)
    script.start()   # before traffic.run: the new engine is compiled here, in this thread

The rollout swaps the traffic's `PolicyEngine` (one attribute, read once per rollout): the
new engine is built when the script is, so nothing compiles Rego beside a running evaluation.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

from . import workloads as wl
from .engine import CATALOG, PolicyEngine, load_sources, policies_dir
from .traffic import DemoTraffic

log = logging.getLogger(__name__)

POLICY = wl.LIMITS
VERSION = "2.0.0"
SOURCE = "require_resource_limits.v2.rego"
VICTIM = "fraud-scorer"  # the service 2.0.0 wrongly lists as latency-critical


@dataclass(frozen=True)
class PolicyRollout:
    """A new version of one catalog policy: its id, version (in every environment) and the
    file of its Rego source in the demo's policies directory."""

    policy_id: str
    version: str
    source_file: str
    victim: str

    @classmethod
    def default(cls) -> PolicyRollout:
        return cls(POLICY, VERSION, SOURCE, VICTIM)

    def engine(self) -> PolicyEngine:
        """An engine over the catalog with this version in place of the current one."""
        catalog = tuple(replace(p, version=self.version, staging_version=self.version)
                        if p.id == self.policy_id else p for p in CATALOG)
        spec = next(p for p in catalog if p.id == self.policy_id)
        sources = load_sources()
        sources[spec.file] = (policies_dir() / self.source_file).read_text()
        return PolicyEngine(catalog=catalog, sources=sources)


class IncidentScript(threading.Thread):
    """Rolls `rollout` out into `traffic` after `delay` seconds and back after `duration`
    more (0: never), unless `stop` is set first. `started_at` / `rolled_back_at` are the
    wall-clock times (epoch seconds) the swaps happened."""

    def __init__(self, traffic: DemoTraffic, rollout: PolicyRollout, *, delay: float,
                 duration: float, stop: threading.Event):
        super().__init__(name="demo-incident", daemon=True)
        self.traffic, self.rollout = traffic, rollout
        self.delay, self.duration, self.stop = delay, duration, stop
        self.previous = traffic.engine
        self.rolled_out = rollout.engine()  # compiled now, in the caller's thread
        self.started_at: float | None = None
        self.rolled_back_at: float | None = None
        self.began = threading.Event()

    def run(self) -> None:
        if self.stop.wait(self.delay):
            return
        old = self.previous.spec(self.rollout.policy_id)
        self.traffic.engine = self.rolled_out
        self.started_at = time.time()
        self.began.set()
        log.warning("demo incident: %s %s rolled out (was %s) to every cluster; it denies "
                    "the legitimate %s deploys (Guaranteed QoS wrongly required): watch the "
                    "deny rate, the deploy-block-rate page, the triage queue and the tuning "
                    "page", self.rollout.policy_id, self.rollout.version, old.version,
                    self.rollout.victim)
        if self.duration <= 0 or self.stop.wait(self.duration):
            return
        self.traffic.engine = self.previous
        self.rolled_back_at = time.time()
        log.warning("demo incident: %s rolled back to %s after %.0f s",
                    self.rollout.policy_id, old.version, self.duration)
