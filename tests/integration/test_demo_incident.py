"""The demo's scripted incident end to end in process: demo traffic over OTLP/gRPC into a real
collector, the rollout of k8s.require-resource-limits 2.0.0 after a short delay, then an SLI
batch and alert evaluations with the example SLOs. The rollout's denies land on the victim
service only, in one triage group, under the new version beside the old; the policy's deny
rate jumps; and `deploy-block-rate` pages for that service -- which it did not before.

The traffic is sent in two batches of a fixed number of decisions around the rollout, so
with its seed the split, and every count below, is the same on every run."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

import triage
from metrics import jobs
from metrics.windows import floor_minute
from policyscope.demo import workloads as wl
from policyscope.demo.incident import IncidentScript, PolicyRollout
from policyscope.demo.traffic import DemoTraffic
from slo.service import EXAMPLE_SLOS, alert_evaluator
from tests.builders.otlp import wait_rows

pytestmark = pytest.mark.integration

BEFORE, AFTER = 600, 2400  # decisions sent before and after the rollout


def _deny_rates(client, service: str | None = None) -> dict[str, tuple[int, int]]:
    """policy version -> (denies, decisions) of the rolled-out policy (on one service)."""
    rows = client.query(
        "SELECT policy_version, countIf(outcome = 'deny'), count() FROM policy_decisions "
        "WHERE policy_id = {policy:String} AND ({service:String} = '' OR service = "
        "{service:String}) GROUP BY policy_version",
        parameters={"policy": wl.LIMITS, "service": service or ""}).result_rows
    return {version: (denies, total) for version, denies, total in rows}


def _pages(client) -> dict[str, str]:
    """service -> state of each deploy-block-rate page alert."""
    rows = client.query("SELECT dimensions, state FROM alerts FINAL WHERE slo = "
                        "'deploy-block-rate' AND severity = 'page'").result_rows
    return {dims.get("service", ""): state for dims, state in rows}


def test_the_rollout_denies_the_victim_and_pages(collectors, config_factory, tmp_path):
    service = collectors()
    client = service.pipeline.client
    rollout = PolicyRollout.default()
    traffic = DemoTraffic(f"http://127.0.0.1:{service.grpc_port}", "grpc", seed=7)
    stop = threading.Event()
    script = IncidentScript(traffic, rollout, delay=0.3, duration=0, stop=stop)
    try:
        first = traffic.emit_batch(BEFORE)
        script.start()
        assert script.began.wait(30), "the rollout did not happen"
        second = traffic.emit_batch(AFTER)
    finally:
        stop.set()
        script.join(10)
    assert first.exported_ok and second.exported_ok
    sent = first.decisions + second.decisions
    assert wait_rows(service, "SELECT count() FROM policy_decisions", sent, 60) == sent
    gates = first.gates.total() + second.gates.total()
    assert wait_rows(service, "SELECT count() FROM policy_events WHERE event_kind = "
                     "'deploy.gate'", gates, 60) == gates

    # the victim: always allowed by 1.0.3, always denied by 2.0.0, with one reason
    victim = _deny_rates(client, rollout.victim)
    assert victim["1.0.3"][0] == 0 < victim["1.0.3"][1]
    assert victim["2.0.0"][0] == victim["2.0.0"][1] > 10
    reasons = client.query(
        "SELECT DISTINCT reason FROM policy_decisions WHERE policy_version = '2.0.0' AND "
        "service = {victim:String}", parameters={"victim": rollout.victim}).result_rows
    assert len(reasons) == 1 and "Guaranteed QoS" in reasons[0][0]
    # nobody else: the other workloads' outcomes under 2.0.0 are 1.0.3's reasons only
    others = client.query(
        "SELECT DISTINCT reason FROM policy_decisions WHERE policy_version = '2.0.0' AND "
        "outcome = 'deny' AND service != {victim:String}",
        parameters={"victim": rollout.victim}).result_rows
    assert all("Guaranteed QoS" not in r[0] for r in others)
    # the policy's deny rate jumps with the rollout. Its other denies are 1.0.3's (checked
    # above), so without the rollout the same decisions would have had those only: the jump
    # over them is the victim's share, measured on the decisions stored
    rates = _deny_rates(client)
    assert set(rates) == {"1.0.3", "2.0.0"}  # both versions there to compare
    denies, total = rates["2.0.0"]
    without = (denies - victim["2.0.0"][0]) / total
    assert denies / total - without > 0.04, (denies, total, victim)

    # the triage queue: the new denies are one group
    now = datetime.now(timezone.utc)
    page = triage.queue(client, now - timedelta(hours=1), now + timedelta(minutes=1),
                        triage.Filters(policy=wl.LIMITS, kind="decision"), now=now)
    groups = [g for g in page.groups if g.fingerprint.resource_name == rollout.victim]
    assert len(groups) == 1 and groups[0].decisions == victim["2.0.0"][0]

    # a batch, then the example SLOs' evaluation: no page before, one after `for: 2m`
    config = config_factory(slo_dir=str(tmp_path / "no-slos-here"))
    evaluator = alert_evaluator(config, client, demo=True)
    assert evaluator is not None and evaluator.silence_dir.parent == EXAMPLE_SLOS
    at = floor_minute(now) + timedelta(minutes=1)
    report = jobs.run_incremental(client, at, prepare=triage.apply_rules)
    assert report.points > 0 and report.prepare_error is None
    evaluator.run(at)
    assert _pages(client).get(rollout.victim) == "pending"
    evaluator.run(at + timedelta(minutes=2))
    assert _pages(client)[rollout.victim] == "firing"
    fired = client.query(
        "SELECT long_window, short_window, burn_long, burn_short, factor FROM alerts FINAL "
        "WHERE slo = 'deploy-block-rate' AND severity = 'page' AND "
        "dimensions['service'] = {victim:String}",
        parameters={"victim": rollout.victim}).result_rows[0]
    long_window, short_window, burn_long, burn_short, factor = fired
    assert (long_window, short_window) in (("1h", "5m"), ("6h", "30m"))
    assert burn_long >= factor and burn_short >= factor


def test_the_victim_was_clean_before_the_rollout(collectors, config_factory, tmp_path):
    """The same traffic without the rollout: the victim's deploys pass, nothing pages for it."""
    service = collectors()
    client = service.pipeline.client
    traffic = DemoTraffic(f"http://127.0.0.1:{service.grpc_port}", "grpc", seed=7)
    stats = traffic.emit_batch(BEFORE + AFTER)
    assert wait_rows(service, "SELECT count() FROM policy_decisions", stats.decisions, 60) \
        == stats.decisions
    gates = stats.gates.total()
    assert wait_rows(service, "SELECT count() FROM policy_events WHERE event_kind = "
                     "'deploy.gate'", gates, 60) == gates
    victim = PolicyRollout.default().victim
    blocked = client.query(
        "SELECT countIf(gate_outcome != 'passed'), count() FROM policy_events WHERE "
        "event_kind = 'deploy.gate' AND service = {victim:String}",
        parameters={"victim": victim}).result_rows[0]
    assert blocked[0] == 0 < blocked[1]
    evaluator = alert_evaluator(config_factory(slo_dir=str(tmp_path / "none")), client,
                                demo=True)
    at = floor_minute(datetime.now(timezone.utc)) + timedelta(minutes=1)
    jobs.run_incremental(client, at, prepare=triage.apply_rules)
    evaluator.run(at)
    evaluator.run(at + timedelta(minutes=2))
    assert victim not in _pages(client)
