"""bandit run for real (`bandit -f sarif`) on tests/data/bandit -- `subprocess.call(...,
shell=True)`, `yaml.load`, `import subprocess` -- and its SARIF imported: rule ids,
severities, outcomes and locations stored, one blocked gate. SARIF that is not 2.1.0 or not
the shape the spec gives is refused with its JSON path, and nothing is stored."""

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
from tests.builders.scanners import ROOT, tool

pytestmark = pytest.mark.integration

AT_MS = 1_780_000_000_000


@pytest.fixture(scope="module")
def bandit_sarif() -> str:
    # exit code 1: bandit found issues, which the fixture is for
    return tool("bandit", "-f", "sarif", "-q", "-r", "tests/data/bandit", cwd=ROOT, ok=(1,))


def import_text(client, database, text, run_id="run-9"):
    options = Options(SourceFacts(run_id=run_id), AT_MS)
    return run.run("sarif", Document("bandit.sarif", text), options,
                   DirectDelivery(client, database, Normalizer()), None)


def test_bandit_findings_are_decisions_with_rule_severity_and_location(chdb_client, database,
                                                                       bandit_sarif):
    report = import_text(chdb_client, database, bandit_sarif)

    assert report.events == {"policy.decision": 3, "deploy.gate": 1}
    rows = chdb_client.query(
        "SELECT policy_id, rule, outcome, severity, resource_id, engine, "
        "attributes['code.file.path'], attributes['code.line.number'], "
        "attributes['policy.tags'] LIKE '%cwe%' FROM policy_decisions ORDER BY policy_id"
    ).result_rows
    app = "tests/data/bandit/app.py"
    assert rows == [
        ("B404", "blacklist", "warn", "low", f"{app}:3", "bandit", app, "3", True),
        ("B506", "yaml_load", "deny", "medium", f"{app}:13", "bandit", app, "13", True),
        ("B602", "subprocess_popen_with_shell_equals_true", "deny", "high", f"{app}:9",
         "bandit", app, "9", True)]
    assert "shell=True" in chdb_client.command(
        "SELECT reason FROM policy_decisions WHERE policy_id = 'B602'")
    assert chdb_client.query(
        "SELECT deploy_id, gate_outcome, engine, policy_id, severity FROM policy_events"
    ).result_rows == [("run-9", "blocked", "bandit", "B602", "high")]
    # the snippets SARIF carries (gitleaks puts the secret there) are never stored
    assert chdb_client.command("SELECT countIf(mapContains(attributes, 'snippet')) "
                               "FROM policy_decisions") == 0


def test_the_same_sarif_again_stores_nothing_twice(chdb_client, database, bandit_sarif):
    import_text(chdb_client, database, bandit_sarif)
    import_text(chdb_client, database, bandit_sarif)
    assert chdb_client.command("SELECT count() FROM policy_decisions") == 3
    assert chdb_client.command("SELECT count() FROM policy_events") == 1


def sarif(results: list, rules: list | None = None, **run_fields) -> dict:
    rules = rules if rules is not None else [
        {"id": "py/sql-injection", "name": "SqlInjection",
         "shortDescription": {"text": "SQL query built from user-controlled sources"},
         "defaultConfiguration": {"level": "error"},
         "properties": {"security-severity": "8.8", "tags": ["security", "cwe-089"]}},
        {"id": "js/weak-crypto", "defaultConfiguration": {"level": "warning"}},
    ]
    return {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "runs": [{"tool": {"driver": {"name": "CodeQL", "rules": rules}},
                      "results": results, **run_fields}]}


