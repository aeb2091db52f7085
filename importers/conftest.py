"""KIND `conftest`: `conftest test --output json` -- a list of check results, one per file
and Rego namespace: `{filename, namespace, successes, failures, warnings, exceptions,
skipped}`, the lists holding `{msg, metadata, loc, outputs}`.

    failures[]    policy.decision deny, one each
    warnings[]    policy.decision warn, one each (a warning does not block)
    exceptions[]  policy.decision allow with `policy.exception` = true: a failure a policy
                  exception let through; the gate is `overridden` when these are all there is
    successes     a count, not a list: that many policy.decision allow, numbered 1..n per
                  file and namespace (conftest does not say which rules passed), so
                  deny / allow ratios over the decisions stay right
    skipped[]     counted, not imported

Policy id: the Rego namespace (`main`), unless the rule's metadata names one (`policy_id`,
else `id`); rule: the metadata's `rule` when given. Reason: `msg`. Resource: the file (and
`loc.line` when the policy reports a location). Severity: the metadata's `severity` when it
is one of critical, high, medium, low, info, else `medium`. Engine `conftest`, enforcement
`enforce`. The whole list is one `deploy.gate` (importers/ci_runs.py).
"""

from __future__ import annotations

from importers import ci_runs
from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.records import Event, stable_id
from schemas.events import SEVERITIES

ENGINE = "conftest"
DEFAULT_SEVERITY = "medium"
LISTS = (("failures", "deny"), ("warnings", "warn"), ("exceptions", "allow"))


def parse(document: Document, options: Options) -> Parsed:
    root = document.json()
    if not isinstance(root.value, list):
        raise root.fail("a conftest --output json list of results "
                        "[{filename, namespace, successes, ...}]", root.value)
    deploy = ci_runs.deploy_id(ENGINE, document, options.facts)
    scan = ci_runs.scan_id(ENGINE, document, options.facts)
    out = Parsed()
    decisions: list[Event] = []
    exceptions = 0
    for i, value in enumerate(root.value):
        check = Node(root.source, f"$[{i}]", value)
        found, excepted = _check(check, deploy, scan, options, out)
        decisions += found
        exceptions += excepted
    out.events += decisions
    out.events.append(ci_runs.gate(ENGINE, ENGINE, deploy, decisions, options.at_ms,
                                   scan=scan, exceptions=exceptions))
    return out


def _check(check: Node, deploy: str, scan: str, options: Options, out: Parsed
           ) -> tuple[list[Event], int]:
    check.mapping()
    filename = check.text("filename", required=True)
    namespace = check.text("namespace", default="main")
    successes = check.integer("successes", default=0)
    if successes < 0:
        raise check.child("successes").fail("a count >= 0", successes)
    out.objects += 1
    base = {"policy.engine": ENGINE, "policy.enforcement": "enforce", "policy.id": namespace,
            "policy.resource.kind": "file", "policy.resource.name": filename,
            "policy.resource.id": filename, "code.file.path": filename, "deploy.id": deploy,
            "conftest.namespace": namespace}
    events = []
    for key, outcome in LISTS:
        for n, result in enumerate(check.items(key)):
            attrs = {**base, **_result(result, filename), "policy.outcome": outcome}
            if key == "exceptions":
                attrs["policy.exception"] = True
            uid = stable_id(ENGINE, scan, filename, namespace, key, n, attrs["policy.reason"])
            events.append(Event("policy.decision", attrs, options.at_ms, uid))
    for n in range(1, successes + 1):
        attrs = {**base, "policy.outcome": "allow", "policy.severity": DEFAULT_SEVERITY,
                 "conftest.success": n}
        uid = stable_id(ENGINE, scan, filename, namespace, "successes", n)
        events.append(Event("policy.decision", attrs, options.at_ms, uid))
    if skipped := len(check.items("skipped")):
        out.skipped["skipped rules"] += skipped
    return events, len(check.items("exceptions"))


def _result(result: Node, filename: str) -> dict:
    result.mapping()
    message = result.text("msg", required=True)
    meta = result.child("metadata")
    if meta.value is not None:
        meta.mapping()
    named = {k: meta.value.get(k) for k in ("policy_id", "id", "rule", "severity")
             if isinstance(meta.value, dict) and isinstance(meta.value.get(k), str)}
    severity = named.get("severity", "").strip().lower()
    attrs = {"policy.reason": message,
             "policy.severity": severity if severity in SEVERITIES else DEFAULT_SEVERITY,
             "policy.rule": named.get("rule", "")}
    if policy := named.get("policy_id") or named.get("id"):
        attrs["policy.id"] = policy
    loc = result.child("loc")
    if loc.value is not None:
        loc.mapping()
        line = loc.integer("line")
        if line is not None:
            attrs["code.line.number"] = line
            attrs["policy.resource.id"] = f"{loc.text('file') or filename}:{line}"
    return attrs
