"""Vulnerability scans imported as `vuln.detected` and diffed per artifact into a violation
lifecycle (importers/vulns.py): a vulnerability a later scan of the artifact no longer lists
is remediated, and the SLI batch's MTTR (M3, metrics/sli/remediation.py) is right.

What runs for real: `pip-audit -f json -r <requirements> --no-deps --disable-pip -s osv`
(PyPI package pip-audit) reads the fixture requirements files, and queries for each pin the
OSV API at `--osv-url` -- pip-audit's own option -- pointed at a local stand-in started by the
test, which answers the OSV API's `POST /v1/query` from two real OSV records
(tests/data/scans/osv-records.json: PYSEC-2018-28 and PYSEC-2023-74, advisories of requests)
by their ECOSYSTEM ranges, as osv.dev does. pip-audit has no offline mode: its default
service (PyPI's JSON API) has a fixed URL, so the OSV service is the one that can be pointed
at a local server. The proxies are set to a dead port so that nothing else reaches the
network. Trivy, Grype and OSV-Scanner are Go binaries, not on PyPI: their parsers read
documents written to their documented JSON formats (tests/data/scans/*.json), their times
moved to the last days (the tables' retention drops older rows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.version import Version

from collector.normalize import Normalizer
from importers import run
from importers.documents import Document
from importers.errors import MalformedInput
from importers.facts import SourceFacts
from importers.parsing import Options
from importers.snapshots import SnapshotStore
from metrics import jobs
from policyscope.cli.imports import DirectDelivery

pytestmark = pytest.mark.integration

SCANS = Path(__file__).resolve().parents[2] / "tests" / "data" / "scans"
NOW = datetime.now(timezone.utc).replace(microsecond=0, second=0, minute=0)
T0, T1 = NOW - timedelta(days=3), NOW - timedelta(days=1)


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def rfc3339(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def import_doc(client, database, kind: str, text: str, at: datetime, *, name: str = "",
               artifact: str = "", repository: str = ""):
    options = Options(SourceFacts(team="storefront", repository=repository), ms(at),
                      artifact=artifact)
    return run.run(kind, Document(name or f"{kind}.json", text), options,
                   DirectDelivery(client, database, Normalizer()),
                   SnapshotStore(client, database))


def violations(client):
    return client.query(
        "SELECT vulnerability_id, package_name, violation_status, "
        "toUnixTimestamp64Milli(event_time), violation_id, "
        "attributes['policy.violation.first_seen'] FROM policy_events "
        "WHERE event_kind = 'policy.violation' ORDER BY event_time, vulnerability_id, "
        "package_name, violation_status").result_rows


def detected(client):
    return client.query(
        "SELECT image, vulnerability_id, package_name, package_version, package_fixed_version,"
        " severity, engine, toUnixTimestamp64Milli(event_time) FROM policy_events "
        "WHERE event_kind = 'vuln.detected' ORDER BY event_time, vulnerability_id, "
        "package_name").result_rows


def mttr(client, at: datetime) -> dict[tuple[str, str, str], dict]:
    frame = jobs.compute(client, [at], windows=["30d"])
    return {(r["sli"], r["dimension"], r["dimension_value"]): r
            for r in frame.filter(frame["sli"].cast(str).str.starts_with("M3")).to_dicts()}


# -- pip-audit, run for real against a local OSV API -----------------------------------------
@pytest.fixture
def osv_api():
    """A local stand-in of the OSV API's POST /v1/query, answering from real OSV records."""
    records = json.loads((SCANS / "osv-records.json").read_text())

    def affecting(name: str, version: str) -> list[dict]:
        found = []
        for record in records:
            for affected in record["affected"]:
                if (affected["package"]["name"], affected["package"]["ecosystem"]) != \
                        (name, "PyPI"):
                    continue
                for span in affected["ranges"]:
                    start = next(e["introduced"] for e in span["events"] if "introduced" in e)
                    fixed = [e["fixed"] for e in span["events"] if "fixed" in e]
                    if Version(start) <= Version(version) and (
                            not fixed or Version(version) < Version(fixed[0])):
                        found.append(record)
        return found

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            found = affecting(query["package"]["name"], query["version"])
            self.server.queries.append((query["package"]["name"], query["version"]))
            body = json.dumps({"vulns": found} if found else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.queries = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def pip_audit(osv_api, requirements: Path, out: Path, cache: Path) -> dict:
    host, port = osv_api.server_address
    dead = "http://127.0.0.1:9"  # nothing listens: a request that is not for the stand-in fails
    done = subprocess.run(
        [sys.executable, "-m", "pip_audit", "-f", "json", "-r", str(requirements), "--no-deps",
         "--disable-pip", "-s", "osv", "--osv-url", f"http://{host}:{port}/v1/query",
         "--cache-dir", str(cache), "--progress-spinner", "off", "-o", str(out)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "HTTPS_PROXY": dead, "HTTP_PROXY": dead, "NO_PROXY": host})
    assert done.returncode == 1, done.stderr  # 1: vulnerabilities found
    return json.loads(out.read_text())


def test_pip_audit_scans_then_an_upgrade_remediates_with_its_mttr(
        chdb_client, database, osv_api, tmp_path):
    before = pip_audit(osv_api, SCANS / "requirements-vulnerable.txt", tmp_path / "a.json",
                       tmp_path / "cache")
    after = pip_audit(osv_api, SCANS / "requirements-upgraded.txt", tmp_path / "b.json",
                      tmp_path / "cache")
    assert ("requests", "2.19.1") in osv_api.queries and ("requests", "2.20.0") in \
        osv_api.queries

    first = import_doc(chdb_client, database, "pip-audit", json.dumps(before), T0,
                       artifact="shop-api")
    second = import_doc(chdb_client, database, "pip-audit", json.dumps(after), T1,
                        artifact="shop-api")

    assert (first.opened, first.remediated, second.opened, second.remediated) == (2, 0, 0, 1)
    assert detected(chdb_client) == [
        ("shop-api", "CVE-2018-18074", "requests", "2.19.1", "2.20.0", "", "pip-audit", ms(T0)),
        ("shop-api", "CVE-2023-32681", "requests", "2.19.1", "2.31.0", "", "pip-audit", ms(T0)),
        ("shop-api", "CVE-2023-32681", "requests", "2.20.0", "2.31.0", "", "pip-audit", ms(T1)),
    ]
    rows = violations(chdb_client)
    assert [r[:4] for r in rows] == [
        ("CVE-2018-18074", "requests", "opened", ms(T0)),
        ("CVE-2023-32681", "requests", "opened", ms(T0)),
        ("CVE-2018-18074", "requests", "remediated", ms(T1)),
    ]
    assert rows[0][4] == rows[2][4] and rows[2][5] == rfc3339(T0)  # one lifecycle

    m3 = mttr(chdb_client, NOW)
    assert m3["M3_mean", "", ""]["total"] == 1
    assert m3["M3_mean", "", ""]["value"] == pytest.approx((T1 - T0).total_seconds())
    assert m3["M3_mean", "policy", "CVE-2018-18074"]["value"] == \
        pytest.approx((T1 - T0).total_seconds())
    assert m3["M3_open", "", ""]["total"] == 1  # CVE-2023-32681: 2.20.0 is still affected


def test_a_pip_audit_report_that_skipped_a_dependency_remediates_nothing(chdb_client,
                                                                          database):
    """Older pip-audit wrote a bare array; a skipped dependency makes the listing capped."""
    vuln = {"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"], "aliases": ["CVE-2018-18074"]}
    scan = [{"name": "requests", "version": "2.19.1", "vulns": [vuln]}]
    later = [{"name": "requests", "skip_reason": "Dependency not found on PyPI and could not "
              "be audited: requests (2.19.1)"}]
    import_doc(chdb_client, database, "pip-audit", json.dumps(scan), T0, artifact="shop-api")
    report = import_doc(chdb_client, database, "pip-audit", json.dumps(later), T1,
                        artifact="shop-api")
    assert (report.remediated, report.capped, report.unlisted) == (0, 1, 1)
    assert report.skipped == {"dependencies pip-audit could not audit (nothing remediated)": 1}


