"""KIND `checkov`: `checkov -o json` -- one check-type object (`{check_type, results,
summary}`), a list of them when several frameworks ran, or the bare summary checkov prints
when it found nothing to scan.

Each passed / failed check is a `policy.decision` (engine `checkov`, enforcement `enforce`:
a pipeline step that fails the job): policy id = `check_id`, outcome allow / deny, reason =
`check_name`, resource = the Terraform (or other) resource (`aws_s3_bucket.data`: kind
`aws_s3_bucket`, id `<file_path>:<resource>`), file and first line, `guideline` when checkov
has one. Severity is checkov's when it reports one (it does only with a Prisma Cloud API
key); else `medium`, like Gatekeeper's default: an unrated check is not a harmless one.
The run is one `deploy.gate` (importers/ci_runs.py): blocked when any check failed.
Skipped (suppressed) checks and files checkov could not parse are counted, not imported.

Use `-o json` without `--quiet`: `--quiet` leaves the passed checks out, and the decisions
then hold only failures.
"""

from __future__ import annotations

from importers import ci_runs
from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.records import Event, stable_id
from schemas.events import SEVERITIES

ENGINE = "checkov"
DEFAULT_SEVERITY = "medium"
ALIASES = {"informational": "info", "moderate": "medium"}
LISTS = (("passed_checks", "allow"), ("failed_checks", "deny"))


def parse(document: Document, options: Options) -> Parsed:
    root = document.json()
    reports = ([Node(root.source, f"$[{i}]", v) for i, v in enumerate(root.value)]
               if isinstance(root.value, list) else [root])
    deploy = ci_runs.deploy_id(ENGINE, document, options.facts)
    scan = ci_runs.scan_id(ENGINE, document, options.facts)
    out = Parsed()
    decisions: list[Event] = []
    for report in reports:
        decisions += _report(report, deploy, scan, options, out)
    out.events += decisions
    out.events.append(ci_runs.gate(ENGINE, ENGINE, deploy, decisions, options.at_ms,
                                   scan=scan))
    return out


def _report(report: Node, deploy: str, scan: str, options: Options, out: Parsed
            ) -> list[Event]:
    value = report.mapping()
    if "results" not in value:
        if isinstance(value.get("passed"), int) and isinstance(value.get("failed"), int):
            return []  # the summary of a run that found nothing to check
        raise report.fail("a checkov -o json report: {check_type, results, summary}", value)
    check_type = report.text("check_type", required=True)
    results = report.child("results")
    results.mapping()
    out.objects += 1
    events = []
    for key, outcome in LISTS:
        for check in results.items(key):
            events.append(_check(check, check_type, outcome, deploy, scan, options))
    if skipped := len(results.items("skipped_checks")):
        out.skipped["skipped (suppressed) checks"] += skipped
    if errors := len(results.items("parsing_errors")):
        out.skipped["files checkov could not parse"] += errors
    return events


def _check(check: Node, check_type: str, outcome: str, deploy: str, scan: str,
           options: Options) -> Event:
    check.mapping()
    check_id = check.text("check_id", required=True)
    resource = check.text("resource")
    file_path = check.text("file_path")
    lines = _line_range(check)
    severity = _severity(check)
    parts = resource.split(".")
    attrs = {
        "policy.engine": ENGINE, "policy.id": check_id, "policy.enforcement": "enforce",
        "policy.outcome": outcome, "policy.severity": severity,
        "policy.reason": check.text("check_name"),
        "policy.resource.kind": parts[-2] if len(parts) >= 2 else "",
        "policy.resource.name": resource,
        "policy.resource.id": f"{file_path}:{resource}" if resource else file_path,
        "code.file.path": file_path, "code.line.number": lines[0] if lines else None,
        "policy.guideline": check.text("guideline"), "checkov.check_type": check_type,
        "deploy.id": deploy,
    }
    uid = stable_id(ENGINE, scan, check_type, check_id, resource, file_path, lines, outcome)
    return Event("policy.decision", attrs, options.at_ms, uid)


def _line_range(check: Node) -> list[int]:
    node = check.child("file_line_range")
    if node.value is None:
        return []
    if not (isinstance(node.value, list) and len(node.value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in node.value)):
        raise node.fail("[first line, last line]", node.value)
    return node.value


def _severity(check: Node) -> str:
    text = check.text("severity").strip().lower()
    text = ALIASES.get(text, text)
    if not text:
        return DEFAULT_SEVERITY
    if text not in SEVERITIES:
        raise check.child("severity").fail("null or one of CRITICAL, HIGH, MEDIUM, LOW, INFO",
                                           check.child("severity").value)
    return text
