"""KIND `trivy`: Trivy's JSON report (`trivy image -f json`, also `fs`, `repo`, `rootfs`;
`SchemaVersion` 2) as `vuln.detected` events, diffed per artifact (importers/vulns.py).

The artifact is `ArtifactName` (the image reference or path given to Trivy; `--artifact`
overrides it), its kind `ArtifactType` (container_image, filesystem, repository, ...). Every
`Results[].Vulnerabilities[]` entry is a vulnerability: `VulnerabilityID`, `PkgName`,
`InstalledVersion`, `FixedVersion`, `Severity` (CRITICAL, HIGH, MEDIUM, LOW; UNKNOWN: none),
`Title`; the result's `Type` (alpine, debian, python-pkg, gobinary, jar, ...) is the package's
ecosystem. Results without vulnerabilities (Trivy omits the key) and the misconfiguration,
secret and license results of other scanners are not vulnerabilities. The event time is
`CreatedAt` (Trivy 0.48+), else the import's time.
"""

from __future__ import annotations

from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.vulns import Vulnerability, add_scan, artifact_of

SEVERITIES = {"CRITICAL": "critical", "HIGH": "high", "MEDIUM": "medium", "LOW": "low",
              "UNKNOWN": ""}


def parse(document: Document, options: Options) -> Parsed:
    root = document.json()
    root.mapping()
    version = root.integer("SchemaVersion")
    if version != 2:
        raise root.child("SchemaVersion").fail("2 (a Trivy JSON report, trivy -f json)",
                                               version)
    out = Parsed(objects=1)
    found: list[Vulnerability] = []
    for result in root.items("Results"):
        result.mapping()
        ecosystem = result.text("Type")
        for entry in result.items("Vulnerabilities"):
            found.append(_vulnerability(entry, ecosystem))
        for other in ("Misconfigurations", "Secrets", "Licenses"):
            if result.child(other).value:
                out.skipped[f"results of {other.lower()}"] += 1
    artifact = artifact_of(root.child("ArtifactName"), options, root.text("ArtifactName"),
                           "trivy")
    add_scan(out, options, tool="trivy", artifact=artifact, vulnerabilities=found,
             time_ms=root.time_ms("CreatedAt"),
             artifact_kind=root.text("ArtifactType") or "artifact")
    return out


def _vulnerability(entry: Node, ecosystem: str) -> Vulnerability:
    entry.mapping()
    vid = entry.text("VulnerabilityID", required=True)
    severity = entry.text("Severity", default="UNKNOWN").upper()
    if severity not in SEVERITIES:
        raise entry.child("Severity").fail("one of " + ", ".join(SEVERITIES),
                                           entry.text("Severity"))
    return Vulnerability(
        id=vid, package=entry.text("PkgName", required=True),
        version=entry.text("InstalledVersion"), ecosystem=ecosystem,
        fixed=entry.text("FixedVersion"), severity=SEVERITIES[severity],
        title=entry.text("Title"))
