"""Gatekeeper imported three ways: constraint status diffed with its cap (totalViolations
above the listed violations: an unlisted violation is never remediated), audit log lines and
export messages of one audit run stored once, severity from the constraint's label."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from collector.normalize import Normalizer
from importers import run
from importers.documents import Document
from importers.facts import SourceFacts
from importers.parsing import Options
from importers.snapshots import SnapshotStore
from policyscope.cli.imports import DirectDelivery
from tests.builders.reports import constraint, report_list, violation

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0, second=0)
LIMITS = "container <nginx> has no resource limits"


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def do_import(client, database, text: str, when: datetime, name: str = "constraints.json"):
    return run.run("gatekeeper", Document(name, text),
                   Options(SourceFacts(cluster="prod"), ms(when)),
                   DirectDelivery(client, database, Normalizer()), SnapshotStore(client, database))


def status(when: datetime, listed: list[str], total: int) -> str:
    return json.dumps(report_list([constraint(
        "container-must-have-limits", "K8sContainerLimits",
        [violation("shop", pod, LIMITS) for pod in listed], total=total, audited=when,
        labels={"policyscope.io/severity": "high"})]))


def open_violations(client) -> dict[str, str]:
    rows = client.query(
        "SELECT resource_name, argMax(violation_status, event_time) FROM policy_events "
        "WHERE event_kind = 'policy.violation' GROUP BY resource_name").result_rows
    return dict(rows)


def test_a_capped_status_never_remediates_what_it_does_not_list(chdb_client, database):
    t0, t1, t2 = NOW - timedelta(hours=3), NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    first = do_import(chdb_client, database, status(t0, ["web-1", "web-2"], total=30), t0)
    # the next audit lists two others of the same 30: web-1 and web-2 are merely unlisted
    second = do_import(chdb_client, database, status(t1, ["web-3", "web-4"], total=30), t1)
    assert (first.opened, first.capped) == (2, 1)
    assert (second.opened, second.remediated, second.unlisted) == (2, 0, 2)
    assert open_violations(chdb_client) == {f"web-{i}": "opened" for i in (1, 2, 3, 4)}
    # a complete status (all 3 listed) remediates web-2 and web-4 at its audit time
    third = do_import(chdb_client, database,
                      status(t2, ["web-1", "web-3", "web-5"], total=3), t2)
    assert (third.opened, third.remediated, third.unlisted) == (1, 2, 0)
    assert open_violations(chdb_client) == {"web-1": "opened", "web-2": "remediated",
                                            "web-3": "opened", "web-4": "remediated",
                                            "web-5": "opened"}
    assert chdb_client.query(
        "SELECT DISTINCT toUnixTimestamp64Milli(event_time), severity, cluster FROM "
        "policy_events WHERE violation_status = 'remediated'").result_rows == [
        (ms(t2), "high", "prod")]


def test_audit_lines_and_export_messages_of_one_run_are_stored_once(chdb_client, database):
    audit_id = (NOW - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        {"level": "info", "ts": (NOW - timedelta(minutes=30)).timestamp(), "logger": "controller",
         "msg": "auditing constraints and violations", "process": "audit",
         "audit_id": audit_id, "event_type": "audit_started"},
        {"level": "info", "ts": (NOW - timedelta(minutes=30)).timestamp() + 1.5,
         "logger": "controller", "msg": LIMITS, "process": "audit", "audit_id": audit_id,
         "details": {}, "event_type": "violation_audited",
         "constraint_group": "constraints.gatekeeper.sh", "constraint_api_version": "v1beta1",
         "constraint_kind": "K8sContainerLimits", "constraint_name": "container-must-have-limits",
         "constraint_namespace": "", "constraint_action": "dryrun",
         "constraint_annotations": {"severity": "low"}, "resource_group": "",
         "resource_api_version": "v1", "resource_kind": "Pod", "resource_namespace": "shop",
         "resource_name": "web-1", "resource_labels": {"app": "web"}},
    ]
    log = "\n".join(json.dumps(line) for line in lines) + "\n"
    export = json.dumps([{  # the export API's message for the same violation
        "id": audit_id, "details": {}, "eventType": "violation_audited",
        "group": "constraints.gatekeeper.sh", "version": "v1beta1",
        "kind": "K8sContainerLimits", "name": "container-must-have-limits", "namespace": "",
        "message": LIMITS, "enforcementAction": "dryrun",
        "constraintAnnotations": {"severity": "low"}, "resourceGroup": "",
        "resourceAPIVersion": "v1", "resourceKind": "Pod", "resourceNamespace": "shop",
        "resourceName": "web-1", "resourceLabels": {"app": "web"}}])

    from_log = do_import(chdb_client, database, log, NOW, "audit.log")
    from_export = do_import(chdb_client, database, export, NOW, "export.json")

    assert from_log.events == {"policy.decision": 1} and from_export.events == from_log.events
    assert from_log.skipped == {"log lines other than violation_audited": 1}
    assert chdb_client.query(
        "SELECT policy_id, rule, outcome, enforcement, severity, namespace, resource_name "
        "FROM policy_decisions").result_rows == [
        ("container-must-have-limits", "K8sContainerLimits", "deny", "dryrun", "low", "shop",
         "web-1")]


def test_a_constraint_the_audit_has_not_reached_is_skipped(chdb_client, database):
    pending = constraint("c", "K8sRequiredLabels", [], audited=NOW)
    del pending["status"]
    report = do_import(chdb_client, database, json.dumps(report_list([pending])), NOW)
    assert report.skipped == {"constraints not audited yet": 1} and report.sources == 0
