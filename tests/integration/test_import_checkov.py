"""checkov run for real (offline) on tests/data/terraform -- an S3 bucket without versioning,
logging or KMS encryption, a security group open to 0.0.0.0/0 on port 22 -- and its JSON and
SARIF imported: one blocked deploy.gate per run, a decision per check, the failed check ids
stored. Malformed checkov reports are refused with their position and store nothing."""

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
from tests.builders.scanners import cli, run_checkov

pytestmark = pytest.mark.integration

MISCONFIGURED = {"CKV_AWS_24",  # SSH open to 0.0.0.0/0
                 "CKV_AWS_21",  # bucket versioning
                 "CKV_AWS_18",  # bucket access logging
                 "CKV_AWS_145"}  # bucket encrypted with KMS
AT_MS = 1_780_000_000_000


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    home = tmp_path_factory.mktemp("checkov")
    return {"json": run_checkov(home, "json"),
            "sarif": run_checkov(home, "sarif", out_dir=home / "sarif")}


def import_text(client, database, kind, text, run_id="run-7"):
    options = Options(SourceFacts(team="platform", run_id=run_id,
                                  repository="https://github.com/acme/infra"), AT_MS)
    return run.run(kind, Document(f"results.{kind}", text), options,
                   DirectDelivery(client, database, Normalizer()), None)


def checks_in(report: dict, key: str) -> set[tuple[str, str]]:
    return {(c["check_id"], c["resource"]) for c in report["results"][key]}


def test_checkov_json_is_a_blocked_gate_and_a_decision_per_check(chdb_client, database,
                                                                 reports):
    report = json.loads(reports["json"])
    failed, passed = checks_in(report, "failed_checks"), checks_in(report, "passed_checks")
    assert MISCONFIGURED <= {c for c, _ in failed} and passed  # what the fixture is for

    result = import_text(chdb_client, database, "checkov", reports["json"])

    assert result.events == {"policy.decision": len(failed) + len(passed), "deploy.gate": 1}
    gates = chdb_client.query(
        "SELECT deploy_id, gate_outcome, engine, team, repository, policy_id FROM "
        "policy_events WHERE event_kind = 'deploy.gate'").result_rows
    assert [g[:5] for g in gates] == [("run-7", "blocked", "checkov", "platform",
                                       "https://github.com/acme/infra")]
    assert gates[0][5] in {c for c, _ in failed}  # the blocking policy
    rows = chdb_client.query(
        "SELECT policy_id, resource_name, outcome, severity, reason, resource_id, "
        "attributes['code.file.path'], attributes['deploy.id'] FROM policy_decisions "
        "WHERE engine = 'checkov'").result_rows
    assert {(p, r) for p, r, o, *_ in rows if o == "deny"} == failed
    assert {(p, r) for p, r, o, *_ in rows if o == "allow"} == passed
    by_check = {(r[0], r[1]): r for r in rows}
    ssh = by_check["CKV_AWS_24", "aws_security_group.ssh_open"]
    assert ssh[3] == "medium"  # checkov rates checks only with an API key: the default
    assert "0.0.0.0:0 to port 22" in ssh[4]
    assert ssh[5] == "/main.tf:aws_security_group.ssh_open" and ssh[6:] == ("/main.tf",
                                                                             "run-7")


def test_checkov_sarif_stores_the_same_failed_checks(chdb_client, database, reports):
    failed = {c for c, _ in checks_in(json.loads(reports["json"]), "failed_checks")}

    import_text(chdb_client, database, "sarif", reports["sarif"])

    assert chdb_client.query(
        "SELECT deploy_id, gate_outcome, engine FROM policy_events WHERE event_kind = "
        "'deploy.gate'").result_rows == [("run-7", "blocked", "checkov")]
    rows = chdb_client.query("SELECT policy_id, outcome, severity, resource_id FROM "
                             "policy_decisions").result_rows
    assert {r[0] for r in rows} == failed and {r[1] for r in rows} == {"deny"}
    assert {r[2] for r in rows} == {"high"}  # checkov's SARIF level: error
    ssh = [r for r in rows if r[0] == "CKV_AWS_24"]
    assert len(ssh) == 1 and ssh[0][3].endswith("tests/data/terraform/main.tf:12")


def test_importing_the_report_again_stores_it_once_and_a_clean_run_passes(
        chdb_client, database, reports):
    import_text(chdb_client, database, "checkov", reports["json"])
    import_text(chdb_client, database, "checkov", reports["json"])
    clean = '{"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, ' \
            '"resource_count": 0, "checkov_version": "3.3.30"}'
    import_text(chdb_client, database, "checkov", clean, run_id="run-8")

    assert chdb_client.query(
        "SELECT deploy_id, gate_outcome, count() FROM policy_events GROUP BY ALL ORDER BY "
        "deploy_id").result_rows == [("run-7", "blocked", 1), ("run-8", "passed", 1)]
    report = json.loads(reports["json"])
    assert chdb_client.command("SELECT count() FROM policy_decisions") == len(
        report["results"]["failed_checks"]) + len(report["results"]["passed_checks"])


def test_the_cli_takes_checkov_from_stdin_with_the_ci_environment(tmp_path, reports):
    dsn = f"chdb://{tmp_path / 'ch'}"
    out = cli("import", "checkov", "-", "--dsn", dsn, "--format", "json",
              stdin=reports["json"], env={"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "4242",
                                          "GITHUB_SHA": "c0ffee", "GITHUB_REPOSITORY":
                                          "acme/infra", "GITHUB_WORKFLOW": "terraform"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["events"]["deploy.gate"] == 1
    rows = cli("sql", "--dsn", dsn, "--format", "json",
               "SELECT deploy_id, gate_outcome, repository, attributes['vcs.ref.head.revision']"
               " AS sha, attributes['cicd.pipeline.name'] AS pipeline FROM policy_events")
    assert json.loads(rows.stdout) == [{"deploy_id": "4242", "gate_outcome": "blocked",
                                        "repository": "https://github.com/acme/infra",
                                        "sha": "c0ffee", "pipeline": "terraform"}]


def malformed(reports_json: str, change) -> str:
    report = json.loads(reports_json)
    change(report)
    return json.dumps(report)


@pytest.mark.parametrize("change,position,expected", [
    pytest.param(lambda r: r["results"]["failed_checks"][1].pop("check_id"),
                 "$.results.failed_checks[1].check_id", "a string",
                 id="a failed check without check_id"),
    pytest.param(lambda r: r["results"]["passed_checks"][0].update(file_line_range="12"),
                 "$.results.passed_checks[0].file_line_range", "[first line, last line]",
                 id="a line range that is not a pair"),
    pytest.param(lambda r: r["results"]["failed_checks"][0].update(severity="SEVERE"),
                 "$.results.failed_checks[0].severity", "null or one of CRITICAL",
                 id="an unknown severity"),
    pytest.param(lambda r: r.pop("results"), "$", "a checkov -o json report",
                 id="not a checkov report"),
    pytest.param(lambda r: r["results"].update(failed_checks={"x": 1}),
                 "$.results.failed_checks", "an array", id="failed_checks not a list"),
])
def test_a_malformed_report_is_refused_with_its_position_and_nothing_stored(
        chdb_client, database, reports, change, position, expected):
    with pytest.raises(MalformedInput) as refused:
        import_text(chdb_client, database, "checkov", malformed(reports["json"], change))
    assert str(refused.value).startswith(f"results.checkov: at {position}: expected "
                                         f"{expected}")
    assert chdb_client.command("SELECT (SELECT count() FROM policy_events) + "
                               "(SELECT count() FROM policy_decisions)") == 0
