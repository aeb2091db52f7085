"""KIND `osv`: OSV-Scanner's JSON report (`osv-scanner --format json`, v1 and v2) as
`vuln.detected` events, diffed per artifact (importers/vulns.py).

OSV-Scanner scans lockfiles, directories and images but writes no name for the whole: the
artifact is `--artifact`, else the repository (`--repository` or the CI's), else each
result's `source.path` (one artifact per lockfile: paths differ between machines, so give
`--artifact` for diffs that span them). Every `results[].packages[]` entry is a package
(`package.name`, `version`, `ecosystem`); each of its `groups[]` -- the ids OSV-Scanner takes
for one vulnerability (an advisory and its aliases) -- is one vulnerability: its id a CVE
among the group's ids and aliases if there is one, else its first id; its severity the
group's `max_severity` (a CVSS base score, rated as CVSS v3 does), else the GitHub rating
in a member's `database_specific.severity` (CRITICAL, HIGH, MODERATE: medium, LOW); its fixed
versions the `fixed` events of the members' `affected[]` ranges for this package. Output of
versions without `groups` has each vulnerability as its own group. The event time is the
import's (the report holds none).
"""

from __future__ import annotations

from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.vulns import Vulnerability, add_scan, cvss_severity, preferred_id, strings

GITHUB_SEVERITIES = {"critical": "critical", "high": "high", "moderate": "medium",
                     "medium": "medium", "low": "low"}


def parse(document: Document, options: Options) -> Parsed:
    root = document.json()
    value = root.mapping()
    if "results" not in value:
        raise root.child("results").fail("an array of results (an OSV-Scanner JSON report, "
                                         "osv-scanner --format json)")
    out = Parsed(objects=1)
    scans: dict[str, list[Vulnerability]] = {}
    for result in root.items("results", required=True):
        result.mapping()
        source = result.child("source")
        path = source.text("path") if source.is_mapping() else ""
        artifact = options.artifact or options.facts.repository or path
        if not artifact:
            raise source.child("path").fail("a source path, or --artifact NAME for the scan")
        found = scans.setdefault(artifact, [])
        for package in result.items("packages"):
            found += _package(package)
    for artifact, found in scans.items():
        add_scan(out, options, tool="osv", artifact=artifact, vulnerabilities=found,
                 time_ms=None)
    return out


def _package(entry: Node) -> list[Vulnerability]:
    entry.mapping()
    package = entry.child("package")
    package.mapping()
    name, ecosystem = package.text("name", required=True), package.text("ecosystem")
    version = package.text("version")
    records: dict[str, Node] = {}
    for record in entry.items("vulnerabilities"):
        record.mapping()
        records[record.text("id", required=True)] = record
    groups = entry.items("groups")
    if not groups and records:  # output before groups existed
        return [_vulnerability([r], [rid], [], None, name, ecosystem, version)
                for rid, r in records.items()]
    out = []
    for group in groups:
        group.mapping()
        ids = strings(group, "ids")
        if not ids:
            raise group.child("ids").fail("a non-empty array of vulnerability ids")
        members = [records[i] for i in ids if i in records]
        score = group.number("max_severity") if group.value.get("max_severity") != "" \
            else None
        out.append(_vulnerability(members, ids, strings(group, "aliases"), score, name,
                                  ecosystem, version))
    return out


def _vulnerability(members: list[Node], ids: list[str], aliases: list[str],
                   score: float | None, name: str, ecosystem: str,
                   version: str) -> Vulnerability:
    every = list(dict.fromkeys([*ids, *aliases, *(a for m in members
                                                  for a in strings(m, "aliases"))]))
    severity = cvss_severity(score) if score is not None else ""
    fixed: list[str] = []
    title = ""
    for member in members:
        rating = member.child("database_specific")
        if not severity and rating.is_mapping():
            severity = GITHUB_SEVERITIES.get(rating.text("severity").lower(), "")
        title = title or member.text("summary") or member.text("details")
        for affected in member.items("affected"):
            affected.mapping()
            subject = affected.child("package")
            if subject.is_mapping() and (subject.text("name"), subject.text("ecosystem")) \
                    != (name, ecosystem):
                continue
            for span in affected.items("ranges"):
                span.mapping()
                for event in span.items("events"):
                    event.mapping()
                    if event.text("fixed") and event.text("fixed") not in fixed:
                        fixed.append(event.text("fixed"))
    return Vulnerability(id=preferred_id(every), package=name, version=version,
                         ecosystem=ecosystem, fixed=", ".join(fixed), severity=severity,
                         aliases=tuple(every), title=title)

