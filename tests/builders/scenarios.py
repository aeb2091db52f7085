"""The hand-built event set of each SLI family (the worked examples of
tests/integration/test_sli_values.py): fixed times around Monday 2026-11-02 12:00 UTC and one
`build_<family>(client)` per family that inserts its events into the client's database."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.builders.rows import dec, ev, insert_alerts, insert_decisions, insert_events, insert_verdicts

UTC = timezone.utc


def T(text: str) -> datetime:
    """'11-02 11:55' or '11-02 11:54:59.999' in 2026, UTC."""
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=UTC)


AT = T("11-02 12:00")
LATER = T("11-02 15:00")  # three hours on: the short windows there hold nothing
DEC1 = T("12-01 00:00")  # the calendar month is empty (zero length) at midnight of the 1st


def build_decisions(client) -> None:
    insert_decisions(client, [
        dec(T("11-02 11:55"), "allow"),                        # exactly the 5m start: in
        dec(T("11-02 12:00"), "error"),                        # exactly at: out
        dec(T("11-02 11:54:59.999"), "error", team="identity"),
        dec(T("11-02 11:40"), "deny"),
        dec(T("11-02 11:40"), "error"),
        dec(T("11-02 11:10"), "warn", team="identity"),
        dec(T("11-02 10:30"), "error"),
        dec(T("11-01 00:00"), "allow", team="identity"),       # exactly the month start: in
        dec(T("10-31 23:59:59.999"), "error", team="identity"),
    ])


def build_latency(client) -> None:
    insert_decisions(client, [
        *[dec(T("11-02 11:05"), latency_seconds=0.001) for _ in range(50)],
        *[dec(T("11-02 11:10"), latency_seconds=0.01) for _ in range(45)],
        *[dec(T("11-02 11:15"), latency_seconds=0.1) for _ in range(3)],
        *[dec(T("11-02 11:20")) for _ in range(3)],  # no latency reported
        dec(T("11-02 11:40"), latency_seconds=1.0, policy_id="slow"),
        dec(T("11-02 11:57"), latency_seconds=0.25, policy_id="slow"),
        dec(T("11-01 06:30"), latency_seconds=150.0),  # beyond the last bound (100 s)
    ])


def build_gates(client) -> None:
    gate = "deploy.gate"
    insert_events(client, [
        ev(gate, T("11-02 11:55"), deploy_id="g1", gate_outcome="passed"),
        ev(gate, T("11-02 12:00"), deploy_id="g2", gate_outcome="blocked", policy_id="p-block"),
        ev(gate, T("11-02 11:50"), deploy_id="g3", gate_outcome="blocked", policy_id="p-block"),
        ev(gate, T("11-02 11:30"), deploy_id="g4", gate_outcome="overridden",
           policy_id="p-block", team="identity"),
        ev(gate, T("11-02 11:20"), deploy_id="g5", gate_outcome="passed", team="identity"),
        ev(gate, T("11-02 10:00"), deploy_id="g6", gate_outcome="blocked", policy_id="p-sbom",
           team="identity"),
        ev(gate, T("11-02 11:54:59.999"), deploy_id="g7", gate_outcome="blocked",
           policy_id="p-block"),
    ])


def build_coverage(client) -> None:
    inv, sbom = "workload.inventory", "sbom.generated"
    insert_events(client, [
        ev(inv, T("11-02 11:10"), workload_id="w1", workload_enforced=True, image="img-a"),
        ev(inv, T("11-02 11:58"), workload_id="w1", workload_enforced=False, image="img-a"),
        ev(inv, T("11-02 11:20"), workload_id="w2", workload_enforced=True, image="img-b"),
        ev(inv, T("11-02 11:30"), workload_id="w3", image="img-a", team="identity"),
        ev(inv, T("11-02 11:55"), workload_id="w4", workload_enforced=True, team="identity"),
        ev(inv, T("11-02 12:00"), workload_id="w5", workload_enforced=True, image="img-c"),
        ev(sbom, T("10-30 12:00"), image="img-a"),
        ev(sbom, T("11-02 12:00"), image="img-b"),  # exactly at: not before the point
        ev(sbom, T("11-02 11:00"), image="img-c"),
    ])


def build_remediation(client) -> None:
    v = "policy.violation"

    def viol(vid, status, when, kind="", team="payments"):
        return ev(v, when, violation_id=vid, violation_status=status, remediation_kind=kind,
                  policy_id="k8s.require-non-root", team=team)

    insert_events(client, [
        viol("v1", "opened", T("11-02 09:00")), viol("v1", "opened", T("11-02 09:30")),
        viol("v1", "remediated", T("11-02 11:00"), "auto"),                      # 7200 s
        viol("v2", "opened", T("11-02 10:00")),
        viol("v2", "remediated", T("11-02 11:30"), "manual"),                    # 5400 s
        viol("v3", "opened", T("11-02 11:10"), team="identity"),
        viol("v3", "remediated", T("11-02 11:40"), "auto", team="identity"),     # 1800 s
        viol("v4", "opened", T("11-01 11:50"), team="identity"),
        viol("v4", "remediated", T("11-02 11:50"), "manual", team="identity"),   # 86400 s
        viol("v5", "opened", T("11-02 11:20")),                                  # stays open
        viol("v6", "opened", T("11-02 07:00")), viol("v6", "suppressed", T("11-02 08:00")),
        viol("v7", "opened", T("11-02 09:00"), team="identity"),
        viol("v7", "remediated", T("11-02 12:00"), "manual", team="identity"),   # at: out
        viol("v8", "opened", T("11-02 12:00")),
        viol("v9", "opened", T("11-02 10:50"), team="identity"),
        viol("v9", "updated", T("11-02 11:05"), team="identity"),
        viol("v9", "remediated", T("11-02 11:56"), "auto", team="identity"),     # 3960 s
    ])


def build_false_positives(client) -> None:
    insert_decisions(client, [
        *[dec(T(f"11-02 {hhmm}"), "deny") for hhmm in ("11:10", "11:20", "11:30", "11:45",
                                                       "11:56")],
        dec(T("11-02 11:20"), "deny", team="identity"),
        dec(T("11-02 11:50"), "warn"),  # a warn is triage work too
        dec(T("11-02 11:25"), "allow"), dec(T("11-02 11:26"), "allow", team="identity"),
    ])
    insert_verdicts(client, [
        {"subject_id": "d1", "subject_time": T("11-02 11:50"), "verdict": "false_positive",
         "triaged_at": T("11-02 12:30")},
        {"subject_id": "d2", "subject_time": T("11-02 11:40"), "verdict": "false_positive",
         "triaged_at": T("11-02 12:10")},
        {"subject_id": "d2", "subject_time": T("11-02 11:40"), "verdict": "true_positive",
         "triaged_at": T("11-02 12:40")},  # re-triaged: the later verdict replaces the first
        {"subject_id": "d3", "subject_time": T("11-02 11:20"), "verdict": "false_positive",
         "team": "identity", "triaged_at": T("11-02 12:30")},
        {"subject_id": "x1", "subject_kind": "violation", "subject_time": T("11-02 11:30"),
         "verdict": "true_positive", "triaged_at": T("11-02 12:30")},
        {"subject_id": "d4", "subject_time": T("11-02 12:00"), "verdict": "false_positive",
         "triaged_at": T("11-02 12:30")},
        {"subject_id": "d5", "subject_time": T("11-01 10:00"), "verdict": "true_positive",
         "team": "identity", "triaged_at": T("11-02 12:30")},
        # given by a sticky rule: counts in M4 and again, apart, in M4_propagated
        {"subject_id": "p1", "subject_time": T("11-02 11:35"), "verdict": "false_positive",
         "source": "rule", "rule_id": "r1", "triaged_at": T("11-02 11:40")},
        # benign until just after `at`: triaged; benign until `at` exactly: expired, untriaged
        {"subject_id": "b1", "subject_time": T("11-02 11:15"), "verdict": "benign",
         "expires_at": T("11-02 12:00:00.001"), "triaged_at": T("11-02 11:20")},
        {"subject_id": "b2", "subject_time": T("11-02 11:25"), "verdict": "benign",
         "expires_at": AT, "triaged_at": T("11-02 11:30")},
        # a first label undone: "no verdict" is the latest, untriaged
        {"subject_id": "u1", "subject_time": T("11-02 11:05"), "verdict": "false_positive",
         "triaged_at": T("11-02 11:10")},
        {"subject_id": "u1", "subject_time": T("11-02 11:05"), "verdict": "",
         "triaged_at": T("11-02 11:11")},
    ])


def build_rates(client) -> None:
    drift, secret = "drift.detected", "secret.detected"
    insert_events(client, [
        ev(drift, T("11-02 11:59:59.999")),
        ev(drift, T("11-02 11:30"), team="identity"),
        ev(drift, T("11-02 11:00")),                      # exactly the 1h start: in
        ev(drift, T("11-02 12:00")),                      # exactly at: out
        ev(drift, T("11-02 10:15")),                      # the hour before the 1h window
        ev(drift, T("11-01 20:00"), team="identity"),
        ev(drift, T("10-31 18:00")),                      # the day before the 1d window
        ev(drift, T("11-01 00:00")),                      # exactly the month start: in
        ev(drift, T("10-30 13:00"), team="identity"),     # only in the 36 h before the month
        ev(secret, T("11-02 11:10"), secret_fingerprint="fp-1"),
        ev(secret, T("11-02 11:40"), secret_fingerprint="fp-1"),  # the same secret again
        ev(secret, T("11-02 11:50"), secret_fingerprint="fp-2", team="identity"),
        ev(secret, T("11-02 12:00"), secret_fingerprint="fp-3"),
        ev(secret, T("11-02 11:00"), secret_fingerprint="fp-4"),
        ev(secret, T("11-01 13:00"), secret_fingerprint="fp-5", team="identity"),
        ev(secret, T("11-02 11:20"), secret_fingerprint="fp-6"),  # one secret, two teams' repos
        ev(secret, T("11-02 11:45"), secret_fingerprint="fp-6", team="identity"),
    ])


def build_agents(client) -> None:
    hb = "agent.heartbeat"

    def beat(agent, when, status, interval=None, engine="kyverno", team="identity"):
        return ev(hb, when, agent_id=agent, agent_status=status,
                  heartbeat_interval_seconds=interval, engine=engine, team=team)

    insert_events(client, [
        beat("ag1", T("11-02 11:30"), "degraded", 30.0, "falco", "payments"),
        beat("ag1", T("11-02 11:59:10"), "healthy", 30.0, "falco", "payments"),  # 50 s <= 60
        beat("ag2", T("11-02 11:50"), "healthy"),              # 600 s > 2 x 60 s default
        beat("ag3", T("11-02 11:59:50"), "degraded"),
        beat("ag4", T("11-02 11:59:30"), "healthy", 10.0),     # 30 s > 2 x 10 s
        beat("ag5", T("11-02 11:58"), ""),                     # no status, 120 s = 2 x 60 s
        beat("ag6", T("11-02 12:00"), "healthy"),              # at: out
        beat("ag7", T("11-02 11:55"), "healthy", 60.0),        # 300 s > 120 s
    ])


def build_alerts(client) -> None:
    insert_alerts(client, [
        {"alert_id": "a1", "at": T("11-02 11:50")},
        {"alert_id": "a1", "at": T("11-02 11:55")},  # fires again: still one alert
        {"alert_id": "a1", "state": "resolved", "at": T("11-02 11:57")},
        {"alert_id": "a2", "severity": "ticket", "slo": "admission-latency", "team": "identity",
         "at": T("11-02 11:40")},
        {"alert_id": "a3", "severity": "ticket", "at": T("11-02 11:00")},
        {"alert_id": "a4", "state": "resolved", "at": T("11-02 11:30")},
        {"alert_id": "a5", "at": T("11-02 12:00")},
        {"alert_id": "a6", "at": T("11-02 10:30")},
    ])


SCENARIOS = {
    "decisions": (build_decisions, [AT, LATER, DEC1], ["5m", "30m", "1h", "6h", "7d", "month"],
                  {}),
    # every window of this set starts mid-hour, the earliest (5m) included
    "decisions, 5m only": (build_decisions, [AT], ["5m"], {}),
    "latency": (build_latency, [AT, T("11-01 07:00")], ["5m", "30m", "1h"], {}),
    "latency at 10 ms": (build_latency, [AT], ["1h"], {"latency_threshold": 0.01}),
    "gates": (build_gates, [AT, LATER], ["5m", "1h", "6h"], {}),
    "gates, 30m only": (build_gates, [AT], ["30m"], {}),
    "coverage": (build_coverage, [AT, T("11-02 11:15"), LATER], ["5m", "30m", "1h", "6h"], {}),
    "remediation": (build_remediation, [AT, LATER, T("11-01 06:00")], ["5m", "30m", "1h"], {}),
    "false positives": (build_false_positives, [AT], ["5m", "30m", "1h", "month"], {}),
    "rates": (build_rates, [AT, T("11-02 11:12"), LATER, DEC1], ["5m", "1h", "1d", "month"],
              {}),
    "agents": (build_agents, [AT, T("11-02 11:31"), LATER], ["5m", "1h"], {}),
    "alerts": (build_alerts, [AT, LATER], ["5m", "1h", "6h"], {}),
}
