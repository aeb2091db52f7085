"""OTLP/HTTP -> collector -> chDB -> rollups -> `jobs.run_incremental` -> `sli_values`.

Events carry fixed times (the evaluation point is 2026-11-02 12:00 UTC), are sent as OTLP
protobuf to the running collector, and the SLIs stored by the batch run are compared with
values worked out by hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from opentelemetry.proto.logs.v1 import logs_pb2

from metrics import jobs
from tests.builders.otlp import logs_request, post, wait_rows
from tests.builders.rows import exactly, record

pytestmark = pytest.mark.integration

UTC = timezone.utc
AT = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def T(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=UTC)


def decision(when: datetime, uid: str, outcome: str, latency: float | None = None,
             team: str = "payments") -> logs_pb2.LogRecord:
    attrs = {"policy.id": "k8s.require-non-root", "policy.outcome": outcome, "team.name": team}
    if latency is not None:
        attrs["policy.evaluation.duration"] = latency
    return record("policy.decision", when, uid, attrs)


def send(collector, *records: logs_pb2.LogRecord) -> None:
    status, _, reply = post(collector.http_port, "/v1/logs",
                            logs_request(*records).SerializeToString())
    assert status == 200, reply


def stored(client, at: datetime, window: str, dimension: str = "", value: str = "") -> dict:
    """sli -> (good, total, value) stored for one point, window and dimension value."""
    rows = client.query(
        "SELECT sli, good, total, value FROM sli_values FINAL WHERE at = {at:DateTime('UTC')} "
        "AND window = {window:String} AND dimension = {dimension:String} "
        "AND dimension_value = {value:String}",
        parameters={"at": at, "window": window, "dimension": dimension, "value": value}
    ).result_rows
    return {r[0]: tuple(r[1:]) for r in rows}


def test_events_sent_to_the_collector_end_up_in_sli_values(collector):
    send(collector,
         decision(T("11-02 11:00"), "d1", "allow", 0.001),   # exactly the 1h start: in
         decision(T("11-02 11:20"), "d2", "deny", 0.001, team="identity"),
         decision(T("11-02 11:40"), "d3", "allow", 0.1),
         decision(T("11-02 11:50"), "d4", "error", 0.1),
         decision(T("11-02 11:55"), "d5", "warn"),           # no latency reported
         decision(T("11-02 12:00"), "d6", "error", 0.1),     # exactly at: out
         record("deploy.gate", T("11-02 11:45"), "g1",
                {"deploy.id": "deploy-1", "deploy.gate.outcome": "passed"}),
         record("deploy.gate", T("11-02 11:50"), "g2",
                {"deploy.id": "deploy-2", "deploy.gate.outcome": "blocked"}),
         record("drift.detected", T("11-02 11:20"), "r1", {"drift.field": "replicas"}),
         record("workload.inventory", T("11-02 11:40"), "w1",
                {"workload.id": "w1", "workload.enforced": True, "artifact.image": "img-a"}),
         record("workload.inventory", T("11-02 11:41"), "w2",
                {"workload.id": "w2", "workload.enforced": False, "artifact.image": "img-b"}),
         record("sbom.generated", T("11-02 11:00"), "s1", {"artifact.image": "img-a"}),
         record("policy.violation", T("11-02 11:00"), "v1o",
                {"policy.id": "p1", "policy.violation.id": "v1",
                 "policy.violation.status": "opened"}),
         record("policy.violation", T("11-02 11:30"), "v1r",
                {"policy.id": "p1", "policy.violation.id": "v1",
                 "policy.violation.status": "remediated", "policy.remediation.kind": "auto"}),
         record("secret.detected", T("11-02 11:10"), "x1", {"secret.fingerprint": "fp-1"}),
         record("agent.heartbeat", T("11-02 11:59:30"), "a1",
                {"agent.id": "ag1", "agent.status": "healthy",
                 "agent.heartbeat.interval": 30.0}))
    client = collector.pipeline.client
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 6) == 6
    assert wait_rows(collector, "SELECT count() FROM policy_events", 10) == 10

    report = jobs.run_incremental(client, AT)

    assert report.points == 1 and report.rows > 0
    got = stored(client, AT, "1h")
    # decisions d1-d5: one error -> 4 of 5; latencies 1 ms, 1 ms, 100 ms, 100 ms
    assert {s: got[s] for s in ["M1", "L_p50", "L_p99", "L_under", "M6", "M5", "M2", "M9",
                                "M3_mean", "M10", "M8"]} == {
        "M1": exactly((4, 5, 0.8)),
        "L_p50": exactly((None, 4, 0.001)),                    # rank 2: top of (0.8, 1] ms
        "L_p99": exactly((None, 4, 0.08 * 1.25 ** 0.98)),      # 98% into (80, 100] ms
        "L_under": exactly((4, 4, 1.0)),
        "M6": exactly((1, 2, 0.5)),
        "M5": exactly((1, 1 / 168, 168.0)),
        "M2": exactly((1, 2, 0.5)),
        "M9": exactly((1, 2, 0.5)),
        "M3_mean": exactly((None, 1, 1800.0)),
        "M10": exactly((1, 1 / 168, 168.0)),
        "M8": exactly((1, 1, 1.0)),
    }
    assert stored(client, AT, "1h", "team", "identity")["M1"] == exactly((1, 1, 1.0))
    assert stored(client, AT, "5m")["M1"] == exactly((1, 1, 1.0))  # d5 only


def test_late_events_through_the_collector_are_folded_in_by_the_next_run(collector):
    client = collector.pipeline.client
    send(collector, decision(T("11-02 11:50"), "d1", "allow"),
         decision(T("11-02 11:51"), "d2", "allow"))
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 2) == 2
    jobs.run_incremental(client, AT)
    assert stored(client, AT, "1h")["M1"] == exactly((2, 2, 1.0))

    send(collector, decision(T("11-02 11:55"), "d3", "error"),
         decision(T("11-02 11:56"), "d4", "error"),
         record("deploy.gate", T("11-02 11:58"), "g1",
                {"deploy.id": "deploy-1", "deploy.gate.outcome": "blocked"}))
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 4) == 4
    assert wait_rows(collector, "SELECT count() FROM policy_events", 1) == 1
    report = jobs.run_incremental(client, AT + timedelta(minutes=1))

    assert report.late_points >= 1
    at_first = stored(client, AT, "1h")
    assert (at_first["M1"], at_first["M6"]) == (exactly((2, 4, 0.5)), exactly((1, 1, 1.0)))
    # the next point's 5m window [11:56, 12:01) holds d4 only
    assert stored(client, AT + timedelta(minutes=1), "5m")["M1"] == exactly((0, 1, 0.0))
