"""KIND `grype`: Grype's JSON report (`grype IMAGE|DIR -o json`) as `vuln.detected` events,
diffed per artifact (importers/vulns.py).

The artifact is `source.target`: an image's `userInput` (the reference given to Grype), a
directory's or file's path (`--artifact` overrides it); its kind is `source.type` (image,
directory, file, ...). Every `matches[]` entry is a vulnerability of a package:
`vulnerability.id` (a CVE id preferred among it and `relatedVulnerabilities[].id`),
`vulnerability.severity` (Critical, High, Medium, Low; Negligible: info; Unknown: none),
`vulnerability.fix.versions`, `artifact.name`, `artifact.version` and `artifact.type` (apk,
deb, python, go-module, ...: the package's ecosystem). The event time is
`descriptor.timestamp`, else the import's time.
"""

from __future__ import annotations

from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.vulns import Vulnerability, add_scan, artifact_of, preferred_id

SEVERITIES = {"critical": "critical", "high": "high", "medium": "medium", "low": "low",
              "negligible": "info", "unknown": ""}


def parse(document: Document, options: Options) -> Parsed:
    root = document.json()
    value = root.mapping()
    if "matches" not in value:
        raise root.child("matches").fail("an array of matches (a Grype JSON report, grype "
                                         "-o json)")
    out = Parsed(objects=1)
    found = [_match(m) for m in root.items("matches", required=True)]
    source = root.child("source")
    target = source.child("target")
    if isinstance(target.value, dict):
        named = target.text("userInput")
    elif isinstance(target.value, str) or target.value is None:
        named = target.value or ""
    else:
        raise target.fail("an image (an object with userInput) or a path", target.value)
    kind = source.text("type") if source.is_mapping() else ""
    artifact = artifact_of(target, options, named, "grype")
    add_scan(out, options, tool="grype", artifact=artifact, vulnerabilities=found,
             time_ms=root.child("descriptor").time_ms("timestamp")
             if root.child("descriptor").is_mapping() else None,
             artifact_kind=kind or "artifact")
    return out


def _match(match: Node) -> Vulnerability:
    match.mapping()
    vulnerability, package = match.child("vulnerability"), match.child("artifact")
    vulnerability.mapping()
    package.mapping()
    vid = vulnerability.text("id", required=True)
    related = [r.text("id") for r in match.items("relatedVulnerabilities")]
    severity = vulnerability.text("severity", default="Unknown").lower()
    if severity not in SEVERITIES:
        raise vulnerability.child("severity").fail(
            "one of Critical, High, Medium, Low, Negligible, Unknown",
            vulnerability.text("severity"))
    fix = vulnerability.child("fix")
    fixed = []
    if fix.value is not None:
        fix.mapping()
        for version in fix.items("versions"):
            if not isinstance(version.value, str):
                raise version.fail("a version string", version.value)
            fixed.append(version.value)
    ids = [vid, *(r for r in related if r)]
    return Vulnerability(
        id=preferred_id(ids), package=package.text("name", required=True),
        version=package.text("version"), ecosystem=package.text("type"),
        fixed=", ".join(fixed), severity=SEVERITIES[severity], aliases=tuple(ids),
        title=vulnerability.text("description"))
