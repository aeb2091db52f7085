"""OPA's decision-log service API on the collector (issue 13 item 1): the documented upload
contract -- gzip'd JSON arrays POSTed to /opa/logs and /opa/logs/<partition>, any 2xx
accepted, anything else retried forever -- with payloads shaped like OPA's EventV1
(v1/plugins/logs/plugin.go): path or query, error without result, undefined decisions,
erased / masked, nd_builtin_cache, labels, bundles and revision, metrics timers, req_id,
trace and span ids, numbers above 2^53."""

from __future__ import annotations

import gzip
import json
import time
import uuid

import pytest

from collector.deadletters import QUARANTINE, DeadLetterFolder, folder_of
from tests.builders.otlp import post, wait_rows

pytestmark = pytest.mark.integration

TOKEN = "opa-upload-token-5f2c9a"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
BIG = 2**64 - 1  # OPA's req_id is a uint64
NOW_S = int(time.time()) - 60  # within the tables' retention
STAMP = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW_S)) + ".746609046Z"  # Go's nanos
LABELS = {"id": "8d1b7a52-opa-agent", "version": "1.4.2", "environment": "production",
          "cluster": "prod-eu-1"}


def event(path: str = "kubernetes/admission", **fields) -> dict:
    """One decision-log event as OPA's plugin encodes it."""
    base = {"labels": LABELS, "decision_id": str(uuid.uuid4()), "path": path,
            "input": {"request": {"uid": "705ab4f5", "kind": {"kind": "Pod"},
                                  "name": "web-7c9", "namespace": "shop",
                                  "userInfo": {"username": "system:serviceaccount:ci:deploy"}}},
            "result": {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "response": {"uid": "705ab4f5", "allowed": True}},
            "bundles": {"authz": {"revision": "a1b2c3"}},
            "timestamp": STAMP,
            "metrics": {"counter_server_query_cache_hit": 1, "timer_rego_input_parse_ns": 48000,
                        "timer_rego_query_eval_ns": 250000, "timer_server_handler_ns": 610000},
            "req_id": 7}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def upload(service, events: list, partition: str = "", headers: dict | None = None,
           raw: bytes | None = None):
    body = gzip.compress(raw if raw is not None else json.dumps(events).encode())
    path = "/opa/logs" + (f"/{partition}" if partition else "")
    return post(service.http_port, path, body, "application/json",
                headers={"Content-Encoding": "gzip", "User-Agent": "Open Policy Agent/1.4.2",
                         **(headers or {})})


def rows(service, where: str = "1") -> dict[str, dict]:
    result = service.pipeline.client.query(
        "SELECT event_id, outcome, policy_id, policy_version, reason, engine, enforcement, "
        "resource_kind, resource_name, namespace, actor, environment, cluster, "
        "latency_seconds, trace_id, span_id, toUnixTimestamp64Milli(event_time), attributes "
        f"FROM policy_decisions WHERE {where}")
    return {r[0]: dict(zip(result.column_names[1:], r[1:])) for r in result.result_rows}


