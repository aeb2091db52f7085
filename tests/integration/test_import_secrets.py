"""Secret scanners' reports imported as `secret.detected`: `detect-secrets scan` run for real on
a fixture repository with a planted fake AWS access key and private key, sent to a running
collector; the incident is counted by M10 (metrics/sli/rates.py) and the planted values are
nowhere in ClickHouse (every column of both event tables) or under the collector's spool.

gitleaks is a Go binary, not on PyPI, so it is not run here: its report below follows
gitleaks' documented JSON report format (README "Reporting", report/finding.go, the
testdata/expected/report/json_simple.json fixture: RuleID, Description, StartLine, EndLine,
StartColumn, EndColumn, Match, Secret, File, SymlinkFile, Commit, Entropy, Author, Email,
Date, Message, Tags, Fingerprint), with the planted secret in `Secret` and `Match` as
gitleaks writes it."""

from __future__ import annotations

import json
import secrets
import string
from datetime import datetime, timedelta, timezone

import pytest

from collector.normalize import Normalizer
from importers import run
from importers.documents import Document
from importers.errors import MalformedInput
from importers.facts import SourceFacts
from importers.parsing import Options
from metrics import jobs
from policyscope.cli.imports import DirectDelivery
from tests.builders.otlp import wait_rows
from tests.builders.scanners import cli, files_holding, stored_occurrences, tool

pytestmark = pytest.mark.integration

REPOSITORY = "https://github.com/acme/shop"


def fake_aws_key() -> str:
    return "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567")
                            for _ in range(16))


def fake_key_body() -> str:
    return "MIIEpAIBAAKCAQEA" + "".join(secrets.choice(string.ascii_letters + string.digits)
                                        for _ in range(48))


@pytest.fixture
def planted(tmp_path):
    """A repository holding a fake AWS key id and a fake RSA private key, and the values."""
    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    key, body = fake_aws_key(), fake_key_body()
    (repo / "app" / "settings.py").write_text(f'DEBUG = False\nAWS_ACCESS_KEY_ID = "{key}"\n')
    (repo / "deploy_key.pem").write_text("-----BEGIN RSA PRIVATE KEY-----\n"
                                         f"{body}\n-----END RSA PRIVATE KEY-----\n")
    return repo, [key, body]


