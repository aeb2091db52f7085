"""Secrets never stored, by value too: a request full of secrets, sent to a running collector
with a normalizer worker process, leaves no trace of them in its spool files (read while the
rows wait there) nor in the stored rows, and the text around them stays."""

from __future__ import annotations

import pytest

from collector.redaction import DEFAULT_VALUE_PATTERNS, REDACTED
from collector.service import CollectorService
from tests.builders.otlp import kv, post, wait_rows
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

pytestmark = pytest.mark.integration

AWS = "AKIAIOSFODNN7EXAMPLE"
GITHUB = "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"
GITLAB = "glpat-Xy9abcdefghij0123456789"
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKl"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
       "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
BASIC = "dXNlcjpCYXNpY1B3LTQ0MjA="
PEM_BODY = "MIIEowIBAAKCAQEAx3Yq0pZkz9XrlqfRzA0Q7K1PemBody"
CUSTOM = "ACME-SECRET-777"  # only the configured extra pattern knows it: it reached the worker
SECRETS = [AWS, GITHUB, GITLAB, SLACK, JWT, BASIC, PEM_BODY, CUSTOM, "UrlPw-5521",
           "ResPw-9931", "KeyPw-1234", "RepoPw-8080", "JsonPw-6060"]
CANARY = "canary.policy-7f3a"  # plain text beside the secrets: must be in the spool and rows


def _request(now_ns: int) -> logs_service_pb2.ExportLogsServiceRequest:
    def record(kind: str, attrs: dict) -> logs_pb2.LogRecord:
        return logs_pb2.LogRecord(time_unix_nano=now_ns, event_name=kind,
                                  attributes=[kv(k, v) for k, v in attrs.items()])

    resource = resource_pb2.Resource(attributes=[
        kv("service.name", "billing password=ResPw-9931"),
        kv("k8s.cluster.name", f"eu-1 {CUSTOM}")])
    decision = record("policy.decision", {
        "policy.id": CANARY, "policy.outcome": "deny",
        "policy.reason": f"login to postgres://admin:UrlPw-5521@db:5432 failed; key {AWS}",
        "policy.resource.name": f"job-{GITHUB}", "enduser.id": f"Bearer {JWT}",
        "http.request.header.x-auth": f"Basic {BASIC}",
        "note": f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
        "db.password": "KeyPw-1234", "payload": '{"user": "bob", "password": "JsonPw-6060"}',
        "log.record.uid": f"uid-{SLACK}"})
    violation = record("policy.violation", {
        "policy.id": CANARY, "policy.violation.id": f"v-{GITLAB}",
        "policy.violation.status": "opened",
        "vcs.repository.url.full": "https://ci:RepoPw-8080@git.example.com/org/repo.git"})
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
        resource=resource, scope_logs=[logs_pb2.ScopeLogs(log_records=[decision, violation])])])


def test_secrets_reach_neither_the_spool_nor_storage(chdb_client, database, config_factory,
                                                     tmp_path):
    import time

    config = config_factory(normalize_workers=1, batch_max_delay=5.0,
                            redact_values=[*DEFAULT_VALUE_PATTERNS, r"ACME-SECRET-\d+"])
    service = CollectorService(config, client=chdb_client, database=database)
    service.start()
    try:
        body = _request(time.time_ns()).SerializeToString()
        status, _, reply = post(service.http_port, "/v1/logs", body)
        assert status == 200, reply
        # Acknowledged = fsync'd in the spool; the writer waits batch_max_delay to take it.
        on_disk = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
        assert CANARY.encode() in on_disk, "the rows were not in the spool files read"
        assert [s for s in SECRETS if s.encode() in on_disk] == []
        assert wait_rows(service, "SELECT count() FROM policy_decisions", 1) == 1
        assert wait_rows(service, "SELECT count() FROM policy_events", 1) == 1
        client = service.pipeline.client
        decision = client.query(
            "SELECT reason, resource_name, actor, service, cluster, event_id, attributes "
            "FROM policy_decisions").named_results().__next__()
        events = client.query("SELECT * FROM policy_events").result_rows
    finally:
        service.shutdown()
    assert decision == {
        "reason": f"login to postgres://admin:{REDACTED}@db:5432 failed; key {REDACTED}",
        "resource_name": f"job-{REDACTED}", "actor": f"Bearer {REDACTED}",
        "service": f"billing password={REDACTED}", "cluster": f"eu-1 {REDACTED}",
        "event_id": f"uid-{REDACTED}",
        "attributes": {
            "http.request.header.x-auth": f"Basic {REDACTED}",
            "note": f"-----BEGIN RSA PRIVATE KEY-----{REDACTED}-----END RSA PRIVATE KEY-----",
            "db.password": REDACTED, "payload": f'{{"user": "bob", "password": "{REDACTED}"}}'}}
    stored = repr(events)
    assert CANARY in stored and f"https://ci:{REDACTED}@git.example.com/org/repo.git" in stored
    assert [s for s in SECRETS if s in stored] == []
