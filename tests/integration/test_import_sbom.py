"""CycloneDX SBOMs imported as `sbom.generated` (importers/cyclonedx.py), counted by SBOM
coverage (M9, metrics/sli/coverage.py) against a workload inventory.

What runs for real: `cyclonedx-py environment` (PyPI package cyclonedx-bom) builds the SBOM
of this test environment -- the venv running the tests, with this repository's pyproject.toml
as the root component -- offline; it runs with `--no-validate` (its JSON-schema validation
takes ~25 s and checks the tool, not the importer) and `--output-reproducible` with
SOURCE_DATE_EPOCH, so the SBOM's timestamp is one the test chose. The container-image SBOM
(tests/data/scans/cyclonedx-image.json) follows what `trivy image -f cyclonedx` writes:
Trivy is a Go binary, not on PyPI."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

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

ROOT = Path(__file__).resolve().parents[2]
SCANS = ROOT / "tests" / "data" / "scans"
NOW = datetime.now(timezone.utc).replace(microsecond=0, second=0)
SBOM_AT = NOW - timedelta(hours=6)
INVENTORY_AT = NOW - timedelta(hours=8)  # before the SBOM


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def import_doc(client, database, kind: str, name: str, text: str, at: datetime,
               artifact: str = ""):
    options = Options(SourceFacts(team="storefront"), ms(at), artifact=artifact)
    return run.run(kind, Document(name, text), options,
                   DirectDelivery(client, database, Normalizer()),
                   SnapshotStore(client, database))


def environment_sbom(tmp_path: Path) -> Path:
    out = tmp_path / "sbom.json"
    done = subprocess.run(
        [sys.executable, "-m", "cyclonedx_py", "environment", sys.executable, "--pyproject",
         str(ROOT / "pyproject.toml"), "--no-validate", "--output-reproducible", "-o", str(out)],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "SOURCE_DATE_EPOCH": str(int(SBOM_AT.timestamp()))})
    assert done.returncode == 0, done.stderr
    return out


def installed_distributions() -> set[str]:
    """The distributions installed in the venv, by normalized name (what cyclonedx-py
    lists), without the root project."""
    names = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower()
             for d in importlib.metadata.distributions()}
    return names - {"policyscope"}


def sbom_rows(client):
    return client.query(
        "SELECT image, sbom_format, sbom_components, engine, team, "
        "toUnixTimestamp64Milli(event_time) FROM policy_events "
        "WHERE event_kind = 'sbom.generated' ORDER BY image").result_rows


def m9(client, at: datetime) -> dict:
    frame = jobs.compute(client, [at], windows=["1d"])
    rows = frame.filter((frame["sli"] == "M9") & (frame["dimension"] == "")).to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_the_environment_sbom_is_counted_by_sbom_coverage(chdb_client, database, tmp_path):
    path = environment_sbom(tmp_path)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    artifact = f"{project['name']}@{project['version']}"  # metadata.component: the root

    report = import_doc(chdb_client, database, "cyclonedx", str(path), path.read_text(),
                        NOW)
    assert report.events == {"sbom.generated": 1}
    spec = json.loads(path.read_text())["specVersion"]
    assert sbom_rows(chdb_client) == [(artifact, f"cyclonedx-{spec}",
                                       len(installed_distributions()), "cyclonedx",
                                       "storefront", ms(SBOM_AT))]

    # the inventory: this application's image and one without any SBOM
    inventory = [{"workload_id": "prod/shop/Deployment/policyscope", "image": artifact,
                  "team": "storefront"},
                 {"workload_id": "prod/shop/Deployment/legacy", "image": "legacy:0.9",
                  "team": "storefront"}]
    import_doc(chdb_client, database, "inventory", "inventory.json", json.dumps(inventory),
               INVENTORY_AT)
    row = m9(chdb_client, NOW)
    assert (row["good"], row["total"], row["value"]) == (1, 2, 0.5)
    # an hour before the SBOM's time (its metadata.timestamp) the same inventory had none
    early = m9(chdb_client, SBOM_AT - timedelta(hours=1))
    assert (early["good"], early["total"], early["value"]) == (0, 2, 0.0)


def image_sbom() -> dict:
    """The image SBOM fixture, its timestamp moved to SBOM_AT (within the tables' retention)."""
    bom = json.loads((SCANS / "cyclonedx-image.json").read_text())
    bom["metadata"]["timestamp"] = SBOM_AT.isoformat()
    return bom


def test_an_image_sbom_names_its_image_and_a_reimport_stores_it_once(chdb_client, database):
    text = json.dumps(image_sbom())
    first = import_doc(chdb_client, database, "cyclonedx", "image.cdx.json", text, NOW)
    again = import_doc(chdb_client, database, "cyclonedx", "image.cdx.json", text,
                       NOW + timedelta(minutes=5))
    assert first.events == again.events == {"sbom.generated": 1}
    bom = json.loads(text)
    assert sbom_rows(chdb_client) == [(
        "ghcr.io/example/shop-web:main", "cyclonedx-1.5", len(bom["components"]),
        "cyclonedx", "storefront", ms(SBOM_AT))]


def test_artifact_overrides_the_subject_and_nested_components_count(chdb_client, database):
    bom = image_sbom()
    del bom["metadata"]["component"]
    bom["components"][5]["components"] = [{"type": "library", "name": "urllib3",
                                           "version": "1.26.18"}]
    text = json.dumps(bom)
    with pytest.raises(MalformedInput, match=r"bom.json: at \$\.metadata\.component: "
                       r"expected the SBOM's subject .* or --artifact NAME"):
        import_doc(chdb_client, database, "cyclonedx", "bom.json", text, NOW)
    import_doc(chdb_client, database, "cyclonedx", "bom.json", text, NOW,
               artifact="shop-web:1.4")
    (image, _, components, *_), = sbom_rows(chdb_client)
    assert (image, components) == ("shop-web:1.4", 7)


def _bom(**changes) -> str:
    bom = json.loads((SCANS / "cyclonedx-image.json").read_text())
    for path, value in changes.items():
        target = bom
        *parents, last = path.split("__")
        for key in parents:
            target = target[int(key) if key.isdigit() else key]
        target[int(last) if last.isdigit() else last] = value
    return json.dumps(bom)


@pytest.mark.parametrize("text,fragment", [
    pytest.param(_bom(bomFormat="SPDX"),
                 "at $.bomFormat: expected one of CycloneDX, got 'SPDX'", id="not CycloneDX"),
    pytest.param(_bom(specVersion="2.0"), "at $.specVersion: expected one of 1.2, 1.3, 1.4, "
                 "1.5, 1.6, 1.7, got '2.0'", id="an unknown spec version"),
    pytest.param(_bom(components__3="libssl3"),
                 "at $.components[3]: expected an object, got 'libssl3'",
                 id="a component that is not an object"),
    pytest.param(_bom(metadata__timestamp="yesterday"),
                 "at $.metadata.timestamp: expected an RFC 3339 time", id="a bad timestamp"),
    pytest.param('{"bomFormat": "CycloneDX",\n "specVersion": "1.6",,}',
                 "at line 2 column 23: expected valid JSON", id="broken JSON: its line"),
])
def test_a_malformed_sbom_is_refused_with_its_position_and_nothing_stored(
        chdb_client, database, text, fragment):
    with pytest.raises(MalformedInput) as refused:
        import_doc(chdb_client, database, "cyclonedx", "sbom.cdx.json", text, NOW)
    assert str(refused.value).startswith("sbom.cdx.json: ") and fragment in str(refused.value)
    assert chdb_client.command("SELECT count() FROM policy_events") == 0