def test_a_planted_key_is_an_m10_incident_and_its_value_is_stored_nowhere(
        collector, chdb_client, database, planted, tmp_path):
    repo, values = planted
    scan = tool("detect-secrets", "scan", "--all-files", ".", cwd=repo)
    assert all(v not in scan for v in values)  # detect-secrets itself writes hashes only
    findings = [f for file in json.loads(scan)["results"].values() for f in file]
    fingerprints = {f["hashed_secret"] for f in findings}
    assert {f["type"] for f in findings} >= {"AWS Access Key", "Private Key"}

    sent = cli("import", "detect-secrets", "-", "--endpoint",
               f"http://127.0.0.1:{collector.http_port}", "--team", "shop", stdin=scan,
               env={"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com",
                    "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "99"})
    assert sent.returncode == 0, sent.stderr
    sql = "SELECT count() FROM policy_events WHERE event_kind = 'secret.detected'"
    assert wait_rows(collector, sql, len(findings)) == len(findings)

    rows = chdb_client.query(
        "SELECT secret_fingerprint, secret_rule, file_path, repository, team, engine, "
        "attributes['code.line.number'] FROM policy_events ORDER BY ALL").result_rows
    assert {r[0] for r in rows} == fingerprints
    assert ("AWS Access Key", "app/settings.py", REPOSITORY, "shop", "detect-secrets", "2") \
        in {r[1:] for r in rows}
    assert {r[2] for r in rows if r[1] == "Private Key"} == {"deploy_key.pem"}

    point = datetime.now(timezone.utc) + timedelta(minutes=1)
    frame = jobs.compute(chdb_client, [point], windows=["1d"])
    m10 = frame.filter((frame["sli"] == "M10") & (frame["dimension"] == "")).row(0, named=True)
    assert m10["good"] == len(fingerprints)  # distinct secrets in the window
    assert m10["value"] == pytest.approx(len(fingerprints) * 7)  # per week, over one day

    for value in values:
        assert stored_occurrences(chdb_client, database, value) == {}
        assert files_holding(tmp_path / "spool", value) == []


def gitleaks_report(key: str, body: str) -> list[dict]:
    return [
        {"RuleID": "aws-access-token", "Description": "Identified a pattern that may indicate "
         "AWS credentials, risking unauthorized cloud resource access and data breaches on "
         "AWS platforms.", "StartLine": 2, "EndLine": 2, "StartColumn": 21, "EndColumn": 40,
         "Match": key, "Secret": key, "File": "app/settings.py", "SymlinkFile": "",
         "Commit": "3f2a9c1d5e7b8a60c4d2e1f0a9b8c7d6e5f4a3b2", "Entropy": 3.684184,
         "Author": "Jane Doe", "Email": "jane@example.com", "Date": "2026-02-11T09:14:02Z",
         "Message": "add settings", "Tags": [],
         "Fingerprint": "3f2a9c1d5e7b8a60c4d2e1f0a9b8c7d6e5f4a3b2:app/settings.py:"
                        "aws-access-token:2"},
        {"RuleID": "private-key", "Description": "Identified a Private Key, which may "
         "compromise cryptographic security and sensitive data encryption.", "StartLine": 1,
         "EndLine": 3, "StartColumn": 1, "EndColumn": 31,
         "Match": f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----",
         "Secret": f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----",
         "File": "deploy_key.pem", "SymlinkFile": "", "Commit": "", "Entropy": 5.9,
         "Author": "", "Email": "", "Date": "", "Message": "", "Tags": ["key"],
         "Fingerprint": ""},  # gitleaks dir: no commit
    ]


def test_gitleaks_findings_are_stored_without_the_secret(collector, chdb_client, database,
                                                          tmp_path):
    key, body = fake_aws_key(), fake_key_body()
    text = json.dumps(gitleaks_report(key, body), indent=1)
    parsed = run.parse("gitleaks", Document("gitleaks.json", text), Options())
    assert key not in repr(parsed) and body not in repr(parsed)

    sent = cli("import", "gitleaks", "-", "--endpoint",
               f"http://127.0.0.1:{collector.http_port}", "--repository", REPOSITORY,
               stdin=text)
    assert sent.returncode == 0, sent.stderr
    assert key not in sent.stdout + sent.stderr
    sql = "SELECT count() FROM policy_events WHERE event_kind = 'secret.detected'"
    assert wait_rows(collector, sql, 2) == 2

    rows = chdb_client.query(
        "SELECT secret_rule, secret_fingerprint, file_path, repository, "
        "attributes['vcs.ref.head.revision'], mapContains(attributes, 'Email') FROM "
        "policy_events ORDER BY secret_rule").result_rows
    assert [r[:1] + r[2:] for r in rows] == [
        ("aws-access-token", "app/settings.py", REPOSITORY,
         "3f2a9c1d5e7b8a60c4d2e1f0a9b8c7d6e5f4a3b2", False),
        ("private-key", "deploy_key.pem", REPOSITORY, "", False)]
    # gitleaks' fingerprint hashed (as text the collector's redaction would cut it), the same
    # whether gitleaks wrote it or the finding lacked it
    assert len({r[1] for r in rows}) == 2 and all(len(r[1]) == 32 for r in rows)
    named = gitleaks_report(key, body)[1] | {"Fingerprint": "deploy_key.pem:private-key:1"}
    again = run.parse("gitleaks", Document("g.json", json.dumps([named])), Options())
    assert again.events[0].attributes["secret.fingerprint"] == rows[1][1]
    for value in (key, body, "jane@example.com"):
        assert stored_occurrences(chdb_client, database, value) == {}
        assert files_holding(tmp_path / "spool", value) == []


def test_a_later_scan_reports_the_secret_again_a_re_import_does_not(chdb_client, database):
    report = {"version": "1.5.0", "results": {"a.py": [
        {"type": "Secret Keyword", "filename": "a.py", "hashed_secret": "d0" * 20,
         "is_verified": False, "line_number": 4}]}, "generated_at": "2026-03-01T10:00:00Z"}
    later = {**report, "generated_at": "2026-03-02T10:00:00Z"}
    for doc in (report, report, later):
        run.run("detect-secrets", Document("scan.json", json.dumps(doc)), Options(),
                DirectDelivery(chdb_client, database, Normalizer()), None)
    assert chdb_client.query("SELECT toDate(event_time), severity FROM policy_events "
                             "ORDER BY event_time").result_rows == [
        (datetime(2026, 3, 1).date(), "high"), (datetime(2026, 3, 2).date(), "high")]


def test_audited_false_positives_are_skipped_and_verified_secrets_are_critical():
    baseline = {"version": "1.5.0", "results": {"a.py": [
        {"type": "Hex High Entropy String", "filename": "a.py", "hashed_secret": "aa" * 20,
         "is_verified": False, "line_number": 1, "is_secret": False},
        {"type": "AWS Access Key", "filename": "a.py", "hashed_secret": "bb" * 20,
         "is_verified": True, "line_number": 2}]}}
    parsed = run.parse("detect-secrets", Document(".secrets.baseline", json.dumps(baseline)),
                       Options(SourceFacts(), 1_780_000_000_000))
    assert parsed.skipped == {"findings audited as not secrets": 1}
    assert [(e.attributes["secret.fingerprint"], e.attributes["policy.severity"])
            for e in parsed.events] == [("bb" * 20, "critical")]


@pytest.mark.parametrize("kind,document,position,expected", [
    pytest.param("detect-secrets", {"version": "1.5.0", "results": []}, "$.results",
                 "an object of file -> findings", id="detect-secrets: results not an object"),
    pytest.param("detect-secrets", {"results": {"a.py": [{"type": "Secret Keyword",
                                                          "line_number": 3}]}},
                 "$.results.a.py[0].hashed_secret", "a string",
                 id="detect-secrets: a finding without its hash"),
    pytest.param("detect-secrets", {"results": {"a.py": [{"type": "x", "hashed_secret": "ab",
                                                          "line_number": "three"}]}},
                 "$.results.a.py[0].line_number", "an integer",
                 id="detect-secrets: a line that is no number"),
    pytest.param("gitleaks", {"findings": []}, "$", "a gitleaks JSON report: a list",
                 id="gitleaks: not a list"),
    pytest.param("gitleaks", [{"File": "a.py", "Secret": "hunter2hunter2"}], "$[0].RuleID",
                 "a string", id="gitleaks: a finding without RuleID"),
    pytest.param("gitleaks", [{"RuleID": "r", "File": "a.py", "StartLine": "x"}],
                 "$[0].StartLine", "an integer", id="gitleaks: StartLine not a number"),
])
def test_malformed_reports_are_refused_with_their_position_and_nothing_stored(
        chdb_client, database, kind, document, position, expected):
    with pytest.raises(MalformedInput) as refused:
        run.run(kind, Document("report.json", json.dumps(document)), Options(),
                DirectDelivery(chdb_client, database, Normalizer()), None)
    message = str(refused.value)
    assert message.startswith(f"report.json: at {position}: expected {expected}"), message
    assert "hunter2" not in message
    assert chdb_client.command("SELECT count() FROM policy_events") == 0
