"""What the vulnerability-scan KINDs (`trivy`, `grype`, `osv`, `pip-audit`) share: a scan of
one artifact as `vuln.detected` events and as a state-only `Listing` diffed per artifact.

Each KIND reads its tool's JSON into `Vulnerability`s per artifact and hands them to `add_scan`,
which emits
* one `vuln.detected` per (vulnerability, package, installed version) the scan lists, at the
  scan's own time when the tool writes one (Trivy's `CreatedAt`, Grype's
  `descriptor.timestamp`), else at the import's time (`--at`, default now); its id is its
  content and that time, so the same file imported again stores once;
* a `Listing` under the source key `<tool>:<artifact>`, whose findings are (vulnerability,
  ecosystem, package): run.py diffs it against the previous scan of the same artifact by the
  same tool, so a vulnerability a later scan no longer lists is a remediated
  `policy.violation` (M3, MTTR for CVEs) -- the same mechanism as PolicyReports
  (importers/diff.py). Another tool's scan of the artifact is another source: tools' databases
  differ, so one tool's silence is no fix of what another found.

A finding's violation events carry `policy.id` = the vulnerability id (so M3 by policy is MTTR
per CVE), `policy.rule` = the package, the tool as `policy.engine`, the artifact as
`artifact.image` and the subject, enforcement `audit` (a scan reports, it blocks nothing) and
the vulnerability columns (`vulnerability.id`, `package.*`). The vulnerability id is the CVE
when the tool's id or one of its aliases is one (GHSA-, PYSEC-, GO- ids otherwise), so scans
by different tools name the same hole alike.
The diff takes every scan as the complete list of the artifact's vulnerabilities: scan an
artifact with the same filters each time (`--severity`, `--ignore-unfixed`, `--only-fixed`),
or what a filter hides is remediated.
"""

from __future__ import annotations

from dataclasses import dataclass

from importers.diff import Finding, Listing
from importers.documents import Node
from importers.parsing import Options, Parsed
from importers.records import Event, stable_id

KIND = "vuln.detected"
REASON_CHARS = 200  # a description is cut to its first line, at most this long


@dataclass(frozen=True)
class Vulnerability:
    """One vulnerability of one package as a scan lists it. `severity` is one of
    schemas.events.SEVERITIES or "" (unknown); `fixed` the tool's fixed version(s) as text,
    "" when none is known."""

    id: str
    package: str
    version: str
    ecosystem: str = ""  # the package's kind (apk, deb, python-pkg, PyPI, Go): part of its id
    fixed: str = ""
    severity: str = ""
    aliases: tuple[str, ...] = ()
    title: str = ""


def preferred_id(ids: list[str] | tuple[str, ...]) -> str:
    """The first CVE id among `ids` (a tool's id and its aliases), else the first id."""
    for value in ids:
        if value.upper().startswith("CVE-"):
            return value
    return ids[0]


def cvss_severity(score: float) -> str:
    """CVSS v3 qualitative rating of a base score: 9.0+ critical, 7.0+ high, 4.0+ medium,
    0.1+ low, 0 info (CVSS's "none")."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low" if score > 0 else "info"


def brief(text: str) -> str:
    """A description's first line, at most REASON_CHARS long (the reason column)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= REASON_CHARS else line[:REASON_CHARS - 3] + "..."


def artifact_of(node: Node, options: Options, named: str, tool: str) -> str:
    """`--artifact` when given, else the artifact the tool named, else the repository fact
    (`--repository` or the CI's); refuses at `node` when there is none."""
    artifact = options.artifact or named or options.facts.repository
    if not artifact:
        raise node.fail(f"the scanned artifact's name ({tool} output names none here): give "
                        "--artifact NAME (or --repository)")
    return artifact


def strings(node: Node, key: str) -> list[str]:
    """The strings of the array under `key` ([] when absent)."""
    values = []
    for item in node.items(key):
        if not isinstance(item.value, str):
            raise item.fail("a string", item.value)
        values.append(item.value)
    return values


def add_scan(out: Parsed, options: Options, *, tool: str, artifact: str,
             vulnerabilities: list[Vulnerability], time_ms: int | None,
             artifact_kind: str = "artifact", complete: bool = True) -> None:
    """The scan's `vuln.detected` events and its listing (`complete=False`: the scan left
    packages out, so nothing it does not list is taken as remediated)."""
    when = options.at_ms if time_ms is None else time_ms
    key = f"{tool}:{artifact}"
    subject = {"artifact.image": artifact, "policy.resource.kind": artifact_kind,
               "policy.resource.name": artifact, "policy.resource.id": artifact,
               "policy.engine": tool, "policy.enforcement": "audit"}  # a scan reports
    findings: list[Finding] = []
    seen: set[str] = set()
    for v in vulnerabilities:
        attrs = {**subject, "policy.id": v.id, "policy.rule": v.package,
                 "policy.severity": v.severity, "policy.reason": brief(v.title),
                 "vulnerability.id": v.id, "package.name": v.package,
                 "package.version": v.version, "package.fixed_version": v.fixed,
                 "package.ecosystem": v.ecosystem,
                 "vulnerability.aliases": ", ".join(a for a in v.aliases if a != v.id)}
        uid = stable_id("vuln", key, v.id, v.ecosystem, v.package, v.version, v.fixed, when)
        if uid in seen:  # listed twice (two paths of one package version): one event
            continue
        seen.add(uid)
        out.events.append(Event(KIND, attrs, when, uid))
        findings.append(Finding(f"{v.id}/{v.ecosystem}/{v.package}", attrs))
    out.listings.append(Listing(key, tuple(findings), when, complete=complete))

