"""Demo traffic: real Rego outcomes, a deterministic fleet, and OTLP delivery checked by
in-test receivers (OTLP/HTTP protobuf with gzip, and OTLP/gRPC)."""
from __future__ import annotations

import copy
import gzip
import http.server
import random
import threading
import time
from concurrent import futures

import pytest

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from policyscope.demo import CATALOG, DemoTraffic, PolicyEngine
from policyscope.demo import workloads as wl

pytestmark = pytest.mark.unit

OUTCOMES = {"allow", "deny", "warn", "error"}
DECISION_ATTRS = {
    "policy.id", "policy.outcome", "policy.engine", "policy.version", "policy.rule",
    "policy.enforcement", "policy.severity", "policy.evaluation.duration",
    "policy.resource.kind", "policy.resource.name", "policy.resource.id", "team.name",
    "service.name", "deployment.environment.name", "k8s.cluster.name", "k8s.namespace.name",
    "enduser.id", "log.record.uid"}
EXPECTED_REASON = {
    wl.NON_ROOT: "must set securityContext.runAsNonRoot=true",
    wl.LATEST_TAG: "uses the mutable tag 'latest'",
    wl.LIMITS: "has no cpu limit",
    wl.REGISTRY: "is not from an allowed registry",
    wl.TEAM_LABEL: "missing required label team",
    wl.MAX_REPLICAS: "exceed the limit of 20",
}


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine()


def _deployment(**overrides) -> wl.Workload:
    base = dict(cluster="prod-eu-1", environment="production", namespace="payments",
                kind="Deployment", name="checkout-api", team="payments", service="checkout-api",
                uid="00000000-0000-4000-8000-000000000001", version="1.2.3", replicas=3,
                sidecar=True, has_sbom=True)
    return wl.Workload(**(base | overrides))


def _review(w: wl.Workload) -> dict:
    return wl.admission_review(w, random.Random(1), "alice@acme.example")


# ------------------------------------------------------------------ Rego policies
def test_compliant_workload_is_allowed_by_every_policy(engine):
    for kind in ("Deployment", "Pod"):
        evaluations = engine.evaluate_all(_review(_deployment(kind=kind)))
        assert {e.policy_id for e in evaluations} == {p.id for p in CATALOG if kind in p.kinds}
        assert [(e.policy_id, e.outcome) for e in evaluations if e.outcome != "allow"] == []
        assert all(e.duration > 0 for e in evaluations)


@pytest.mark.parametrize("policy_id", sorted(EXPECTED_REASON))
def test_each_policy_denies_its_violation_with_its_reason(engine, policy_id):
    review = _review(_deployment(flaws={policy_id}))
    by_id = {e.policy_id: e for e in engine.evaluate_all(review)}
    assert by_id[policy_id].outcome == "deny"
    assert EXPECTED_REASON[policy_id] in by_id[policy_id].reason
    others = {pid: e.outcome for pid, e in by_id.items() if pid != policy_id}
    assert set(others.values()) == {"allow"}, others


def test_handcrafted_pod_violating_everything(engine):
    review = {"request": {"kind": {"kind": "Pod"}, "operation": "CREATE", "object": {
        "metadata": {"name": "debug", "namespace": "default"},
        "spec": {"containers": [{"name": "shell", "image": "nginx",
                                 "securityContext": {"runAsUser": 0}}]}}}}
    by_id = {e.policy_id: e for e in engine.evaluate_all(review)}
    assert wl.MAX_REPLICAS not in by_id  # Deployments only
    assert {pid: e.outcome for pid, e in by_id.items()} == {pid: "deny" for pid in by_id}
    assert "image nginx has no tag" in by_id[wl.LATEST_TAG].reason
    assert "has no memory limit" in by_id[wl.LIMITS].reason
    assert "must not run as UID 0" in by_id[wl.NON_ROOT].reason
    assert "missing required label app.kubernetes.io/name" in by_id[wl.TEAM_LABEL].reason


