"""Exceptions as code: for a false-positive group (subjects of one fingerprint whose current
verdict is `false_positive`), propose the policy exception that would stop it, as text to
download and review in the policy repository. One proposal per group, by engine:

- **Kyverno**: a `PolicyException` (`kyverno.io/v2`, the served and stored version of the CRD
  `policyexceptions.kyverno.io`): `spec.exceptions[{policyName, ruleNames}]` (both required)
  and `spec.match.any[{resources: {kinds, namespaces, names}}]`. It lives in the namespace
  Kyverno is configured to read exceptions from (`--exceptionNamespace`;
  `exception_namespace` here).
- **Gatekeeper**: the constraint with `spec.match.excludedNamespaces` listing the group's
  namespaces, to merge into the constraint's manifest (a merge patch replaces the whole list:
  keep the namespaces it already excludes). The constraint is named by the policy id, its kind
  by the `Kind/name` form of the policy id or else by the rule. Gatekeeper excludes whole
  namespaces, so the proposal is wider than the one resource: the notes say so.
- **OPA** (and conftest): a JSON Patch (RFC 6902) for OPA's data API adding one exemption,
  keyed by fingerprint, under `data.policyscope.exemptions`, which the policy consults.

Strings from events (policy ids, names, reasons) go only into YAML / JSON values, escaped by
the serializer, never into comments or keys built by hand.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

import yaml
from clickhouse_connect.driver.client import Client

from triage import store
from triage.fingerprint import Fingerprint
from triage.model import Filters, check_range

KYVERNO_API = "kyverno.io/v2"
GATEKEEPER_API = "constraints.gatekeeper.sh/v1beta1"
OPA_DATA_PATH = "/policyscope/exemptions"  # data.policyscope.exemptions
ENGINES = ("kyverno", "gatekeeper", "opa")
_ALIASES = {"conftest": "opa"}  # conftest runs Rego with data documents, as OPA does
KIND_PLACEHOLDER = "ReplaceWithConstraintKind"


class UnsupportedEngine(ValueError):
    """No exception format for the group's engine (or it has several): pass `engine=`."""


@dataclass(frozen=True)
class FalsePositiveGroup:
    """Subjects of one fingerprint whose current verdict is false_positive, with what an
    exception needs: where they were (namespaces, clusters, environments, teams), which
    engines judged them, who labelled them and why (up to 10 reasons)."""

    fingerprint: Fingerprint
    subjects: int
    propagated: int
    newest: datetime
    engines: tuple[str, ...]
    namespaces: tuple[str, ...]
    clusters: tuple[str, ...]
    environments: tuple[str, ...]
    teams: tuple[str, ...]
    analysts: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Proposal:
    """One proposed exception: its `engine`, the group's `fingerprint` id, a file name for the
    policy repository, the media type and `text` of the file, the same as a `document`
    (a dict, or for OPA a list of patch operations), and `notes` for the reviewer."""

    engine: str
    fingerprint: str
    filename: str
    media_type: str
    text: str
    document: dict | list
    notes: tuple[str, ...]


def false_positive_groups(client: Client, start: datetime, end: datetime,
                          filters: Filters = Filters(), *, limit: int = 100
                          ) -> list[FalsePositiveGroup]:
    """The false-positive groups among subjects timed in [start, end), largest first."""
    start, end = check_range(start, end)
    return [FalsePositiveGroup(
        fingerprint=Fingerprint(r["policy_id"], r["rule"], r["resource_kind"],
                                r["resource_name"], r["subject_reason"]),
        subjects=int(r["subjects"]), propagated=int(r["propagated"]), newest=r["newest"],
        **{k: tuple(v for v in r[k] if v) for k in (
            "engines", "namespaces", "clusters", "environments", "teams", "analysts",
            "reasons")}) for r in store.false_positive_groups(client, start, end, filters,
                                                              limit)]


def engine_of(group: FalsePositiveGroup) -> str:
    """The exception format for the group's engine; UnsupportedEngine when it has none or
    several."""
    engines = {_ALIASES.get(e, e) for e in group.engines}
    if len(engines) == 1 and next(iter(engines)) in ENGINES:
        return next(iter(engines))
    raise UnsupportedEngine(
        f"false-positive group {group.fingerprint.id} was judged by "
        f"{', '.join(group.engines) or 'no engine'}; exceptions can be proposed for "
        f"{', '.join(ENGINES)} (pass engine= to choose)")


def propose(group: FalsePositiveGroup, *, engine: str | None = None,
            exception_namespace: str = "kyverno", proposed_by: str = "") -> Proposal:
    """The exception for one false-positive group, for `engine` (default: the group's);
    a Kyverno PolicyException goes in `exception_namespace`. `proposed_by` is recorded in
    its annotations."""
    chosen = _ALIASES.get(engine, engine) if engine is not None else engine_of(group)
    if chosen not in ENGINES:
        raise UnsupportedEngine(f"no exception format for engine {engine!r}; expected one "
                                f"of {', '.join(ENGINES)}")
    return {"kyverno": _kyverno, "gatekeeper": _gatekeeper, "opa": _opa}[chosen](
        group, namespace=exception_namespace, proposed_by=proposed_by)


def propose_all(groups: list[FalsePositiveGroup], *, engine: str | None = None,
                exception_namespace: str = "kyverno", proposed_by: str = ""
                ) -> list[Proposal]:
    """One proposal per group, in the groups' order (see `propose`)."""
    return [propose(g, engine=engine, exception_namespace=exception_namespace,
                    proposed_by=proposed_by) for g in groups]


