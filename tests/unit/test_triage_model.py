"""The triage model without storage: the fingerprint's definition (pinned: ids are stored),
what a verdict may say, who may label, and the ranges queries accept."""

from __future__ import annotations

import doctest
from datetime import date, datetime, timedelta, timezone

import pytest

from triage import fingerprint as fingerprint_module
from triage.access import Actor, TriagePermissionError, require_labeller
from triage.entries import after
from triage.fingerprint import Fingerprint, fingerprint_id
from triage.model import Filters, SubjectRef, Verdict, VerdictKind, check_range

pytestmark = pytest.mark.unit

UTC = timezone.utc
NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)


def test_the_fingerprint_doctest_pins_the_id_of_known_fields():
    result = doctest.testmod(fingerprint_module)
    assert result.attempted == 1 and result.failed == 0


@pytest.mark.parametrize("other", [
    pytest.param(("p", "r", "Pod", "api", "x"), id="another resource name changes the id"),
    pytest.param(("p", "r", "Deployment", "web", "x"), id="another kind changes the id"),
    pytest.param(("p", "", "Pod", "web", "x"), id="an empty rule is a value of its own"),
    pytest.param(("p", "r,Pod", "", "web", "x"),
                 id="a separator inside a field cannot forge another split"),
])
def test_fingerprints_differ_when_any_field_differs(other):
    base = ("p", "r", "Pod", "web", "x")
    assert fingerprint_id(*base) != fingerprint_id(*other)


def test_a_fingerprint_is_16_hex_digits_and_the_dataclass_uses_the_one_definition():
    f = Fingerprint("k8s.require-non-root", "check-user", "Pod", "api-7f9", "runs as root")
    assert f.id == fingerprint_id("k8s.require-non-root", "check-user", "Pod", "api-7f9",
                                  "runs as root")
    assert len(f.id) == 16 and int(f.id, 16) >= 0
    assert f.as_parameters()["fp_reason"] == "runs as root"


@pytest.mark.parametrize("kwargs,message", [
    pytest.param({"kind": "false_positive"}, "needs a reason",
                 id="a false positive without a reason is refused"),
    pytest.param({"kind": "false_positive", "reason": "   "}, "needs a reason",
                 id="a blank reason is no reason"),
    pytest.param({"kind": "maybe"}, "not one of true_positive, false_positive, benign",
                 id="an unknown verdict names the allowed ones"),
    pytest.param({"kind": "true_positive", "expires_at": NOW}, "only a benign verdict may expire",
                 id="only benign verdicts expire"),
    pytest.param({"kind": "benign", "expires_at": datetime(2026, 12, 1)}, "has no timezone",
                 id="a naive expiry is refused"),
    pytest.param({"kind": "benign", "reason": "x" * 2001}, "at most 2000",
                 id="an overlong reason is refused"),
])
def test_invalid_verdicts_are_refused_with_what_was_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Verdict(**kwargs)


def test_a_benign_expiry_date_holds_through_that_day():
    v = Verdict("benign", "until the migration", date(2026, 12, 1))
    assert v.expires_at == datetime(2026, 12, 2, tzinfo=UTC)


def test_a_valid_verdict_is_normalized():
    v = Verdict("benign", "  accepted risk ", datetime(2026, 12, 1, 1, tzinfo=timezone(
        timedelta(hours=1))))
    assert v.kind is VerdictKind.BENIGN and v.reason == "accepted risk"
    assert v.expires_at == datetime(2026, 12, 1, tzinfo=UTC) and v.expires_at.tzinfo == UTC


@pytest.mark.parametrize("role", ["analyst", "sre", "admin"])
def test_labelling_roles_pass(role):
    require_labeller(Actor("ana", role), "label triage subjects")


@pytest.mark.parametrize("role,extra", [
    pytest.param("viewer", "", id="a viewer may not label"),
    pytest.param("oncall", "", id="on-call may silence, not label"),
    pytest.param("exec", "", id="an exec may not label"),
    pytest.param("root", "not a known role", id="an unknown role is refused and named"),
])
def test_other_roles_are_refused_with_a_clear_permission_error(role, extra):
    with pytest.raises(PermissionError, match=f"user 'bob' with role '{role}'.*may not label "
                                              "triage subjects.*analyst, sre, admin") as err:
        require_labeller(Actor("bob", role), "label triage subjects")
    assert isinstance(err.value, TriagePermissionError) and extra in str(err.value)


def test_an_actor_needs_a_name():
    with pytest.raises(ValueError, match="non-empty name"):
        Actor(" ", "analyst")


@pytest.mark.parametrize("start,end,message", [
    pytest.param(NOW, NOW, "is empty", id="an empty range is refused"),
    pytest.param(datetime(2026, 11, 1), NOW, "timezone-aware", id="a naive bound is refused"),
    pytest.param(NOW - timedelta(days=401), NOW, "at most 400",
                 id="a range over 400 days is refused"),
])
def test_ranges_are_bounded_and_aware(start, end, message):
    with pytest.raises(ValueError, match=message):
        check_range(start, end)


def test_subject_refs_and_filters_name_known_kinds_only():
    with pytest.raises(ValueError, match="decision, violation"):
        SubjectRef("alert", "a1")
    with pytest.raises(ValueError, match="decision, violation"):
        Filters(kind="deploy")


@pytest.mark.parametrize("latest,expected", [
    pytest.param(None, NOW, id="a first entry takes the action's time"),
    pytest.param(NOW - timedelta(seconds=1), NOW, id="a later action keeps its time"),
    pytest.param(NOW, NOW + timedelta(milliseconds=1),
                 id="an entry in the same millisecond comes 1 ms after the latest"),
    pytest.param(NOW + timedelta(seconds=5), NOW + timedelta(seconds=5, milliseconds=1),
                 id="a clock behind the latest entry still orders after it"),
])
def test_entries_order_strictly_after_the_subjects_latest(latest, expected):
    assert after(NOW, latest) == expected
