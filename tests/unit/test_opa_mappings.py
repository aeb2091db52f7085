"""Decision mappings (collector/opa_mappings.py): the default shapes of Rego results, the
configured mappings, JSON pointers and the erased / masked scrub."""

from __future__ import annotations

import pytest

from collector.coercion import RecordRejected
from collector.opa_mappings import (
    DecisionMapper,
    DecisionMapping,
    dotted,
    resolve,
    scrub,
    tokens,
)

pytestmark = pytest.mark.unit

ADMISSION_INPUT = {"request": {"kind": {"kind": "Deployment"}, "name": "checkout",
                               "namespace": "shop", "userInfo": {"username": "ci-bot"}}}


@pytest.mark.parametrize("event,outcome,reason", [
    pytest.param({"result": True}, "allow", "", id="a true result allows"),
    pytest.param({"result": False}, "deny", "", id="a false result denies"),
    pytest.param({"result": {"allowed": True}}, "allow", "", id="result.allowed true allows"),
    pytest.param({"result": {"allow": False, "reason": "not owner"}}, "deny", "not owner",
                 id="result.allow false denies with result.reason"),
    pytest.param({"result": {"response": {"allowed": False, "status": {
        "message": "runAsNonRoot must be true"}}}}, "deny", "runAsNonRoot must be true",
        id="an admission review answer denies with its status message"),
    pytest.param({"result": {"deny": ["no latest tag", {"msg": "no privileged"}]}}, "deny",
                 "no latest tag; no privileged",
                 id="a non-empty deny set denies with its messages joined"),
    pytest.param({"result": {"deny": [], "allow": True}}, "allow", "",
                 id="an empty deny set with allow true allows"),
    pytest.param({"result": {"deny": []}}, "allow", "", id="an empty deny set alone allows"),
    pytest.param({"result": {"violation": [{"msg": "missing label team"}]}}, "deny",
                 "missing label team", id="a gatekeeper-style violation set denies"),
    pytest.param({"result": ["image from docker.io"]}, "deny", "image from docker.io",
                 id="a list result is a deny set"),
    pytest.param({"result": {"allow": True, "warn": ["deprecated API"]}}, "warn",
                 "deprecated API", id="an allow with warnings is a warn"),
    pytest.param({"error": {"code": "eval_conflict_error", "message": "complete rules must "
                            "not produce multiple outputs"}}, "error",
                 "complete rules must not produce multiple outputs",
                 id="an error without a result is an error with its message"),
    pytest.param({}, "deny", "decision undefined (no result)",
                 id="an undefined decision denies by default"),
])
def test_default_shapes(event, outcome, reason):
    decision = DecisionMapper().decide(event, "kubernetes/admission", None)
    assert (decision.outcome, decision.reason) == (outcome, reason)
    assert decision.policy_id == "kubernetes.admission"


@pytest.mark.parametrize("result,outcome", [
    pytest.param([{}], "allow", id="a query that held binding nothing allows"),
    pytest.param([], "deny", id="a query with no result sets is undefined: deny"),
    pytest.param([{"x": False}], "deny", id="one binding of one variable is read as its value"),
    pytest.param([{"x": {"allowed": True}}], "allow", id="a bound object is read by its shape"),
])
def test_ad_hoc_queries(result, outcome):
    decision = DecisionMapper().decide({"result": result}, None, "x = data.authz.allow")
    assert decision.outcome == outcome
    assert decision.policy_id == "x = data.authz.allow"


def test_a_result_without_a_known_verdict_is_not_mappable():
    with pytest.raises(RecordRejected, match="add a decision mapping") as caught:
        DecisionMapper().decide({"result": {"score": 7}}, "risk/score", None)
    assert caught.value.code == "unmapped_result"


def test_a_mapping_reads_allowed_reason_policy_and_attributes_where_it_says():
    mapping = DecisionMapping(path="data.payments.authz", allowed="/result/decision/ok",
                              reason="/result/decision/why", policy_id="/result/policy",
                              enforcement="audit", severity="high",
                              attributes={"team.name": "/input/owner"})
    event = {"input": {"owner": "payments"},
             "result": {"decision": {"ok": False, "why": "over limit"}, "policy": "pay.limit"}}
    decision = DecisionMapper([mapping]).decide(event, "payments/authz", None)
    assert (decision.outcome, decision.reason, decision.policy_id) == \
        ("deny", "over limit", "pay.limit")
    assert decision.attributes == {"team.name": "payments", "policy.enforcement": "audit",
                                   "policy.severity": "high"}


def test_a_mapping_with_a_deny_pointer_and_an_undefined_outcome():
    mapper = DecisionMapper([DecisionMapping(path="ci.*", deny="/result/failures",
                                             undefined="error")])
    assert mapper.decide({"result": {"failures": ["no tests"]}}, "ci/gate", None).outcome \
        == "deny"
    assert mapper.decide({"result": {"failures": []}}, "ci/gate", None).outcome == "allow"
    undefined = mapper.decide({}, "data.ci.gate", None)
    assert (undefined.outcome, undefined.undefined) == ("error", True)
    with pytest.raises(RecordRejected):  # cd/gate is not under ci.*: the defaults cannot say
        mapper.decide({"result": {"failures": ["x"]}}, "cd/gate", None)


def test_a_non_boolean_allowed_is_rejected_naming_the_pointer():
    mapper = DecisionMapper([DecisionMapping(path="a/b", allowed="/result/ok")])
    with pytest.raises(RecordRejected, match="/result/ok") as caught:
        mapper.decide({"result": {"ok": "yes"}}, "a/b", None)
    assert caught.value.code == "invalid_allowed"


def test_admission_subject_and_dry_run_are_read_by_default():
    event = {"input": {**ADMISSION_INPUT, "request": {**ADMISSION_INPUT["request"],
                                                     "dryRun": True}},
             "result": {"response": {"allowed": True}}}
    decision = DecisionMapper().decide(event, "kubernetes/admission", None)
    assert decision.attributes == {"policy.resource.kind": "Deployment",
                                   "policy.resource.name": "checkout",
                                   "k8s.namespace.name": "shop", "enduser.id": "ci-bot",
                                   "policy.enforcement": "dryrun"}


def test_scrub_removes_what_erased_and_masked_name_so_nothing_reads_them():
    event = {"input": {"password": "hunter2", "request": {"userInfo": {"username": "alice"}},
                       "list": ["a", "secret"]},
             "result": {"response": {"allowed": False, "status": {"message": "token abc"}}}}
    scrub(event, ["/input/password", "/input/request/userInfo/username", "/input/list/1",
                  "/result/response/status/message", "/not/there", "bad pointer"])
    assert event["input"] == {"request": {"userInfo": {}}, "list": ["a", None]}
    decision = DecisionMapper().decide(event, "kubernetes/admission", None)
    assert "enduser.id" not in decision.attributes and decision.reason == ""


@pytest.mark.parametrize("path,expected", [
    ("data.kubernetes.admission", "kubernetes.admission"), ("kubernetes/admission",
                                                            "kubernetes.admission"),
    ("/httpapi/authz/allow", "httpapi.authz.allow"), ("data/system/main", "system.main"),
])
def test_paths_are_dotted(path, expected):
    assert dotted(path) == expected


def test_json_pointers_follow_rfc_6901():
    doc = {"a/b": {"m~n": [10, 20]}}
    assert resolve(doc, tokens("/a~1b/m~0n/1")) == 20
    assert tokens("") == ()
    with pytest.raises(ValueError, match="must start with '/'"):
        tokens("result/allow")