# -- Trivy: two scans of one image --------------------------------------------------------
def trivy(name: str, created: datetime) -> str:
    doc = json.loads((SCANS / name).read_text())
    doc["CreatedAt"] = rfc3339(created)
    return json.dumps(doc)


def test_trivy_vulnerabilities_fixed_by_a_rebuild_are_remediated(chdb_client, database):
    scanned_0, scanned_1 = T0 + timedelta(minutes=7), T1 + timedelta(minutes=3)
    first = import_doc(chdb_client, database, "trivy", trivy("trivy-before.json", scanned_0),
                       NOW)
    second = import_doc(chdb_client, database, "trivy", trivy("trivy-after.json", scanned_1),
                        NOW)
    image = "ghcr.io/example/shop-web:main"

    assert (first.opened, second.opened, second.remediated) == (5, 1, 3)
    assert first.skipped == {"results of secrets": 1}
    rows = violations(chdb_client)
    assert [r[:4] for r in rows] == [
        ("CVE-2023-32681", "requests", "opened", ms(scanned_0)),
        ("CVE-2023-42363", "busybox", "opened", ms(scanned_0)),
        ("CVE-2024-0727", "libcrypto3", "opened", ms(scanned_0)),
        ("CVE-2024-0727", "libssl3", "opened", ms(scanned_0)),
        ("CVE-2024-5535", "libssl3", "opened", ms(scanned_0)),
        ("CVE-2024-0727", "libcrypto3", "remediated", ms(scanned_1)),
        ("CVE-2024-0727", "libssl3", "remediated", ms(scanned_1)),
        ("CVE-2024-2511", "libcrypto3", "opened", ms(scanned_1)),
        ("CVE-2024-5535", "libssl3", "remediated", ms(scanned_1)),
    ]
    assert chdb_client.query(
        "SELECT DISTINCT image, resource_kind, engine, team FROM policy_events").result_rows \
        == [(image, "container_image", "trivy", "storefront")]
    assert chdb_client.query(
        "SELECT vulnerability_id, severity, package_version, package_fixed_version "
        "FROM policy_events WHERE event_kind = 'vuln.detected' AND severity = 'critical'"
    ).result_rows == [("CVE-2024-5535", "critical", "3.1.4-r2", "3.1.6-r0")]

    m3 = mttr(chdb_client, NOW)
    assert m3["M3_mean", "", ""]["total"] == 3
    assert m3["M3_mean", "", ""]["value"] == pytest.approx(
        (scanned_1 - scanned_0).total_seconds())
    assert m3["M3_open", "", ""]["total"] == 3  # busybox, requests, CVE-2024-2511

    again = import_doc(chdb_client, database, "trivy", trivy("trivy-after.json", scanned_1),
                       NOW + timedelta(minutes=1))
    assert (again.opened, again.remediated) == (0, 0)
    assert len(violations(chdb_client)) == len(rows)