def test_a_gzip_batch_of_every_event_shape_lands_mapped(collector):
    admission_deny = event(result={"response": {"allowed": False, "status": {
        "message": "container web must set runAsNonRoot"}}}, trace_id=TRACE, span_id=SPAN,
        req_id=BIG, nd_builtin_cache={"time.now_ns": {"[]": 1715959916746609046},
                                      "http.send": {"[{}]": {"status_code": 200}}})
    events = [
        admission_deny,
        event(),  # an admission allow
        event(path="httpapi/authz/allow", result=True, input={"user": "bob"}, bundles=None,
              revision="legacy-rev-9"),
        event(path="app/rbac", result={"allowed": False, "reason": "role viewer cannot write"}),
        event(path="terraform/deny", result=["aws_s3_bucket.logs has no encryption"],
              metrics={"timer_server_handler_ns": 1200000}),
        event(path=None, query="data.example.allow = true", result=[{}]),
        event(path="kubernetes/admission", result=None, error={
            "code": "eval_conflict_error", "message": "complete rules must not produce "
            "multiple outputs", "location": {"file": "policy.rego", "row": 12, "col": 1}}),
        event(path="envoy/authz/allow", result=None),  # undefined
        event(bundles={"authz": {"revision": "a1b2c3"}, "lib": {"revision": "l9"}}),
    ]
    status, _, reply = upload(collector, events)
    assert status == 200, reply
    assert json.loads(reply)["accepted"] == len(events)
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", len(events)) == \
        len(events)
    got = rows(collector)
    ids = [e["decision_id"] for e in events]
    deny = got[ids[0]]
    assert (deny["outcome"], deny["policy_id"], deny["policy_version"], deny["reason"],
            deny["engine"]) == ("deny", "kubernetes.admission", "a1b2c3",
                                "container web must set runAsNonRoot", "opa")
    assert (deny["resource_kind"], deny["resource_name"], deny["namespace"], deny["actor"]) == \
        ("Pod", "web-7c9", "shop", "system:serviceaccount:ci:deploy")
    assert (deny["environment"], deny["cluster"], deny["trace_id"], deny["span_id"]) == \
        ("production", "prod-eu-1", TRACE, SPAN)
    assert deny["latency_seconds"] == pytest.approx(250e-6)  # the eval timer, not the handler
    assert deny["toUnixTimestamp64Milli(event_time)"] == NOW_S * 1000 + 746
    attributes = deny["attributes"]
    assert attributes["opa.req_id"] == str(BIG)  # exact: 2^64-1 is not a float64
    assert attributes["agent.id"] == LABELS["id"] and attributes["opa.version"] == "1.4.2"
    assert attributes["opa.nd_builtins"] == "http.send,time.now_ns"
    assert "1715959916746609046" not in json.dumps(attributes)  # builtin values never kept
    assert got[ids[1]]["outcome"] == "allow"
    legacy = got[ids[2]]
    assert (legacy["outcome"], legacy["policy_id"], legacy["policy_version"]) == \
        ("allow", "httpapi.authz.allow", "legacy-rev-9")
    assert (got[ids[3]]["outcome"], got[ids[3]]["reason"]) == ("deny", "role viewer cannot write")
    terraform = got[ids[4]]
    assert (terraform["outcome"], terraform["reason"]) == \
        ("deny", "aws_s3_bucket.logs has no encryption")
    assert terraform["latency_seconds"] == pytest.approx(1.2e-3)  # handler timer as fallback
    query = got[ids[5]]
    assert (query["outcome"], query["policy_id"], query["attributes"]["opa.query"]) == \
        ("allow", "data.example.allow = true", "data.example.allow = true")
    error = got[ids[6]]
    assert (error["outcome"], error["reason"], error["attributes"]["opa.error.code"]) == \
        ("error", "complete rules must not produce multiple outputs", "eval_conflict_error")
    undefined = got[ids[7]]
    assert (undefined["outcome"], undefined["reason"]) == ("deny", "decision undefined (no "
                                                                   "result)")
    assert undefined["attributes"]["opa.decision.undefined"] == "true"
    assert got[ids[8]]["policy_version"] == "authz@a1b2c3,lib@l9"


def test_a_partition_is_kept_and_a_batch_resent_after_a_lost_2xx_is_stored_once(collector):
    events = [event(path=f"p{i}/allow", result=i % 2 == 0) for i in range(50)]
    assert upload(collector, events, partition="prod-eu-1")[0] == 200
    sql = "SELECT count() FROM policy_decisions"
    assert wait_rows(collector, sql, 50) == 50
    for _ in range(2):  # OPA saw no 2xx (the connection dropped): it sends the batch again
        assert upload(collector, events, partition="prod-eu-1")[0] == 200
    assert wait_rows(collector, sql, 51) == 50  # waits: any duplicate would land meanwhile
    partitions = collector.pipeline.client.query(
        "SELECT attributes['opa.partition'], count() FROM policy_decisions GROUP BY 1"
    ).result_rows
    assert partitions == [("prod-eu-1", 50)]
    assert upload(collector, [event(path="nested/partition", result=True)],
                  partition="team/a")[0] == 200  # a partition name with a slash still lands


def test_a_malformed_event_is_quarantined_and_counted_while_the_rest_land(collector):
    good = [event(path="ok/one", result=True), event(path="ok/two", result=False)]
    bad = [
        42,
        event(path=None),  # neither path nor query
        event(path="bad/time", timestamp="yesterday at noon"),
        event(path="risk/score", result={"score": 0.93},
              input={"card": "4111111111111111", "password": "pa55word-xyz"},
              erased=["/input/card"]),
        event(path="bad/trace", trace_id="not-hex!"),
    ]
    status, _, reply = upload(collector, [good[0], *bad, good[1]])
    assert status == 200, reply  # OPA would retry a non-2xx forever
    assert json.loads(reply)["rejected"] == len(bad)
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 2) == 2
    stored = rows(collector)
    assert sorted(stored) == sorted(e["decision_id"] for e in good)
    status, _, metrics = post(collector.http_port, "/metrics", b"", method="GET")
    text = metrics.decode()
    for reason in ("not_an_object", "missing_path", "invalid_timestamp", "unmapped_result",
                   "invalid_trace_id"):
        assert f'policyscope_records_opa_rejected_total{{reason="{reason}"}} 1.0' in text
    folder = DeadLetterFolder(folder_of(collector.config.collector.spool_dir))
    letters = [e for e in folder.entries() if QUARANTINE in e.tables]
    assert len(letters) == 1 and letters[0].rows == len(bad)
    assert letters[0].reasons == {"not_an_object": 1, "missing_path": 1, "invalid_timestamp": 1,
                                  "unmapped_result": 1, "invalid_trace_id": 1}
    records = [r for _, t in folder.frames(letters[0]) for r in t.to_pylist()]
    by_reason = {r["reason"]: r for r in records}
    assert "yesterday at noon" in by_reason["invalid_timestamp"]["message"]
    risky = by_reason["unmapped_result"]["record"]
    assert "risk/score" in risky and "4111111111111111" not in risky  # erased stays erased
    assert "pa55word-xyz" not in risky  # a secret-looking key is redacted in quarantine too
    assert all(r["source"] == "opa" for r in records)


