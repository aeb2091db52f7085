"""The Debug page under AppTest, over decisions, events and a triage verdict of known times
in the last day: two decisions on resource `api` (a deny with a trace id, attributes and a
reason holding Markdown and HTML; an allow), one on `web`, 60 on `bulk` (for paging), a
violation, a drift and a deploy gate on `api`, a verdict on its deny, and an image's SBOM,
vulnerability and secret events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.builders.dashboards import (
    dataframe_after,
    figures,
    insert_decisions,
    insert_events,
    metrics,
    open_page,
    rerun,
    texts,
    traces,
)
from tests.builders.rows import dec, ev

pytestmark = pytest.mark.integration

P, Q = "k8s.require-non-root", "k8s.allowed-registries"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REASON = "**not bold** <script>alert(1)</script> [link](http://evil.example)"
M = timedelta(minutes=1)


@pytest.fixture
def seeded(chdb_client, dashboard_db):
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    insert_decisions(chdb_client, [
        dec(now - 30 * M, "deny", event_id="d1", policy_id=P, resource_kind="Deployment",
            resource_name="api", actor="alice", trace_id=TRACE, reason=REASON,
            latency_seconds=0.002, attributes={"k8s.pod.uid": "uid-1", "note": "<b>x</b>"}),
        dec(now - 20 * M, "allow", event_id="d2", policy_id=P, resource_kind="Deployment",
            resource_name="api", actor="bob", latency_seconds=0.002),
        dec(now - 10 * M, "deny", event_id="d3", policy_id=Q, team="search",
            resource_name="web", latency_seconds=0.05),
        *[dec(now - 40 * M - k * timedelta(seconds=1), "allow", event_id=f"b{k:02d}",
              resource_name="bulk") for k in range(60)],
    ])
    insert_events(chdb_client, [
        ev("policy.violation", now - 25 * M, event_id="e-v", policy_id=P, violation_id="v1",
           violation_status="opened", resource_name="api", reason="runs as root"),
        ev("drift.detected", now - 15 * M, event_id="e-d", resource_name="api",
           drift_field="spec.replicas"),
        ev("deploy.gate", now - 5 * M, event_id="e-g", policy_id=P, deploy_id="dep-1",
           gate_outcome="blocked", resource_name="api"),
        ev("sbom.generated", now - 180 * M, event_id="i-s", image="reg/app:1",
           sbom_format="CycloneDX", sbom_components=42),
        ev("vuln.detected", now - 120 * M, event_id="i-v", image="reg/app:1",
           vulnerability_id="CVE-2026-0001", package_name="openssl", package_version="3.0.1",
           package_fixed_version="3.0.2", severity="high"),
        ev("secret.detected", now - 60 * M, event_id="i-x", image="reg/app:1",
           secret_rule="aws-access-key", secret_fingerprint="fp-1"),
    ])
    chdb_client.insert("triage_history", [[
        "entry-1", "action-1", "decision", "d1", now - 30 * M, P, "Deployment", "api", "",
        "false_positive", "expected in canary", "hand", "ana", now - M]], column_names=[
        "entry_id", "action_id", "subject_kind", "subject_id", "subject_time", "policy_id",
        "resource_kind", "resource_name", "previous_verdict", "verdict", "reason", "source",
        "analyst", "triaged_at"])
    return dashboard_db


def test_searching_a_resource_lists_its_decisions_newest_first_and_opens_a_record(seeded):
    at = open_page("debug.py", {"field": "resource", "q": "api"})

    found = dataframe_after(at, "Decision log")
    assert found[["event_id", "outcome", "actor"]].to_dict("records") == [
        {"event_id": "d2", "outcome": "allow", "actor": "bob"},
        {"event_id": "d1", "outcome": "deny", "actor": "alice"}]
    at.selectbox(key="debug_event").select("d1")
    rerun(at)
    record = dict(dataframe_after(at, "Record").itertuples(index=False))
    assert record["event_id"] == "d1" and record["trace_id"] == TRACE
    assert record["reason"] == REASON  # as text, verbatim
    assert dataframe_after(at, "Extra attributes").to_dict("records") == [
        {"key": "k8s.pod.uid", "value": "uid-1"}, {"key": "note", "value": "<b>x</b>"}]
    assert at.query_params["event"] == "d1"
    assert not any("<script>" in t for t in texts(at))


def test_a_record_is_read_at_its_rows_time_when_that_is_known(seeded, chdb_client):
    """The page hands `record` the search row's time: the read is narrowed to it (a wrong
    time finds nothing), a naive time is UTC, and without a time the range is searched."""
    from dashboards.queries import debug

    end = datetime.now(timezone.utc) + M
    start = end - timedelta(days=30)
    rows, _ = debug.search(chdb_client, "event id", "d1", start, end, {})
    at = rows["event_time"].iloc[0]
    for when in (at, None, at.to_pydatetime().astimezone(timezone.utc).replace(tzinfo=None)):
        shown, extra = debug.record(chdb_client, "d1", start, end, when)
        assert dict(shown.itertuples(index=False))["event_id"] == "d1"
        assert len(extra) == 2
    shown, extra = debug.record(chdb_client, "d1", start, end, at + timedelta(seconds=1))
    assert shown.empty and extra.empty


@pytest.mark.parametrize(("field", "value", "expected"), [
    pytest.param("trace id", TRACE.upper(), ["d1"], id="a trace id matches in any case"),
    pytest.param("actor", "alice", ["d1"], id="an actor"),
    pytest.param("policy", Q, ["d3"], id="a policy id"),
    pytest.param("event id", "d2", ["d2"], id="an event id"),
    pytest.param("workload", "checkout", ["d3", "d2", "d1"], id="a workload is a service"),
])
def test_each_search_field_finds_its_decisions(seeded, field, value, expected):
    at = open_page("debug.py", {"field": field, "q": value})

    assert at.selectbox(key="debug_field").value == field
    assert dataframe_after(at, "Decision log")["event_id"].tolist()[:3] == expected


def test_results_come_fifty_to_a_page(seeded):
    at = open_page("debug.py", {"q": "bulk"})

    assert len(dataframe_after(at, "Decision log")) == 50
    assert "decisions 1–50, more on the next page" in " ".join(texts(at))
    at.number_input(key="debug_page").set_value(2)
    rerun(at)
    second = dataframe_after(at, "Decision log")
    assert second["event_id"].tolist() == [f"b{k:02d}" for k in range(50, 60)]


def test_the_latency_distribution_of_a_policy(seeded):
    at = open_page("debug.py", {"latency_by": "policy", "latency_value": P})

    # two decisions at 2 ms, in the bucket (1.5 ms, 2 ms]: p50 is halfway, log-linearly
    shown = metrics(at)
    assert shown["p50"] == f"{1.5 * (2 / 1.5) ** 0.5:.2f} ms"
    (histogram,) = [f for f in figures(at) if f["layout"]["title"]["text"].startswith("Latency")]
    assert traces(histogram)["decisions"] == {"1.5 ms – 2 ms": 2}


def test_the_audit_trail_of_a_resource_in_time_order(seeded):
    at = open_page("debug.py", {"resource": "api"})

    trail = dataframe_after(at, "Audit trail of a resource")
    assert trail[["kind", "what", "id"]].to_dict("records") == [
        {"kind": "policy.decision", "what": "deny", "id": "d1"},
        {"kind": "policy.violation", "what": "opened", "id": "e-v"},
        {"kind": "policy.decision", "what": "allow", "id": "d2"},
        {"kind": "drift.detected", "what": "spec.replicas", "id": "e-d"},
        {"kind": "deploy.gate", "what": "blocked", "id": "e-g"},
        {"kind": "triage verdict", "what": "(none) → false_positive by ana", "id": "d1"},
    ]


def test_an_images_sbom_vulnerability_and_secret_events(seeded):
    at = open_page("debug.py", {"image": "reg/app:1"})

    events = dataframe_after(at, "Image: SBOM, vulnerabilities and secrets")
    assert events[["event_kind", "vulnerability_id", "sbom_format", "secret_rule"]].to_dict(
        "records") == [
        {"event_kind": "sbom.generated", "vulnerability_id": "", "sbom_format": "CycloneDX",
         "secret_rule": ""},
        {"event_kind": "vuln.detected", "vulnerability_id": "CVE-2026-0001",
         "sbom_format": "", "secret_rule": ""},
        {"event_kind": "secret.detected", "vulnerability_id": "", "sbom_format": "",
         "secret_rule": "aws-access-key"}]


def test_nothing_entered_says_what_each_panel_needs(dashboard_db):
    at = open_page("debug.py")

    shown = [i.value for i in at.info]
    assert shown[0].startswith("Enter a resource name or id")
    assert shown[1].startswith("No decision with a latency")
    assert shown[2].startswith("Enter a resource to list")
    assert shown[3].startswith("Enter an image")
    assert len(at.dataframe) == 0 and figures(at) == []


def test_a_search_without_matches_says_so(seeded):
    at = open_page("debug.py", {"field": "actor", "q": "nobody"})

    assert any(t.startswith("No decision in this range has actor = nobody") for t in texts(at))