# -- Grype and OSV-Scanner ----------------------------------------------------------------
def grype(scanned: datetime, drop: str = "") -> str:
    doc = json.loads((SCANS / "grype.json").read_text())
    doc["descriptor"]["timestamp"] = scanned.isoformat()
    doc["matches"] = [m for m in doc["matches"] if m["artifact"]["name"] != drop]
    return json.dumps(doc)


def test_grype_scans_of_an_image_are_diffed_and_name_cves(chdb_client, database):
    import_doc(chdb_client, database, "grype", grype(T0), NOW)
    report = import_doc(chdb_client, database, "grype", grype(T1, drop="libssl3"), NOW)
    image = "registry.example.com/payments/api:2.3"
    assert detected(chdb_client)[:3] == [
        (image, "CVE-2011-3374", "apt", "2.6.1", "", "info", "grype", ms(T0)),
        (image, "CVE-2023-32681", "requests", "2.28.1", "2.31.0", "medium", "grype", ms(T0)),
        (image, "CVE-2024-5535", "libssl3", "3.0.11-1~deb12u2", "3.0.14-1~deb12u1",
         "critical", "grype", ms(T0))]
    assert (report.opened, report.remediated) == (0, 1)
    assert [r[:4] for r in violations(chdb_client) if r[2] == "remediated"] == [
        ("CVE-2024-5535", "libssl3", "remediated", ms(T1))]


def test_osv_scanner_groups_are_one_vulnerability_each(chdb_client, database):
    text = (SCANS / "osv.json").read_text()
    repo = "https://github.com/example/shop"
    import_doc(chdb_client, database, "osv", text, T0, repository=repo)
    assert [r[1:6] for r in detected(chdb_client)] == [
        ("CVE-2023-32681", "requests", "2.28.1", "2.31.0", "medium"),  # max_severity 6.1
        ("CVE-2023-45288", "golang.org/x/net", "0.17.0", "0.23.0", "high"),  # 7.5
        ("CVE-2025-30204", "github.com/golang-jwt/jwt/v4", "4.5.0", "4.5.2", "high"),  # GHSA
    ]
    assert {r[0] for r in detected(chdb_client)} == {repo}
    fixed = json.loads(text)
    fixed["results"][1]["packages"].pop(0)  # golang.org/x/net upgraded
    report = import_doc(chdb_client, database, "osv", json.dumps(fixed), T1, repository=repo)
    assert (report.opened, report.remediated) == (0, 1)


def test_osv_scanner_without_a_name_takes_each_lockfile_as_an_artifact(chdb_client, database):
    report = import_doc(chdb_client, database, "osv", (SCANS / "osv.json").read_text(), T0)
    assert sorted(report.events.items()) == [("policy.violation", 3), ("vuln.detected", 3)]
    assert report.sources == 2
    assert {r[0] for r in detected(chdb_client)} == {
        "/home/runner/work/shop/shop/requirements.txt", "/home/runner/work/shop/shop/go.mod"}