def test_digest_pinned_image_and_numeric_override_are_allowed(engine):
    review = _review(_deployment(max_replicas_annotation="30"))
    review["request"]["object"]["spec"]["replicas"] = 25
    container = review["request"]["object"]["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "ghcr.io/acme/checkout-api@sha256:" + "ab" * 32
    assert engine.evaluate(wl.MAX_REPLICAS, review).outcome == "allow"
    assert engine.evaluate(wl.LATEST_TAG, review).outcome == "allow"
    review["request"]["object"]["spec"]["replicas"] = 31
    assert "exceed the limit of 30" in engine.evaluate(wl.MAX_REPLICAS, review).reason


def test_non_numeric_annotation_is_a_real_evaluation_error(engine):
    review = _review(_deployment(max_replicas_annotation="unlimited"))
    result = engine.evaluate(wl.MAX_REPLICAS, review)
    assert result.outcome == "error"
    assert "max_replicas" in result.reason and result.duration > 0
    # the engine still works afterwards, and other policies are unaffected
    assert engine.evaluate(wl.NON_ROOT, review).outcome == "allow"
    assert engine.evaluate(wl.MAX_REPLICAS, _review(_deployment())).outcome == "allow"


# ------------------------------------------------------------------ workload generator
def test_fleet_is_deterministic_and_covers_every_team_and_cluster():
    a, b = wl.generate_fleet(random.Random(7)), wl.generate_fleet(random.Random(7))
    assert a == b
    assert wl.generate_fleet(random.Random(8)) != a
    assert {(w.team, w.cluster) for w in a} == {(t, c) for t in wl.TEAMS for c in wl.CLUSTERS}
    assert {w.environment for w in a} == {"production", "staging"}
    flawed = [w for w in a if w.flaws]
    assert 0 < len(flawed) < len(a) / 2  # most compliant, some violating
    assert sum(w.max_replicas_annotation == "unlimited" for w in a) == 1
    assert any(not w.enforced for w in a) and any(w.kind == "Pod" for w in a)


def test_request_sequence_is_deterministic():
    def sequence(seed):
        rng = random.Random(seed)
        fleet = wl.generate_fleet(rng)
        out = []
        for _ in range(50):
            w = wl.pick_workload(fleet, rng)
            wl.evolve(w, rng)
            out.append(copy.deepcopy(wl.admission_review(w, rng, wl.pick_actor(w, rng))))
        return out
    assert sequence(3) == sequence(3)
    assert sequence(3) != sequence(4)


# ------------------------------------------------------------------ OTLP delivery
def _value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def _flatten(requests) -> list[tuple[str, dict]]:
    """(event kind, resource attrs overlaid by record attrs) for every record."""
    out = []
    for req in requests:
        for rl in req.resource_logs:
            res = {kv.key: _value(kv.value) for kv in rl.resource.attributes}
            for sl in rl.scope_logs:
                for rec in sl.log_records:
                    attrs = res | {kv.key: _value(kv.value) for kv in rec.attributes}
                    out.append((rec.event_name or attrs.get("event.name"), attrs))
    return out


@pytest.fixture
def http_receiver():
    received: list = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            req = logs_service_pb2.ExportLogsServiceRequest()
            req.ParseFromString(body)
            received.append((self.path, req))
            payload = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_emit_batch_delivers_exactly_n_decisions_over_http(http_receiver):
    endpoint, received = http_receiver
    traffic = DemoTraffic(endpoint, "http", seed=7)
    stats = traffic.emit_batch(200)
    assert stats.exported_ok and stats.records_failed == 0
    assert {path for path, _ in received} == {"/v1/logs"}
    records = _flatten(req for _, req in received)
    assert len(records) == stats.records_emitted == sum(stats.events.values())
    decisions = [a for kind, a in records if kind == "policy.decision"]
    assert len(decisions) == 200 == stats.decisions
    for attrs in decisions:
        missing = DECISION_ATTRS - attrs.keys()
        assert not missing, missing
        assert attrs["policy.outcome"] in OUTCOMES
        assert attrs["policy.enforcement"] in {"enforce", "audit", "dryrun", "warn"}
        assert isinstance(attrs["policy.evaluation.duration"], float)
        assert attrs["policy.evaluation.duration"] > 0
        if attrs["policy.outcome"] != "allow":
            assert attrs["policy.reason"]
    assert len({a["log.record.uid"] for _, a in records}) == len(records)
    assert {"allow", "deny"} <= {a["policy.outcome"] for a in decisions}
    kinds = {kind for kind, _ in records}
    assert {"workload.inventory", "deploy.gate", "agent.heartbeat", "sbom.generated"} <= kinds
    inventory = [a for kind, a in records if kind == "workload.inventory"]
    assert len(inventory) == len(traffic.fleet)
    assert all(isinstance(a["workload.enforced"], bool) and a["artifact.image"] for a in inventory)
    gates = [a for kind, a in records if kind == "deploy.gate"]
    assert {a["deploy.gate.outcome"] for a in gates} <= {"passed", "blocked", "overridden"}
    assert all("policy.id" in a for a in gates if a["deploy.gate.outcome"] != "passed")


def test_error_storm_turns_one_policy_into_errors(http_receiver):
    endpoint, received = http_receiver
    traffic = DemoTraffic(endpoint, "http", seed=11)
    traffic.inject_error_storm(wl.NON_ROOT, 60)
    assert traffic.emit_batch(120).exported_ok
    decisions = [a for k, a in _flatten(r for _, r in received) if k == "policy.decision"]
    storm = [a["policy.outcome"] for a in decisions if a["policy.id"] == wl.NON_ROOT]
    assert storm and set(storm) == {"error"}
    assert "allow" in {a["policy.outcome"] for a in decisions if a["policy.id"] != wl.NON_ROOT}
    with pytest.raises(KeyError):
        traffic.inject_error_storm("no.such-policy", 1)


def test_emit_batch_over_grpc():
    received = []

    class Servicer(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):  # noqa: N802
            received.append(request)
            return logs_service_pb2.ExportLogsServiceResponse()

    import grpc
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        stats = DemoTraffic(f"http://127.0.0.1:{port}", "grpc", seed=5).emit_batch(50)
    finally:
        server.stop(None)
    assert stats.exported_ok
    assert sum(k == "policy.decision" for k, _ in _flatten(received)) == 50


def test_unreachable_endpoint_reports_not_exported():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block exits
    stats = DemoTraffic(f"http://127.0.0.1:{port}", "http", export_timeout=1.0).emit_batch(10)
    assert stats.decisions == 10
    assert not stats.exported_ok and stats.records_failed == stats.records_emitted


def test_run_is_paced_and_stops_on_event(http_receiver):
    endpoint, _ = http_receiver
    traffic = DemoTraffic(endpoint, "http", rate=200.0, seed=9)
    started = time.monotonic()
    stats = traffic.run(duration=1.0)
    assert 0.9 <= time.monotonic() - started < 3.0
    assert 120 <= stats.decisions <= 230 and stats.exported_ok
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    stats = traffic.run(None, stop)
    assert time.monotonic() - started < 2.0 and stats.decisions > 0
    with pytest.raises(ValueError):
        traffic.run(None)
