"""falcosidekick's webhook output on the collector (issue 13 item 2): one Falco event per POST
/falco, as falcosidekick's `webhook` output sends it; each alert a runtime policy.decision and
an opened policy.violation, Falco's own drop alerts an agent.heartbeat."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.builders.otlp import post, wait_rows

pytestmark = pytest.mark.integration

NOW_S = int(time.time()) - 60
STAMP = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW_S)) + ".746609046Z"
EVT_TIME = NOW_S * 10**9 + 746609046  # Falco's evt.time: nanoseconds, above 2^53


def falco_event(priority: str = "Critical", rule: str = "Terminal shell in container",
                **fields) -> dict:
    base = {"uuid": str(uuid.uuid4()),
            "output": f"{STAMP[11:29]}: {priority} A shell was spawned in a container with an "
                      "attached terminal (user=root user_loginuid=-1 k8s.ns=shop k8s.pod=web-7c9 "
                      "container=f8b7c4ba4e4c shell=bash parent=runc cmdline=bash)",
            "priority": priority, "rule": rule, "time": STAMP,
            "output_fields": {"container.id": "f8b7c4ba4e4c",
                              "container.image.repository": "docker.io/library/nginx",
                              "container.image.tag": "1.25.4", "evt.time": EVT_TIME,
                              "k8s.ns.name": "shop", "k8s.pod.name": "web-7c9",
                              "proc.cmdline": "bash", "proc.name": "bash", "proc.pid": 48213,
                              "proc.vpid": "1", "user.loginuid": -1, "user.name": "root"},
            "source": "syscall", "tags": ["container", "shell", "mitre_execution", "T1059"],
            "hostname": "ip-10-0-1-23"}
    base.update(fields)
    return base


def send(service, event, query: str = ""):
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    return post(service.http_port, "/falco" + query, body, "application/json",
                headers={"User-Agent": "Falcosidekick"})


PRIORITIES = [("Emergency", "critical", "deny"), ("Alert", "critical", "deny"),
              ("Critical", "critical", "deny"), ("Error", "high", "deny"),
              ("Warning", "medium", "deny"), ("Notice", "low", "warn"),
              ("Informational", "info", "warn"), ("Info", "info", "warn"),
              ("Debug", "info", "warn")]


def test_every_priority_maps_to_a_severity_a_decision_and_an_opened_violation(collector):
    sent = {}
    for priority, _, _ in PRIORITIES:
        event = falco_event(priority)
        status, _, reply = send(collector, event)
        assert status == 200, reply
        sent[event["uuid"]] = priority
    n = len(PRIORITIES)
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", n) == n
    assert wait_rows(collector, "SELECT count() FROM policy_events", n) == n
    decisions = {r[0]: r[1:] for r in collector.pipeline.client.query(
        "SELECT event_id, severity, outcome, engine, policy_id, rule, enforcement, namespace, "
        "resource_kind, resource_name, resource_id, actor FROM policy_decisions").result_rows}
    expected = {p: (s, o) for p, s, o in PRIORITIES}
    for uid, priority in sent.items():
        row = decisions[uid]
        assert row[:2] == expected[priority], priority
        assert row[2:] == ("falco", "falco.terminal-shell-in-container",
                           "Terminal shell in container", "audit", "shop", "Pod", "web-7c9",
                           "f8b7c4ba4e4c", "root")
    violations = collector.pipeline.client.query(
        "SELECT violation_id, violation_status, severity, image, event_kind, policy_id "
        "FROM policy_events").result_rows
    assert {v[0] for v in violations} == set(sent)
    assert {v[1] for v in violations} == {"opened"}
    assert {v[3:] for v in violations} == {("docker.io/library/nginx:1.25.4", "policy.violation",
                                            "falco.terminal-shell-in-container")}
    by_id = {v[0]: v[2] for v in violations}
    assert all(by_id[uid] == expected[p][0] for uid, p in sent.items())


def test_output_fields_keep_big_numbers_and_numbers_sent_as_strings(collector):
    event = falco_event(output_fields={"evt.time": EVT_TIME, "proc.vpid": "1",
                                       "fd.num": 2**63 + 7, "evt.arg.flags": "O_RDWR|O_CREAT",
                                       "policy.outcome": "allow", "team.name": "payments"})
    assert send(collector, event)[0] == 200
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 1) == 1
    outcome, team, attributes = collector.pipeline.client.query(
        "SELECT outcome, team, attributes FROM policy_decisions").result_rows[0]
    assert attributes["evt.time"] == str(EVT_TIME)
    assert attributes["fd.num"] == str(2**63 + 7)
    assert attributes["proc.vpid"] == "1"
    assert attributes["falco.tags"] == "container,shell,mitre_execution,T1059"
    assert attributes["host.name"] == "ip-10-0-1-23"
    # a custom field naming the context sets it; one naming a verdict cannot override Falco's
    assert (outcome, team, attributes["falco.policy.outcome"]) == ("deny", "payments", "allow")


def test_a_drop_alert_is_an_agent_heartbeat_not_a_finding(collector):
    drop = falco_event("Critical", "Falco internal: syscall event drop", source="internal",
                       output="Falco internal: syscall event drop. 1534 system calls dropped "
                              "in last second.",
                       output_fields={"ebpf_enabled": "1", "n_drops": "1534",
                                      "n_drops_buffer_total": "1534", "n_drops_bug": "0",
                                      "n_drops_pf": "0", "n_drops_scratch_map": "0",
                                      "n_evts": "94321"}, tags=None)
    assert send(collector, drop)[0] == 200
    assert wait_rows(collector, "SELECT count() FROM policy_events", 1) == 1
    row = collector.pipeline.client.query(
        "SELECT event_kind, agent_id, agent_status, dropped_events, engine FROM policy_events"
    ).result_rows[0]
    assert row == ("agent.heartbeat", "ip-10-0-1-23", "degraded", 1534, "falco")
    assert int(collector.pipeline.client.command("SELECT count() FROM policy_decisions")) == 0


def test_a_response_engine_is_named_on_the_webhook_address(collector):
    assert send(collector, falco_event(), "?enforcement=enforce")[0] == 200
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 1) == 1
    assert collector.pipeline.client.command(
        "SELECT any(enforcement) FROM policy_decisions") == "enforce"


@pytest.mark.parametrize("body,fragment", [
    pytest.param(b"{not json", "not JSON: Expecting property name", id="not JSON"),
    pytest.param(b'["an array"]', "not a JSON object", id="an array, not one event"),
    pytest.param(json.dumps({**falco_event(), "priority": "Severe"}).encode(),
                 "'priority' is 'Severe'; expected one of", id="an unknown priority"),
    pytest.param(json.dumps({k: v for k, v in falco_event().items() if k != "rule"}).encode(),
                 "no 'rule'", id="no rule"),
    pytest.param(json.dumps({**falco_event(), "time": "17 May 2024"}).encode(),
                 "'time': '17 May 2024' is not an RFC 3339 time", id="a time that is not RFC 3339"),
    pytest.param(json.dumps({**falco_event(), "output_fields": [1]}).encode(),
                 "'output_fields' is [1]", id="output_fields that are not an object"),
    pytest.param(json.dumps({**falco_event(), "time": "1960-01-01T00:00:00Z"}).encode(),
                 "outside 1970-01-01..2099-12-31", id="a time storage cannot keep"),
    pytest.param(json.dumps({**falco_event(), "source": "internal", "hostname": ""}).encode(),
                 "needs 'hostname'", id="an internal event naming no host"),
])
def test_a_malformed_event_is_refused_with_a_message_naming_what_was_wrong(collector, body,
                                                                           fragment):
    status, _, reply = send(collector, body)
    assert status == 400
    assert fragment in json.loads(reply)["error"]
    assert send(collector, b"{}", "?enforcement=block")[0] == 400
    time.sleep(0.2)
    assert int(collector.pipeline.client.command("SELECT count() FROM policy_decisions")) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_a_body_a_web_page_could_post_without_a_preflight_is_refused(collector, content_type):
    """A page in the operator's browser can post these content types to loopback without a
    CORS preflight; the native endpoints take only application/json (which needs one that is
    never granted), so nothing it sends is stored."""
    body = json.dumps(falco_event()).encode()
    for path in ("/falco", "/opa/logs"):
        status, _, reply = post(collector.http_port, path, body, content_type)
        assert status == 415
        assert "application/json" in json.loads(reply)["error"]
    stored = collector.pipeline.client.command(
        "SELECT count() FROM policy_decisions") + collector.pipeline.client.command(
        "SELECT count() FROM policy_events")
    assert int(stored) == 0