# -- malformed input: refused with the file, the position and what was expected ------------
def edited(name: str, edit) -> str:
    doc = json.loads((SCANS / name).read_text())
    edit(doc)
    return json.dumps(doc)


def _set(path: list, value):
    def edit(doc):
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value
    return edit


def _delete(path: list):
    def edit(doc):
        for key in path[:-1]:
            doc = doc[key]
        del doc[path[-1]]
    return edit


PIP_AUDIT = json.dumps({"dependencies": [
    {"name": "requests", "version": "2.19.1", "vulns": [
        {"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"], "aliases": []},
        {"id": "PYSEC-2023-74", "fix_versions": [2.31], "aliases": []}]}], "fixes": []})


@pytest.mark.parametrize("kind,text,artifact,fragment", [
    pytest.param("trivy", edited("trivy-before.json", _set(
        ["Results", 0, "Vulnerabilities", 2, "Severity"], "SEVERE")), "",
        "at $.Results[0].Vulnerabilities[2].Severity: expected one of CRITICAL, HIGH, MEDIUM, "
        "LOW, UNKNOWN, got 'SEVERE'", id="trivy: an unknown severity"),
    pytest.param("trivy", edited("trivy-before.json", _delete(
        ["Results", 1, "Vulnerabilities", 0, "PkgName"])), "",
        "at $.Results[1].Vulnerabilities[0].PkgName: expected a string",
        id="trivy: a vulnerability without its package"),
    pytest.param("trivy", (SCANS / "grype.json").read_text(), "",
                 "at $.SchemaVersion: expected 2 (a Trivy JSON report",
                 id="trivy: another tool's report"),
    pytest.param("grype", edited("grype.json", _delete(["matches", 2, "artifact", "name"])), "",
                 "at $.matches[2].artifact.name: expected a string",
                 id="grype: a match without its package name"),
    pytest.param("grype", edited("grype.json", _set(
        ["matches", 0, "vulnerability", "fix", "versions"], "3.0.14")), "",
        "at $.matches[0].vulnerability.fix.versions: expected an array, got '3.0.14'",
        id="grype: fix versions not an array"),
    pytest.param("osv", edited("osv.json", _set(
        ["results", 1, "packages", 0, "groups", 0, "max_severity"], "high")), "",
        "at $.results[1].packages[0].groups[0].max_severity: expected a number, got 'high'",
        id="osv: a severity that is no CVSS score"),
    pytest.param("osv", edited("osv.json", _set(["results", 0, "packages", 0, "package"],
                                                "requests")), "",
                 "at $.results[0].packages[0].package: expected an object, got 'requests'",
                 id="osv: a package that is not an object"),
    pytest.param("pip-audit", PIP_AUDIT, "shop-api",
                 "at $.dependencies[0].vulns[1].fix_versions[0]: expected a string, got 2.31",
                 id="pip-audit: a fix version that is not a string"),
    pytest.param("pip-audit", PIP_AUDIT.replace("2.31", '"2.31.0"'), "",
                 "at $: expected the scanned artifact's name (pip-audit output names none "
                 "here): give --artifact NAME", id="pip-audit: no artifact to diff"),
    pytest.param("pip-audit", '{"vulnerabilities": []}', "shop-api",
                 "at $: expected a pip-audit JSON report", id="pip-audit: not its report"),
])
def test_a_malformed_scan_is_refused_with_its_position_and_nothing_stored(
        chdb_client, database, kind, text, artifact, fragment):
    with pytest.raises(MalformedInput) as refused:
        import_doc(chdb_client, database, kind, text, NOW, name="scan.json",
                   artifact=artifact)
    assert str(refused.value).startswith("scan.json: ") and fragment in str(refused.value)
    assert chdb_client.command("SELECT count() FROM policy_events") == 0
    assert chdb_client.command("SELECT count() FROM import_snapshots") == 0


def test_the_cli_takes_the_artifact_from_its_flag(tmp_path):
    """`policyscope import pip-audit FILE --artifact NAME` as users run it."""
    path = tmp_path / "audit.json"
    path.write_text(PIP_AUDIT.replace("2.31", '"2.31.0"'))
    base = {k: v for k, v in os.environ.items() if not k.startswith("POLICYSCOPE_")}
    done = subprocess.run(
        [sys.executable, "-m", "policyscope.cli", "import", "pip-audit", str(path), "--dsn",
         f"chdb://{tmp_path / 'ch'}", "--artifact", "shop-api:1.4", "--format", "json"],
        capture_output=True, text=True, timeout=180, env=base)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["events"], report["opened"], report["sources"]) == (
        {"vuln.detected": 2, "policy.violation": 2}, 2, 1)
