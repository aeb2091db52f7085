"""conftest (`conftest test --output json`) imported as a deploy gate and decisions.

conftest is a Go binary, not on PyPI, so it is not run here: the documents below follow its
documented JSON output (docs/options.md "Output", output/result.go `CheckResult` / `Result`:
`filename`, `namespace`, `successes` as a count, `failures` / `warnings` / `exceptions` /
`skipped` lists of `{msg, loc, metadata, outputs}`)."""

from __future__ import annotations

import json

import pytest

from collector.normalize import Normalizer
from importers import run
from importers.documents import Document
from importers.errors import MalformedInput
from importers.facts import SourceFacts
from importers.parsing import Options
from policyscope.cli.imports import DirectDelivery

pytestmark = pytest.mark.integration

AT_MS = 1_780_000_000_000


def deployment_results() -> list[dict]:
    """Two manifests against the `main` and `kubernetes.security` namespaces."""
    return [
        {"filename": "deploy/web.yaml", "namespace": "main", "successes": 3,
         "failures": [{"msg": "Containers must not run as root in Deployment web",
                       "loc": {"file": "deploy/web.yaml", "line": 17},
                       "metadata": {"policy_id": "k8s.run-as-non-root", "severity": "high"}},
                      {"msg": "Deployment web must provide app/release labels for pod "
                              "selectors"}],
         "warnings": [{"msg": "Found deployment web but deployments are not allowed"}]},
        {"filename": "deploy/web.yaml", "namespace": "kubernetes.security", "successes": 1},
        {"filename": "deploy/api.yaml", "namespace": "main", "successes": 4,
         "exceptions": [{"msg": "data.main.exception[_][_] == \"run_as_root\""}],
         "skipped": [{"msg": "data.main.deny_latest_tag"}]},
    ]


def import_doc(client, database, results, run_id="pipeline-31"):
    options = Options(SourceFacts(run_id=run_id, team="shop"), AT_MS)
    return run.run("conftest", Document("conftest.json", json.dumps(results)), options,
                   DirectDelivery(client, database, Normalizer()), None)


def test_failures_deny_warnings_warn_and_each_success_is_an_allow(chdb_client, database):
    report = import_doc(chdb_client, database, deployment_results())

    assert report.events == {"policy.decision": 2 + 1 + 1 + 3 + 1 + 4, "deploy.gate": 1}
    assert report.skipped == {"skipped rules": 1}
    rows = chdb_client.query(
        "SELECT resource_name, policy_id, outcome, count() FROM policy_decisions "
        "GROUP BY ALL ORDER BY ALL").result_rows
    assert rows == [("deploy/api.yaml", "main", "allow", 5),  # 4 successes + the exception
                    ("deploy/web.yaml", "k8s.run-as-non-root", "deny", 1),
                    ("deploy/web.yaml", "kubernetes.security", "allow", 1),
                    ("deploy/web.yaml", "main", "allow", 3),
                    ("deploy/web.yaml", "main", "deny", 1),
                    ("deploy/web.yaml", "main", "warn", 1)]
    root = chdb_client.query(
        "SELECT severity, reason, resource_id, attributes['code.line.number'] FROM "
        "policy_decisions WHERE policy_id = 'k8s.run-as-non-root'").result_rows
    assert root == [("high", "Containers must not run as root in Deployment web",
                     "deploy/web.yaml:17", "17")]
    assert chdb_client.query(
        "SELECT deploy_id, gate_outcome, engine, policy_id, policy_severity FROM ("
        "SELECT deploy_id, gate_outcome, engine, policy_id, severity AS policy_severity "
        "FROM policy_events WHERE event_kind = 'deploy.gate')").result_rows == [
        ("pipeline-31", "blocked", "conftest", "k8s.run-as-non-root", "high")]


def test_only_warnings_pass_and_only_exceptions_override_the_gate(chdb_client, database):
    warned = [{"filename": "a.yaml", "namespace": "main", "successes": 2,
               "warnings": [{"msg": "image tag should be pinned"}]}]
    excepted = [{"filename": "b.yaml", "namespace": "main", "successes": 0,
                 "exceptions": [{"msg": "data.main.exception[_][_] == \"privileged\""}]}]
    import_doc(chdb_client, database, warned, run_id="r1")
    import_doc(chdb_client, database, excepted, run_id="r2")
    import_doc(chdb_client, database, [], run_id="r3")  # no files matched: nothing failed

    assert chdb_client.query(
        "SELECT deploy_id, gate_outcome FROM policy_events ORDER BY deploy_id").result_rows \
        == [("r1", "passed"), ("r2", "overridden"), ("r3", "passed")]
    assert chdb_client.query(
        "SELECT outcome, attributes['policy.exception'] FROM policy_decisions WHERE "
        "resource_name = 'b.yaml'").result_rows == [("allow", "true")]


def test_importing_the_same_output_again_stores_nothing_twice(chdb_client, database):
    import_doc(chdb_client, database, deployment_results())
    stored = chdb_client.command("SELECT count() FROM policy_decisions")
    import_doc(chdb_client, database, deployment_results())
    assert chdb_client.command("SELECT count() FROM policy_decisions") == stored == 12
    assert chdb_client.command("SELECT count() FROM policy_events") == 1


@pytest.mark.parametrize("results,position,expected", [
    pytest.param({"filename": "a.yaml"}, "$", "a conftest --output json list",
                 id="one result, not the list"),
    pytest.param([{"namespace": "main", "successes": 1}], "$[0].filename", "a string",
                 id="a result without its file"),
    pytest.param([{"filename": "a.yaml", "successes": "three"}], "$[0].successes",
                 "an integer", id="successes not a count"),
    pytest.param([{"filename": "a.yaml", "successes": -1}], "$[0].successes", "a count >= 0",
                 id="a negative count"),
    pytest.param([{"filename": "a.yaml", "failures": [{"metadata": {}}]}],
                 "$[0].failures[0].msg", "a string", id="a failure without msg"),
    pytest.param([{"filename": "a.yaml", "warnings": {"msg": "x"}}], "$[0].warnings",
                 "an array", id="warnings not a list"),
])
def test_malformed_output_is_refused_with_its_position_and_nothing_stored(
        chdb_client, database, results, position, expected):
    with pytest.raises(MalformedInput) as refused:
        import_doc(chdb_client, database, results)
    assert str(refused.value).startswith(f"conftest.json: at {position}: expected {expected}")
    assert chdb_client.command("SELECT (SELECT count() FROM policy_events) + "
                               "(SELECT count() FROM policy_decisions)") == 0
