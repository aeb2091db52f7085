"""KIND `inventory`: the workloads that exist, as `workload.inventory` reports (the
denominators of coverage M2 and SBOM coverage M9).

Three shapes:
* CSV with a header: `workload_id` required; optional `team`, `enforced` (true/false),
  `image`, `namespace`, `cluster`, `environment`, `service`, `kind`, `name`.
* JSON: an array of objects with those keys (or `{"workloads": [...]}`).
* `kubectl get deploy,sts,ds -A -o json`: a List of workloads. The id is
  `<cluster>/<namespace>/<kind>/<name>`; the team is the label `--team-label` (default `team`)
  of the workload, else its annotation, else its pod template's label; `workload.enforced` the
  label or annotation `--enforced-label` (default `policyscope.io/enforced`: true / false;
  absent: unknown); the image is the first container's (all of them in `container.images`).

An inventory has no time of its own: every report is at the import's time (`--at`, default
now) and its id is its content and that time, so the same import at the same `--at` stores
once and a later import is a new observation (M2 reads each workload's latest report).
"""

from __future__ import annotations

from importers.documents import Document, Node
from importers.errors import MalformedInput
from importers.parsing import Options, Parsed
from importers.records import Event, stable_id

COLUMNS = {"workload_id": "workload.id", "team": "team.name", "image": "artifact.image",
           "namespace": "k8s.namespace.name", "cluster": "k8s.cluster.name",
           "environment": "deployment.environment.name", "service": "service.name",
           "kind": "policy.resource.kind", "name": "policy.resource.name"}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
                  "Pod")
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def parse(document: Document, options: Options) -> Parsed:
    out = Parsed()
    if document.text.lstrip()[:1] not in ("[", "{"):
        for line, row in document.csv_rows(("workload_id",)):
            _row(row, f"line {line}", document, options, out)
        return out
    root = document.json()
    if isinstance(root.value, list):
        entries = [Node(root.source, f"$[{i}]", v) for i, v in enumerate(root.value)]
    elif root.is_mapping() and "workloads" in root.value:
        entries = root.items("workloads", required=True)
    elif root.is_mapping() and "items" in root.value:
        for item in root.items("items", required=True):
            _kubernetes(item, options, out)
        return out
    else:
        raise root.fail("a CSV file, a JSON array of workloads, {\"workloads\": [...]} or a "
                        "kubectl List", root.value)
    for entry in entries:
        entry.mapping()
        row = {}
        for key in COLUMNS:
            row[key] = entry.text(key)
        enforced = entry.child("enforced").value
        if enforced is not None and not isinstance(enforced, bool):
            raise entry.child("enforced").fail("true or false", enforced)
        row["enforced"] = "" if enforced is None else str(enforced).lower()
        if not row["workload_id"]:
            raise entry.child("workload_id").fail("a non-empty string")
        _row(row, entry.path, document, options, out)
    return out


def _row(row: dict[str, str], position: str, document: Document, options: Options,
         out: Parsed) -> None:
    out.objects += 1
    if not row.get("workload_id"):
        raise MalformedInput(document.name, position, "a workload_id")
    attrs = {attr: row.get(column, "") for column, attr in COLUMNS.items()}
    enforced = (row.get("enforced") or "").lower()
    if enforced:
        if enforced not in BOOLEANS:
            raise MalformedInput(document.name, f"{position}: enforced", "true or false",
                                 row["enforced"])
        attrs["workload.enforced"] = BOOLEANS[enforced]
    _report(attrs, options, out)


def _kubernetes(item: Node, options: Options, out: Parsed) -> None:
    item.mapping()
    kind = item.text("kind", required=True)
    if kind not in WORKLOAD_KINDS:
        out.skipped[f"{kind} objects (not workloads)"] += 1
        return
    meta = item.child("metadata")
    name, namespace = meta.text("name", required=True), meta.text("namespace")
    labels, annotations = meta.labels("labels"), meta.labels("annotations")
    template = item.child("spec").child("template")
    if kind == "CronJob":
        template = item.child("spec").child("jobTemplate").child("spec").child("template")
    pod_spec = item.child("spec") if kind == "Pod" else template.child("spec")
    pod_labels = template.child("metadata").labels("labels") if kind != "Pod" else {}
    images = [c.text("image") for c in pod_spec.items("containers")] if \
        pod_spec.is_mapping() else []
    team = labels.get(options.team_label) or annotations.get(options.team_label) or \
        pod_labels.get(options.team_label, "")
    cluster = options.facts.cluster
    attrs = {"workload.id": "/".join((cluster or "-", namespace or "-", kind, name)),
             "team.name": team, "k8s.namespace.name": namespace,
             "policy.resource.kind": kind, "policy.resource.name": name,
             "artifact.image": images[0] if images else "",
             "container.images": images if len(images) > 1 else None}
    enforced = (labels.get(options.enforced_label) or
                annotations.get(options.enforced_label) or "").lower()
    if enforced in BOOLEANS:
        attrs["workload.enforced"] = BOOLEANS[enforced]
    out.objects += 1
    _report(attrs, options, out)


def _report(attrs: dict, options: Options, out: Parsed) -> None:
    attrs = {k: v for k, v in attrs.items() if v not in (None, "")}
    uid = stable_id("inventory", options.facts.resource(), attrs, options.at_ms)
    out.events.append(Event("workload.inventory", attrs, options.at_ms, uid))