def loc(uri: str, line: int) -> list:
    return [{"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                                  "region": {"startLine": line, "snippet": {"text": "x"}}}}]


def test_levels_kinds_suppressions_and_security_severity(chdb_client, database):
    results = [
        {"ruleIndex": 0, "message": {"text": "user input in query"}, "locations":
         loc("app/db.py", 40), "partialFingerprints": {"primaryLocationLineHash": "ab12:1"}},
        {"rule": {"id": "js/weak-crypto", "index": 1}, "level": "note",
         "message": {"text": "md5"}, "locations": loc("web/hash.js", 3)},
        {"ruleId": "js/weak-crypto", "kind": "pass", "message": {"text": "ok"}},
        {"ruleId": "js/weak-crypto", "kind": "notApplicable", "message": {"text": "n/a"}},
        {"ruleId": "js/weak-crypto", "message": {"text": "sha1"}, "locations":
         loc("web/sign.js", 8), "suppressions": [{"kind": "inSource", "status": "accepted"}],
         "properties": {"security-severity": "9.1"}},
        {"ruleId": "py/sql-injection", "baselineState": "absent", "message": {"text": "x"}},
    ]
    options_run = {"invocations": [{"executionSuccessful": True,
                                    "endTimeUtc": "2026-03-01T10:00:00Z"}]}
    report = import_text(chdb_client, database, json.dumps(sarif(results, **options_run)))

    assert report.skipped == {"notApplicable results": 1,
                              "results absent since the baseline": 1}
    rows = chdb_client.query(
        "SELECT policy_id, outcome, severity, resource_id, attributes['policy.exception'], "
        "toUnixTimestamp(event_time) FROM policy_decisions ORDER BY resource_id, outcome"
    ).result_rows
    at = 1772359200  # 2026-03-01T10:00:00Z: the run's end
    assert rows == [
        ("js/weak-crypto", "allow", "info", "", "", at),  # kind pass: level none
        ("py/sql-injection", "deny", "high", "app/db.py:40", "", at),  # 8.8: high
        ("js/weak-crypto", "warn", "low", "web/hash.js:3", "", at),  # note: low
        ("js/weak-crypto", "allow", "critical", "web/sign.js:8", "true", at)]  # suppressed
    assert chdb_client.query("SELECT gate_outcome, policy_id, engine FROM policy_events"
                             ).result_rows == [("blocked", "py/sql-injection", "codeql")]


@pytest.mark.parametrize("document,position,expected", [
    pytest.param({"version": "2.0.0", "runs": []}, "$.version", '"2.1.0"',
                 id="SARIF 2.0 is not 2.1.0"),
    pytest.param({"version": "2.1.0", "runs": {}}, "$.runs", "an array",
                 id="runs not an array"),
    pytest.param({"version": "2.1.0"}, "$.runs", "an array", id="no runs"),
    pytest.param({"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]},
                 "$.runs[0].tool.driver.name", "a string", id="a tool without a name"),
    pytest.param(sarif([{"ruleId": "py/sql-injection", "level": "fatal"}]),
                 "$.runs[0].results[0].level", "one of error, warning, note, none",
                 id="an unknown level"),
    pytest.param(sarif([{"message": {"text": "x"}}]), "$.runs[0].results[0]",
                 "ruleId, or rule.id / ruleIndex", id="a result naming no rule"),
    pytest.param(sarif([{"ruleIndex": 5}]), "$.runs[0].results[0].ruleIndex",
                 "an index into tool.driver.rules (0..1)", id="a rule index out of range"),
    pytest.param(sarif([{"ruleId": "x", "kind": "failed"}]), "$.runs[0].results[0].kind",
                 "one of fail, pass", id="an unknown kind"),
    pytest.param(sarif([], rules=[{"name": "no id"}]), "$.runs[0].tool.driver.rules[0].id",
                 "a string", id="a rule without id"),
    pytest.param(sarif([{"ruleId": "x", "partialFingerprints": {"h": 1}}]),
                 "$.runs[0].results[0].partialFingerprints", "an object of strings",
                 id="fingerprints not strings"),
])
def test_malformed_sarif_is_refused_with_its_json_path_and_nothing_stored(
        chdb_client, database, document, position, expected):
    with pytest.raises(MalformedInput) as refused:
        import_text(chdb_client, database, json.dumps(document))
    assert str(refused.value).startswith(f"bandit.sarif: at {position}: expected {expected}")
    assert chdb_client.command("SELECT (SELECT count() FROM policy_events) + "
                               "(SELECT count() FROM policy_decisions)") == 0
