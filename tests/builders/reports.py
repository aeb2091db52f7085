"""Kubernetes policy reports as Kyverno (1.10+) and Gatekeeper write them, for the importer
tests and the import benchmark: one PolicyReport per resource (named by the resource's uid,
`scope` the resource, results without `resources`), a `kubectl get ... -o json` List around
them, and Gatekeeper constraints with their audit status."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Iterable

KYVERNO_POLICIES = {  # Kyverno's sample policies: policy -> (rule, category, severity, message)
    "require-labels": ("check-for-labels", "Best Practices", "medium",
                       "validation error: The label `app.kubernetes.io/name` is required. "
                       "rule check-for-labels failed at path /metadata/labels/"),
    "disallow-privileged-containers": (
        "privileged-containers", "Pod Security Standards (Baseline)", "high",
        "validation error: Privileged mode is disallowed. The fields "
        "spec.containers[*].securityContext.privileged must be unset or set to `false`. "
        "rule privileged-containers failed at path /spec/containers/0/securityContext/"),
    "disallow-latest-tag": ("validate-image-tag", "Best Practices", "medium",
                            "validation error: Using a mutable image tag e.g. 'latest' is not "
                            "allowed. rule validate-image-tag failed at path "
                            "/spec/containers/0/image/"),
}


def seconds(when: datetime) -> dict:
    return {"nanos": 0, "seconds": int(when.timestamp())}


def resource_uid(namespace: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{namespace}/{name}"))


def result(policy: str, outcome: str, when: datetime, *, scored: bool = True) -> dict:
    rule, category, severity, message = KYVERNO_POLICIES[policy]
    entry = {"category": category, "message": message if outcome == "fail" else
             f"validation rule '{rule}' passed.", "policy": policy, "result": outcome,
             "rule": rule, "scored": scored, "severity": severity, "source": "kyverno",
             "timestamp": seconds(when)}
    if not scored:
        entry["properties"] = {"process": "background scan"}
    return entry


def pod_report(namespace: str, pod: str, results: list[dict]) -> dict:
    """A Kyverno per-resource PolicyReport of a Pod."""
    uid = resource_uid(namespace, pod)
    summary = {k: sum(1 for r in results if r["result"] == k)
               for k in ("error", "fail", "pass", "skip", "warn")}
    return {
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {
            "creationTimestamp": "2024-05-01T09:00:00Z", "generation": 2,
            "labels": {"app.kubernetes.io/managed-by": "kyverno"},
            "name": uid, "namespace": namespace,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid}],
            "resourceVersion": "48213", "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, uid))},
        "results": results,
        "scope": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": namespace,
                  "uid": uid},
        "summary": summary,
    }


def report_list(reports: Iterable[dict]) -> dict:
    return {"apiVersion": "v1", "items": list(reports), "kind": "List",
            "metadata": {"resourceVersion": ""}}


def constraint(name: str, kind: str, violations: list[dict], *, total: int | None = None,
               audited: datetime, action: str = "deny", labels: dict | None = None) -> dict:
    """A Gatekeeper constraint with its audit status (`totalViolations` defaults to the
    number listed; more is what Gatekeeper reports when it capped the list)."""
    return {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
        "metadata": {"name": name, "labels": labels or {}, "annotations": {},
                     "generation": 1, "resourceVersion": "9021", "uid": str(uuid.uuid4())},
        "spec": {"enforcementAction": action,
                 "match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}},
        "status": {
            "auditTimestamp": audited.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "byPod": [{"constraintUID": "c1", "enforced": True, "id": "gatekeeper-audit-7c84869",
                       "observedGeneration": 1, "operations": ["audit", "status"]}],
            "totalViolations": len(violations) if total is None else total,
            "violations": violations},
    }


def violation(namespace: str, name: str, message: str, action: str = "deny") -> dict:
    return {"enforcementAction": action, "group": "", "kind": "Pod", "message": message,
            "name": name, "namespace": namespace, "version": "v1"}