def _slug(text: str, limit: int = 40) -> str:
    """A DNS-1123 label fragment: lower case, [a-z0-9-], no leading / trailing '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].strip("-") or "policy"


def _annotations(group: FalsePositiveGroup, proposed_by: str) -> dict[str, str]:
    return {"policyscope.io/fingerprint": group.fingerprint.id,
            "policyscope.io/false-positives": str(group.subjects),
            "policyscope.io/labelled-by": ", ".join(group.analysts),
            "policyscope.io/reasons": " | ".join(group.reasons),
            "policyscope.io/proposed-by": proposed_by}


def _header(group: FalsePositiveGroup, what: str) -> str:
    # only generated text here (hex id, counts): event strings never reach a comment
    return (f"# Proposed by PolicyScope: {what} for false-positive group "
            f"{group.fingerprint.id} ({group.subjects} false positives).\n"
            "# Review before applying: an exception stops enforcement for what it matches.\n")


def _kyverno(group: FalsePositiveGroup, *, namespace: str, proposed_by: str) -> Proposal:
    f = group.fingerprint
    resources: dict[str, list[str]] = {}
    if f.resource_kind:
        resources["kinds"] = [f.resource_kind]
    if group.namespaces:
        resources["namespaces"] = list(group.namespaces)
    if f.resource_name:
        resources["names"] = [f.resource_name]
    notes = ["Kyverno reads PolicyExceptions only when enabled (--enablePolicyException) and "
             f"only from the namespace set by --exceptionNamespace (here {namespace!r})."]
    if not f.rule:
        notes.append("The events named no rule: ruleNames is '*', every rule of the policy.")
    if not resources:
        resources["kinds"] = ["*"]
        notes.append("The events named no resource: the exception matches every resource.")
    document = {
        "apiVersion": KYVERNO_API, "kind": "PolicyException",
        "metadata": {"name": f"{_slug(f.policy_id)}-fp-{f.id[:10]}", "namespace": namespace,
                     "annotations": _annotations(group, proposed_by)},
        "spec": {"exceptions": [{"policyName": f.policy_id, "ruleNames": [f.rule or "*"]}],
                 "match": {"any": [{"resources": resources}]}}}
    return Proposal("kyverno", f.id, f"policyexception-{document['metadata']['name']}.yaml",
                    "application/yaml", _header(group, "a Kyverno PolicyException")
                    + yaml.safe_dump(document, sort_keys=False, allow_unicode=True), document,
                    tuple(notes))


def _gatekeeper(group: FalsePositiveGroup, *, namespace: str, proposed_by: str) -> Proposal:
    f = group.fingerprint
    kind, _, name = f.policy_id.rpartition("/")
    kind = kind or (f.rule if re.fullmatch(r"[A-Z][A-Za-z0-9]*", f.rule) else "")
    notes = ["Merge into the constraint's manifest: a merge patch replaces the whole "
             "excludedNamespaces list, so keep the namespaces it already excludes.",
             "excludedNamespaces exempts every resource of those namespaces from this "
             "constraint, not only the one resource of the group."]
    if not kind:
        kind = KIND_PLACEHOLDER
        notes.append("The events named no constraint kind: set `kind` to the constraint's "
                     "ConstraintTemplate kind.")
    if not group.namespaces:
        notes.append("The false positives carry no namespace: there is nothing to exclude "
                     "by namespace; consider the constraint's match.name or its template.")
    document = {"apiVersion": GATEKEEPER_API, "kind": kind,
                "metadata": {"name": name, "annotations": _annotations(group, proposed_by)},
                "spec": {"match": {"excludedNamespaces": list(group.namespaces)}}}
    return Proposal("gatekeeper", f.id, f"constraint-{_slug(name)}-fp-{f.id[:10]}.yaml",
                    "application/yaml",
                    _header(group, "a Gatekeeper constraint match.excludedNamespaces patch")
                    + yaml.safe_dump(document, sort_keys=False, allow_unicode=True), document,
                    tuple(notes))


def _opa(group: FalsePositiveGroup, *, namespace: str, proposed_by: str) -> Proposal:
    f = group.fingerprint
    exemption = {"policy": f.policy_id, "rule": f.rule, "kind": f.resource_kind,
                 "name": f.resource_name, "namespaces": list(group.namespaces),
                 "reason": " | ".join(group.reasons), "fingerprint": f.id,
                 "false_positives": group.subjects, "labelled_by": list(group.analysts),
                 "proposed_by": proposed_by}
    document = [{"op": "add", "path": f"{OPA_DATA_PATH}/{f.id}", "value": exemption}]
    notes = ("Send as `PATCH /v1/data` with Content-Type application/json-patch+json; "
             "data.policyscope.exemptions must exist (PUT /v1/data/policyscope/exemptions "
             "with {} once), or merge the value into the bundle's data.json under that path.",
             "The policy must consult it, e.g.: exempt if { some e in "
             "data.policyscope.exemptions; e.policy == <this policy>; e.kind == "
             "input.request.kind.kind; e.name == input.request.object.metadata.name }.")
    return Proposal("opa", f.id, f"opa-exemption-{_slug(f.policy_id)}-fp-{f.id[:10]}.json",
                    "application/json-patch+json",
                    json.dumps(document, indent=2, ensure_ascii=False) + "\n", document, notes)
