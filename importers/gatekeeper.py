"""KIND `gatekeeper`: OPA Gatekeeper's three outputs, told apart by shape.

* Constraint status (`kubectl get constraints -o json`: a List of objects of
  `constraints.gatekeeper.sh/*`): every listed `status.violations[]` entry is a
  `policy.decision` of the audit run at `status.auditTimestamp`, and each constraint is a
  state-only source, `gatekeeper:<cluster>/<ConstraintKind>/<name>`, diffed at that time into
  opened / remediated violations (a finding: the violating resource). Gatekeeper lists at most
  `--constraint-violations-limit` (20) violations while `status.totalViolations` counts all:
  when it counts more than are listed, the listing is capped and an unlisted violation is
  never taken as remediated (importers/diff.py). A constraint without `totalViolations` is
  treated as capped too; one the audit has not reached yet (no `auditTimestamp`) is skipped.
* Audit log lines (the audit pod's JSON lines): those with `process: audit` and
  `event_type: violation_audited` are decisions at their `ts`; other lines are skipped.
* Export messages (the export API: the Dapr pub/sub or disk driver, camelCase fields,
  `eventType: violation_audited`, optionally inside a CloudEvent's `data`): decisions too.
  A violation reported by an audit log line and by an export message of the same audit run
  has the same event id, so importing both stores it once.

Outcome: `deny` for constraints enforcing (`deny`) or dry-running (`dryrun`), `warn` for
`warn`; the enforcement mode is enforce / dryrun / warn accordingly. Policy id: the
constraint's name; rule: its kind (the template). Severity: the constraint's label or
annotation `policyscope.io/severity`, else `severity` (labels before annotations), else medium.
"""

from __future__ import annotations

from importers.diff import Finding, Listing
from importers.documents import Document, Node
from importers.parsing import Options, Parsed, severity_of
from importers.records import Event, stable_id

CONSTRAINT_GROUP = "constraints.gatekeeper.sh/"
ACTIONS = {"deny": ("deny", "enforce"), "dryrun": ("deny", "dryrun"), "warn": ("warn", "warn"),
           "scoped": ("deny", "enforce")}


def parse(document: Document, options: Options) -> Parsed:
    out = Parsed()
    if document.looks_like_json_lines():
        for _, node in document.json_lines():
            _message(node, options, out)
        return out
    root = document.json()
    if isinstance(root.value, list):
        for i in range(len(root.value)):
            _message(Node(root.source, f"$[{i}]", root.value[i]), options, out)
        return out
    value = root.mapping()
    if "items" in value and str(value.get("kind", "")).endswith("List"):
        for item in root.items("items", required=True):
            _constraint(item, options, out)
    elif str(value.get("apiVersion", "")).startswith(CONSTRAINT_GROUP):
        _constraint(root, options, out)
    else:
        _message(root, options, out)
    return out


# -- constraint status ----------------------------------------------------------------------
def _constraint(item: Node, options: Options, out: Parsed) -> None:
    item.mapping()
    api = item.text("apiVersion", required=True)
    if not api.startswith(CONSTRAINT_GROUP):
        raise item.child("apiVersion").fail(f"a constraint ({CONSTRAINT_GROUP}...)", api)
    kind = item.text("kind", required=True)
    meta = item.child("metadata")
    name = meta.text("name", required=True)
    out.objects += 1
    severity = severity_of(meta.labels("labels"), meta.labels("annotations"))
    action = item.child("spec").text("enforcementAction", default="deny")
    status = item.child("status")
    if not status.is_mapping() or status.time_ms("auditTimestamp") is None:
        out.skipped["constraints not audited yet"] += 1
        return
    audited = status.time_ms("auditTimestamp")
    total = status.integer("totalViolations")
    listed = status.items("violations")
    key = f"gatekeeper:{options.facts.cluster or '-'}/{kind}/{name}"
    findings = []
    for violation in listed:
        violation.mapping()
        event, subject = _decision(
            options, constraint=name, constraint_kind=kind, severity=severity,
            action=violation.text("enforcementAction") or action,
            kind=violation.text("kind"), namespace=violation.text("namespace"),
            name=violation.text("name", required=True), group=violation.text("group"),
            version=violation.text("version"), message=violation.text("message"),
            audit_id=status.text("auditTimestamp"), time_ms=audited)
        out.events.append(event)
        findings.append(Finding(subject["policy.resource.id"], _finding(event), audited))
    complete = total is not None and len(listed) >= total
    out.listings.append(Listing(key, tuple(findings), audited, complete=complete))