def test_erased_and_masked_fields_are_never_stored(collectors):
    secret_user, secret_reason = "alice@corp.example", "token sk-live-0f9e8d7c6b5a"
    service = collectors(opa_decision_mappings=[{
        "path": "payments/authz", "allowed": "/result/allow", "reason": "/result/why",
        "attributes": {"policy.resource.name": "/input/account",
                       "payment.card": "/input/card"}}])
    events = [
        # OPA erased /input/card and masked the user: the input still holds them (a sender
        # that did not apply its own mask): they must not be stored either way
        event(path="payments/authz", result={"allow": False, "why": secret_reason},
              input={"account": "acct-1", "card": "5500-0000-0000-0004",
                     "request": {"userInfo": {"username": secret_user}}},
              erased=["/input/card"], masked=["/input/request/userInfo/username",
                                              "/result/why"]),
        event(path="kubernetes/admission", masked=["/input/request/userInfo/username"],
              input={"request": {"kind": {"kind": "Pod"}, "name": "api",
                                 "userInfo": {"username": "**REDACTED**"}}}),
    ]
    assert upload(service, events)[0] == 200
    assert wait_rows(service, "SELECT count() FROM policy_decisions", 2) == 2
    everything = service.pipeline.client.query(
        "SELECT * FROM policy_decisions").result_rows
    dump = json.dumps(everything, default=str)
    for secret in (secret_user, secret_reason, "5500-0000-0000-0004", "**REDACTED**"):
        assert secret not in dump
    got = rows(service)
    first = got[events[0]["decision_id"]]
    assert (first["outcome"], first["resource_name"], first["actor"], first["reason"]) == \
        ("deny", "acct-1", "", "")
    assert first["attributes"]["opa.erased"] == "/input/card"
    assert first["attributes"]["opa.masked"] == "/input/request/userInfo/username,/result/why"
    assert "payment.card" not in first["attributes"]


def test_numbers_above_2_53_are_kept_exact(collectors):
    service = collectors(opa_decision_mappings=[{
        "path": "ledger/allow", "allowed": "/result",
        "attributes": {"ledger.entry": "/input/entry_id", "ledger.amount": "/input/amount"}}])
    entry = 2**63 + 12345  # 9223372036854788153: a float64 would make it ...788000
    huge = 10**30 + 1
    body = ('[{"decision_id":"big-1","path":"ledger/allow","result":true,'
            f'"input":{{"entry_id":{entry},"amount":{huge}}},"req_id":{BIG},'
            f'"timestamp":"{STAMP}"}}]').encode()
    assert upload(service, [], raw=body)[0] == 200
    assert wait_rows(service, "SELECT count() FROM policy_decisions", 1) == 1
    attributes = rows(service)["big-1"]["attributes"]
    assert attributes["ledger.entry"] == str(entry)
    assert attributes["ledger.amount"] == str(huge)
    assert attributes["opa.req_id"] == str(BIG)


def test_the_bearer_token_of_opas_service_credentials_is_required(collectors):
    service = collectors(auth_tokens=[TOKEN])
    batch = [event(path="authz/allow", result=True)]
    status, _, body = upload(service, batch)
    assert status == 401 and "bearer token" in body.decode()
    assert upload(service, batch, headers={"Authorization": "Bearer wrong"})[0] == 401
    # credentials.bearer.token with OPA's default scheme
    status, _, _ = upload(service, batch, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    assert wait_rows(service, "SELECT count() FROM policy_decisions", 1) == 1


@pytest.mark.parametrize("body,encoding,fragment", [
    pytest.param(b'[{"path":"a"}]', "gzip", "not valid gzip", id="a body that is not gzip"),
    pytest.param(gzip.compress(b'[{"path": "a",'), "gzip", "not JSON: Expecting",
                 id="truncated JSON names where"),
    pytest.param(gzip.compress(b'{"path": "a"}'), "gzip", "JSON array of events",
                 id="an object instead of an array"),
    pytest.param(gzip.compress(b'[1]')[:-6], "gzip", "truncated", id="a truncated gzip body"),
    pytest.param(b'\xff\xfe[]', "", "not UTF-8", id="bytes that are not UTF-8"),
])
def test_only_an_undecodable_body_is_refused_with_a_400_naming_it(collector, body, encoding,
                                                                   fragment):
    headers = {"Content-Encoding": encoding} if encoding else {}
    status, _, reply = post(collector.http_port, "/opa/logs", body, "application/json",
                            headers=headers)
    assert status == 400
    assert fragment in json.loads(reply)["error"]


def test_a_gzip_body_without_its_header_and_an_empty_batch_are_accepted(collector):
    body = gzip.compress(json.dumps([event(path="x/allow", result=True)]).encode())
    assert post(collector.http_port, "/opa/logs", body, "application/json")[0] == 200
    assert upload(collector, [])[0] == 200
    assert post(collector.http_port, "/opa/logs", b"", "application/json",
                method="GET")[0] == 405
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 1) == 1
