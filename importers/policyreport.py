"""KIND `policyreport`: Kubernetes PolicyReport / ClusterPolicyReport (`wgpolicyk8s.io/
v1alpha2`, also `v1beta1`) and OpenReports Report / ClusterReport (`openreports.io/
v1alpha1`): one object, or a `kubectl get ... -o json` List of them.

Each result is a `policy.decision` per resource it names (enforcement `audit`: reports hold
background and audit results, not admission answers):

    result  outcome  a finding (violation lifecycle)?
    pass    allow    no
    fail    deny     yes -- unless `scored: false`, then outcome warn and no finding
    warn    warn     no (a warning is not a failure)
    error   error    no
    skip    --       not imported: the rule did not apply, so it is no evaluation
                     (counted as skipped)

A result without `resources` is about the report's `scope` (Kyverno 1.10+ writes one report
per resource, its results without resources), else its `scopeSelector`.

Each report is a state-only source, `policyreport:<cluster>/<namespace>/<report name>`
(`-` for a cluster-scoped report's namespace): its failing results are the findings diffed
against the previous import (importers/diff.py), a finding being (policy, rule, resource).
With `--prune`, a List is taken as the cluster's complete set of reports: a report stored
before but no longer in it (deleted with its resource) is diffed as empty.
"""

from __future__ import annotations

from importers.diff import Finding, Listing
from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.records import Event, stable_id
from schemas.events import SEVERITIES

KINDS = {
    "wgpolicyk8s.io/v1alpha2": ("PolicyReport", "ClusterPolicyReport"),
    "wgpolicyk8s.io/v1beta1": ("PolicyReport", "ClusterPolicyReport"),
    "openreports.io/v1alpha1": ("Report", "ClusterReport"),
}
RESULTS = ("pass", "fail", "warn", "error", "skip")
OUTCOMES = {"pass": "allow", "fail": "deny", "warn": "warn", "error": "error"}


def source_prefix(cluster: str) -> str:
    return f"policyreport:{cluster or '-'}/"


def parse(document: Document, options: Options) -> Parsed:
    root = document.json()
    out = Parsed()
    reports = _reports(root)
    for report in reports:
        _report(report, options, out)
    if options.prune and root.is_mapping() and "items" in root.value:
        out.prune_prefixes.append(source_prefix(options.facts.cluster))
    return out


def _reports(root: Node) -> list[Node]:
    value = root.mapping()
    if str(value.get("kind", "")).endswith("List") and "items" in value:
        return root.items("items", required=True)
    return [root]


def _report(report: Node, options: Options, out: Parsed) -> None:
    report.mapping()
    api = report.text("apiVersion", required=True)
    if api not in KINDS:
        raise report.child("apiVersion").fail("one of " + ", ".join(KINDS), api)
    report.one_of("kind", KINDS[api])
    meta = report.child("metadata")
    meta.mapping()
    name = meta.text("name", required=True)
    namespace = meta.text("namespace")
    out.objects += 1
    key = f"{source_prefix(options.facts.cluster)}{namespace or '-'}/{name}"
    scope = _subject(report.child("scope")) if report.child("scope").value else None
    if scope is None and report.child("scopeSelector").value is not None:
        selector = report.child("scopeSelector").mapping()
        scope = {"policy.resource.kind": "", "policy.resource.name": "",
                 "policy.resource.id": "selector:" + stable_id(selector)[:16],
                 "k8s.namespace.name": namespace}
    findings: list[Finding] = []
    for result in report.items("results"):
        _result(result, key, namespace, scope, options, out, findings)
    out.listings.append(Listing(key, tuple(findings), options.at_ms))


def _subject(ref: Node) -> dict[str, str]:
    """A Kubernetes object reference as the contract's resource attributes."""
    ref.mapping()
    kind, name, namespace = ref.text("kind"), ref.text("name"), ref.text("namespace")
    api = ref.text("apiVersion")
    identity = "/".join(p for p in (api, kind, namespace, name) if p) or ref.text("uid")
    if not identity:
        raise ref.fail("an object reference with kind and name (or uid)", ref.value)
    return {"policy.resource.kind": kind, "policy.resource.name": name,
            "policy.resource.id": identity, "k8s.namespace.name": namespace}


def _result(result: Node, key: str, namespace: str, scope: dict | None, options: Options,
            out: Parsed, findings: list[Finding]) -> None:
    result.mapping()
    policy = result.text("policy", required=True)
    verdict = result.one_of("result", RESULTS)
    if verdict == "skip":
        out.skipped["skip results"] += 1
        return
    rule = result.text("rule")
    severity = result.text("severity").lower()
    if severity and severity not in SEVERITIES:
        raise result.child("severity").fail("one of " + ", ".join(SEVERITIES), severity)
    scored = result.flag("scored")
    stamp = result.time_ms("timestamp")
    resources = [_subject(r) for r in result.items("resources")]
    if not resources:
        if scope is None:
            raise result.fail("`resources`, or a report `scope` / `scopeSelector` they belong "
                              "to")
        resources = [scope]
    failing = verdict == "fail" and scored is not False
    outcome = "warn" if verdict == "fail" and not failing else OUTCOMES[verdict]
    common = {"policy.id": policy, "policy.rule": rule, "policy.engine": result.text("source")
              or "kyverno", "policy.enforcement": "audit", "policy.severity": severity,
              "policy.reason": result.text("message"), "policy.category": result.text("category")}
    for subject in resources:
        attrs = {**common, **subject}
        attrs["k8s.namespace.name"] = subject["k8s.namespace.name"] or namespace
        uid = stable_id("policyreport", key, policy, rule, subject["policy.resource.id"], verdict,
                        stamp, attrs["policy.reason"])
        out.events.append(Event("policy.decision", {**attrs, "policy.outcome": outcome},
                                stamp if stamp is not None else options.at_ms, uid))
        if failing:
            finding_id = f"{policy}/{rule}/{subject['policy.resource.id']}"
            findings.append(Finding(finding_id, attrs, stamp))