def _finding(event: Event) -> dict:
    return {k: v for k, v in event.attributes.items() if k != "policy.outcome"}


# -- audit log lines and export messages ----------------------------------------------------
def _message(node: Node, options: Options, out: Parsed) -> None:
    value = node.mapping()
    out.objects += 1
    if "data" in value and isinstance(value.get("data"), dict) and "specversion" in value:
        node = node.child("data")  # a CloudEvent envelope (Dapr pub/sub)
        value = node.value
    if "event_type" in value or "process" in value:  # an audit log line
        if value.get("process") != "audit" or value.get("event_type") != "violation_audited":
            out.skipped["log lines other than violation_audited"] += 1
            return
        annotations = node.labels("constraint_annotations")
        event, _ = _decision(
            options, constraint=node.text("constraint_name", required=True),
            constraint_kind=node.text("constraint_kind", required=True),
            severity=severity_of(annotations), action=node.text("constraint_action") or "deny",
            kind=node.text("resource_kind"), namespace=node.text("resource_namespace"),
            name=node.text("resource_name", required=True), group=node.text("resource_group"),
            version=node.text("resource_api_version"), message=node.text("msg"),
            audit_id=node.text("audit_id"),
            time_ms=node.time_ms("ts") or node.time_ms("audit_id") or options.at_ms)
        out.events.append(event)
        return
    if "eventType" in value:
        if value.get("eventType") != "violation_audited":
            out.skipped["export messages other than violation_audited"] += 1
            return
        annotations = node.labels("constraintAnnotations")
        event, _ = _decision(
            options, constraint=node.text("name", required=True),
            constraint_kind=node.text("kind", required=True), severity=severity_of(annotations),
            action=node.text("enforcementAction") or "deny", kind=node.text("resourceKind"),
            namespace=node.text("resourceNamespace"),
            name=node.text("resourceName", required=True), group=node.text("resourceGroup"),
            version=node.text("resourceAPIVersion"), message=node.text("message"),
            audit_id=node.text("id"), time_ms=node.time_ms("id") or options.at_ms)
        out.events.append(event)
        return
    raise node.fail("a Gatekeeper constraint, audit log line (process, event_type) or export "
                    "message (eventType)", value)


def _decision(options: Options, *, constraint: str, constraint_kind: str, severity: str,
              action: str, kind: str, namespace: str, name: str, group: str, version: str,
              message: str, audit_id: str, time_ms: int) -> tuple[Event, dict]:
    outcome, enforcement = ACTIONS.get(action, ("deny", "enforce"))
    api = f"{group}/{version}" if group else version
    subject = {"policy.resource.kind": kind, "policy.resource.name": name,
               "policy.resource.id": "/".join(p for p in (api, kind, namespace, name) if p),
               "k8s.namespace.name": namespace}
    attrs = {"policy.id": constraint, "policy.rule": constraint_kind, "policy.engine":
             "gatekeeper", "policy.outcome": outcome, "policy.enforcement": enforcement,
             "policy.severity": severity, "policy.reason": message, **subject}
    # audit logs and export messages of one run carry the same audit id: the same event id
    uid = stable_id("gatekeeper-audit", options.facts.cluster, audit_id, constraint_kind,
                    constraint, subject["policy.resource.id"], message)
    return Event("policy.decision", attrs, time_ms, uid), subject
