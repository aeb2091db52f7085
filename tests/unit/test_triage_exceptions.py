"""Exceptions as code (triage/policy_exceptions.py): one proposal per false-positive group, its
text parses back to its document, and each engine's document has the structure the engine
reads. The Kyverno one is checked against `POLICY_EXCEPTION_V2`, the fields and required
properties of the `policyexceptions.kyverno.io` CRD's `v2` schema (its served and stored
version) restated here, stricter where a PolicyScope proposal must be (no unknown fields, at
least one exception, rule and resource filter). With POLICYSCOPE_KYVERNO_CRD naming the CRD
file (`config/crds/kyverno/kyverno.io_policyexceptions.yaml` of github.com/kyverno/kyverno),
it is also validated against the CRD's own openAPIV3Schema."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml

from triage.fingerprint import Fingerprint
from triage.policy_exceptions import (
    FalsePositiveGroup,
    UnsupportedEngine,
    engine_of,
    propose,
    propose_all,
)

pytestmark = pytest.mark.unit

STRINGS = {"type": "array", "items": {"type": "string"}}
RESOURCES = {"type": "object", "additionalProperties": False, "minProperties": 1,
             "properties": {"kinds": STRINGS, "names": STRINGS, "namespaces": STRINGS,
                            "operations": STRINGS, "name": {"type": "string"},
                            "annotations": {"type": "object"}, "selector": {"type": "object"},
                            "namespaceSelector": {"type": "object"}}}
FILTERS = {"type": "array", "minItems": 1, "items": {
    "type": "object", "additionalProperties": False, "required": ["resources"],
    "properties": {"resources": RESOURCES, "subjects": {"type": "array"},
                   "roles": STRINGS, "clusterRoles": STRINGS}}}
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
POLICY_EXCEPTION_V2 = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kyverno.io/v2"}, "kind": {"const": "PolicyException"},
        "metadata": {"type": "object", "required": ["name", "namespace"], "properties": {
            "name": {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 253},
            "namespace": {"type": "string", "minLength": 1},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "spec": {"type": "object", "required": ["exceptions", "match"],
                 "additionalProperties": False, "properties": {
                     "background": {"type": "boolean"}, "conditions": {"type": "object"},
                     "podSecurity": {"type": "array"},
                     "exceptions": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "required": ["policyName", "ruleNames"],
                         "additionalProperties": False, "properties": {
                             "policyName": {"type": "string", "minLength": 1},
                             "ruleNames": {**STRINGS, "minItems": 1}}}},
                     "match": {"type": "object", "additionalProperties": False,
                               "not": {"required": ["any", "all"]},
                               "properties": {"any": FILTERS, "all": FILTERS}}}}}}


def group(policy="require-non-root", rule="check-user", kind="Pod", name="api-7f9",
          reason="runs as root", engines=("kyverno",), namespaces=("shop", "shop-canary"),
          reasons=("istio sidecar runs as root",)) -> FalsePositiveGroup:
    return FalsePositiveGroup(
        fingerprint=Fingerprint(policy, rule, kind, name, reason), subjects=3, propagated=1,
        newest=datetime(2026, 11, 2, 12, tzinfo=timezone.utc), engines=engines,
        namespaces=namespaces, clusters=("eu-1",), environments=("prod",), teams=("payments",),
        analysts=("ana",), reasons=reasons)


def kyverno_errors(document) -> list[str]:
    validator = jsonschema.Draft202012Validator(POLICY_EXCEPTION_V2)
    return sorted(e.message for e in validator.iter_errors(document))


def test_a_kyverno_proposal_is_a_valid_policy_exception_for_the_group():
    proposal = propose(group(), proposed_by="ana")
    assert proposal.engine == "kyverno" and proposal.media_type == "application/yaml"
    assert yaml.safe_load(proposal.text) == proposal.document
    assert kyverno_errors(proposal.document) == []
    doc = proposal.document
    assert doc["spec"]["exceptions"] == [{"policyName": "require-non-root",
                                          "ruleNames": ["check-user"]}]
    assert doc["spec"]["match"] == {"any": [{"resources": {
        "kinds": ["Pod"], "namespaces": ["shop", "shop-canary"], "names": ["api-7f9"]}}]}
    fp = group().fingerprint.id
    assert doc["metadata"]["name"] == f"require-non-root-fp-{fp[:10]}"
    assert doc["metadata"]["namespace"] == "kyverno"
    assert doc["metadata"]["annotations"]["policyscope.io/fingerprint"] == fp
    assert doc["metadata"]["annotations"]["policyscope.io/false-positives"] == "3"
    assert proposal.filename == f"policyexception-require-non-root-fp-{fp[:10]}.yaml"


def test_the_schema_check_can_fail():
    document = propose(group()).document
    broken = {**document, "spec": {**document["spec"], "exceptions": [
        {"policyName": "require-non-root"}], "extra": 1}}
    assert kyverno_errors(broken) == [
        "'ruleNames' is a required property",
        "Additional properties are not allowed ('extra' was unexpected)"]


@pytest.mark.parametrize("fields,check", [
    pytest.param({"rule": ""}, lambda d: d["spec"]["exceptions"][0]["ruleNames"] == ["*"],
                 id="no rule in the events: every rule of the policy"),
    pytest.param({"kind": "", "name": "", "namespaces": ()},
                 lambda d: d["spec"]["match"]["any"][0]["resources"] == {"kinds": ["*"]},
                 id="no resource in the events: a filter matching everything, flagged"),
    pytest.param({"policy": "Team/Odd Policy_Name!"},
                 lambda d: d["metadata"]["name"].startswith("team-odd-policy-name-fp-"),
                 id="a policy id that is no DNS name still makes a valid object name"),
])
def test_kyverno_proposals_stay_valid_when_the_events_say_little(fields, check):
    proposal = propose(group(**fields))
    assert kyverno_errors(proposal.document) == []
    assert check(proposal.document)


def test_event_strings_reach_values_only_never_comments():
    hostile = "x\n# injected: true\nkind: Secret"
    proposal = propose(group(name=hostile, reasons=(hostile,)))
    header = proposal.text.splitlines()[:2]
    assert all(line.startswith("# ") and "injected" not in line for line in header)
    loaded = yaml.safe_load(proposal.text)  # the text inside stays a quoted value
    assert loaded == proposal.document and list(loaded) == ["apiVersion", "kind", "metadata",
                                                            "spec"]
    assert loaded["kind"] == "PolicyException"
    assert loaded["spec"]["match"]["any"][0]["resources"]["names"] == [hostile]
    assert loaded["metadata"]["annotations"]["policyscope.io/reasons"] == hostile


@pytest.mark.parametrize("policy,rule,kind,name", [
    pytest.param("K8sRequiredLabels/must-have-owner", "", "K8sRequiredLabels",
                 "must-have-owner", id="Kind/name policy ids name the constraint"),
    pytest.param("must-have-owner", "K8sRequiredLabels", "K8sRequiredLabels",
                 "must-have-owner", id="else a CamelCase rule is the constraint kind"),
    pytest.param("must-have-owner", "check", "ReplaceWithConstraintKind", "must-have-owner",
                 id="else a placeholder kind the notes ask to set"),
])
def test_a_gatekeeper_proposal_excludes_the_groups_namespaces(policy, rule, kind, name):
    proposal = propose(group(policy=policy, rule=rule, engines=("gatekeeper",)))
    doc = yaml.safe_load(proposal.text)
    assert doc == proposal.document
    assert doc["apiVersion"] == "constraints.gatekeeper.sh/v1beta1"
    assert (doc["kind"], doc["metadata"]["name"]) == (kind, name)
    assert doc["spec"] == {"match": {"excludedNamespaces": ["shop", "shop-canary"]}}
    assert any("replaces the whole" in n for n in proposal.notes)
    assert any("set `kind`" in n for n in proposal.notes) == (kind == "ReplaceWithConstraintKind")


@pytest.mark.parametrize("engine", ["opa", "conftest"])
def test_an_opa_proposal_is_one_json_patch_adding_the_exemption(engine):
    g = group(engines=(engine,))
    proposal = propose(g)
    assert proposal.engine == "opa" and proposal.media_type == "application/json-patch+json"
    patch = json.loads(proposal.text)
    assert patch == proposal.document
    (op,) = patch
    assert op["op"] == "add" and op["path"] == f"/policyscope/exemptions/{g.fingerprint.id}"
    assert op["value"]["policy"] == "require-non-root"
    assert op["value"]["namespaces"] == ["shop", "shop-canary"]
    assert op["value"]["reason"] == "istio sidecar runs as root"


def test_one_proposal_per_group_in_order():
    groups = [group(name="api"), group(name="web", engines=("gatekeeper",)),
              group(name="job", engines=("opa",))]
    proposals = propose_all(groups)
    assert [p.engine for p in proposals] == ["kyverno", "gatekeeper", "opa"]
    assert [p.fingerprint for p in proposals] == [g.fingerprint.id for g in groups]
    assert len({p.filename for p in proposals}) == 3


@pytest.mark.parametrize("engines", [("falco",), ("kyverno", "opa"), ()],
                         ids=["an engine without a format", "two engines", "no engine"])
def test_a_group_without_one_supported_engine_asks_for_engine(engines):
    with pytest.raises(UnsupportedEngine, match="pass engine= to choose"):
        engine_of(group(engines=engines))
    assert propose(group(engines=engines), engine="kyverno").engine == "kyverno"


def test_an_unknown_engine_is_refused_by_name():
    with pytest.raises(UnsupportedEngine, match="'falco'; expected one of kyverno"):
        propose(group(), engine="falco")


CRD = os.environ.get("POLICYSCOPE_KYVERNO_CRD")


@pytest.mark.skipif(not CRD, reason="set POLICYSCOPE_KYVERNO_CRD to the Kyverno "
                                    "policyexceptions CRD file to validate against it")
def test_a_kyverno_proposal_validates_against_the_real_crd():
    crd = yaml.safe_load(Path(CRD).read_text())
    (v2,) = [v for v in crd["spec"]["versions"] if v["name"] == "v2"]
    assert v2["served"] and v2["storage"]
    schema = v2["schema"]["openAPIV3Schema"]
    for fields in ({}, {"rule": ""}, {"kind": "", "name": "", "namespaces": ()}):
        jsonschema.validate(propose(group(**fields)).document, schema)
    with pytest.raises(jsonschema.ValidationError, match="ruleNames"):
        jsonschema.validate({"apiVersion": "kyverno.io/v2", "kind": "PolicyException",
                             "spec": {"exceptions": [{"policyName": "p"}], "match": {}}},
                            schema)
