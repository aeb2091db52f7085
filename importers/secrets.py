"""KINDs `detect-secrets` and `gitleaks`: secret scanners' reports as `secret.detected`
events -- fingerprints and locations, never the secret value.

`detect-secrets scan` (and a `.secrets.baseline`, the same format): `{version, results:
{file: [{type, filename, hashed_secret, is_verified, line_number}]}, generated_at}`.
Fingerprint = `hashed_secret` (detect-secrets' SHA-1 of the secret), rule = `type`. The same
secret found by several detectors (AWS key, high entropy, keyword) is one fingerprint, so
M10 counts it once. Entries audited as not secrets (`is_secret: false`) are counted, not
imported. Time: `generated_at`.

`gitleaks detect --report-format json` (also `gitleaks dir` / `git`): a list of findings
`{RuleID, Description, File, StartLine, EndLine, Commit, Fingerprint, Secret, Match, ...}`.
`Secret` and `Match` hold the secret: they are removed from each finding before anything
else reads it (as are `Line` and `Context`, which newer versions may add, and the author's
name, e-mail and commit message, which are not needed). Fingerprint = a BLAKE2b-128 hash of
gitleaks' `Fingerprint` (`<commit>:<file>:<rule>:<line>`, `<file>:<rule>:<line>` without
git; built the same way when the report has none): as text it would not survive the
collector's value redaction, which reads `aws-access-token:2` as a token and its value.
Rule = `RuleID`; the commit goes in `vcs.ref.head.revision`, the line in `code.line.number`.
Time: the import's (`--at`).

Both: engine `detect-secrets` / `gitleaks`, policy id = the rule, severity `high`
(`critical` when detect-secrets verified the secret live), file and line, the repository
from `--repository` or the CI's environment. An event's id is its scan and finding, so
importing a report again stores nothing twice while a later scan reports the secret again.
"""

from __future__ import annotations

import json

from importers import ci_runs
from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.records import Event, stable_id

SEVERITY, VERIFIED_SEVERITY = "high", "critical"
GITLEAKS_DROPPED = ("Secret", "Match", "Line", "Context", "Author", "Email", "Message")


def parse_detect_secrets(document: Document, options: Options) -> Parsed:
    root = document.json()
    root.mapping()
    results = root.child("results")
    if not results.is_mapping():
        raise results.fail("an object of file -> findings (detect-secrets scan output)",
                           results.value)
    at = root.time_ms("generated_at") or options.at_ms
    scan = ci_runs.scan_id("detect-secrets", document, options.facts)
    out = Parsed()
    for file in results.value:
        for finding in results.items(file):
            event = _detect_secrets(finding, file, scan, at, out)
            if event is not None:
                out.events.append(event)
    return out


def _detect_secrets(finding: Node, file: str, scan: str, at: int, out: Parsed
                    ) -> Event | None:
    finding.mapping()
    fingerprint = finding.text("hashed_secret", required=True)
    rule = finding.text("type", required=True)
    line = finding.integer("line_number")
    path = finding.text("filename") or file
    if finding.flag("is_secret") is False:
        out.skipped["findings audited as not secrets"] += 1
        return None
    out.objects += 1
    verified = bool(finding.flag("is_verified"))
    uid = stable_id("detect-secrets", scan, path, fingerprint, rule, line)
    return Event("secret.detected", _attributes(
        "detect-secrets", fingerprint, rule, rule, path, line,
        VERIFIED_SEVERITY if verified else SEVERITY), at, uid)


def parse_gitleaks(document: Document, options: Options) -> Parsed:
    root = document.json()
    if not isinstance(root.value, list):
        raise root.fail("a gitleaks JSON report: a list of findings [{RuleID, File, ...}]",
                        root.value)
    for item in root.value:  # the secret out first: nothing below ever sees it
        if isinstance(item, dict):
            for key in GITLEAKS_DROPPED:
                item.pop(key, None)
    cleaned = Document(document.name, json.dumps(root.value, sort_keys=True))
    scan = ci_runs.scan_id("gitleaks", cleaned, options.facts)
    out = Parsed()
    for i, value in enumerate(root.value):
        out.events.append(_gitleaks(Node(root.source, f"$[{i}]", value), scan, options))
        out.objects += 1
    return out


def _gitleaks(finding: Node, scan: str, options: Options) -> Event:
    finding.mapping()
    rule = finding.text("RuleID", required=True)
    path = finding.text("File", required=True)
    line = finding.integer("StartLine")
    commit = finding.text("Commit")
    native = finding.text("Fingerprint") or ":".join(
        str(p) for p in (commit, path, rule, line) if p not in ("", None))
    fingerprint = stable_id("gitleaks", native)
    attrs = _attributes("gitleaks", fingerprint, rule, finding.text("Description") or rule,
                        path, line, SEVERITY)
    attrs["vcs.ref.head.revision"] = commit
    attrs["policy.tags"] = ",".join(str(t.value) for t in finding.items("Tags"))
    uid = stable_id("gitleaks", scan, fingerprint, path, rule, line)
    return Event("secret.detected", attrs, options.at_ms, uid)


def _attributes(engine: str, fingerprint: str, rule: str, reason: str, path: str,
                line: int | None, severity: str) -> dict:
    return {"policy.engine": engine, "policy.id": rule, "secret.fingerprint": fingerprint,
            "secret.rule": rule, "policy.severity": severity, "policy.reason": reason,
            "code.file.path": path, "code.line.number": line,
            "policy.resource.kind": "file", "policy.resource.name": path,
            "policy.resource.id": f"{path}:{line}" if line is not None else path}
