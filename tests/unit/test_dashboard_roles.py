"""Roles decide which dashboard pages a user sees and which writes they may make; the check
is a function the write paths call (`require`), not a hidden button."""

from __future__ import annotations

import logging

import pytest

from dashboards import auth, roles
from dashboards.roles import ACTIONS, PAGES, ROLES, User, can, require, visible_pages

pytestmark = pytest.mark.unit

PAGE_IDS = ["executive", "oncall", "triage", "tuning", "debug", "slos", "live"]


def test_the_roles_pages_and_actions_are_the_documented_ones():
    assert ROLES == ("viewer", "exec", "oncall", "analyst", "sre", "admin")
    assert list(PAGES) == PAGE_IDS
    assert ACTIONS == {"label": {"analyst", "sre", "admin"},
                       "silence": {"oncall", "sre", "admin"}}
    assert all(isinstance(v, frozenset) for v in [*PAGES.values(), *ACTIONS.values()])
    assert all(set(v) <= set(ROLES) for v in [*PAGES.values(), *ACTIONS.values()])


def test_auth_re_exports_the_one_definition():
    assert (auth.ROLES, auth.PAGES, auth.ACTIONS, auth.User) == \
        (roles.ROLES, roles.PAGES, roles.ACTIONS, roles.User)
    assert (auth.visible_pages, auth.can, auth.require) == \
        (roles.visible_pages, roles.can, roles.require)


@pytest.mark.parametrize("role,pages", [
    pytest.param("viewer", ["executive", "slos", "live"],
                 id="a viewer sees the executive summary, SLOs and the live feed"),
    pytest.param("exec", ["executive", "slos"], id="leadership sees the summary and SLOs"),
    pytest.param("oncall", ["oncall", "debug", "slos", "live"],
                 id="on-call sees alerts, the decision log, SLOs and the live feed"),
    pytest.param("analyst", ["executive", "triage", "debug"],
                 id="an analyst sees triage, the decision log and the summary"),
    pytest.param("sre", ["oncall", "triage", "tuning", "debug", "slos", "live"],
                 id="an SRE sees on-call, triage (it may label), tuning, the decision log, "
                    "SLOs and live"),
    pytest.param("admin", PAGE_IDS, id="an admin sees every page"),
])
def test_each_role_sees_its_pages_in_page_order(role, pages):
    assert visible_pages(User("someone", role)) == pages


@pytest.mark.parametrize("role,label,silence", [
    pytest.param("viewer", False, False, id="a viewer may neither label nor silence"),
    pytest.param("exec", False, False, id="leadership may neither label nor silence"),
    pytest.param("oncall", False, True, id="on-call may silence, not label"),
    pytest.param("analyst", True, False, id="an analyst may label, not silence"),
    pytest.param("sre", True, True, id="an SRE may label and silence"),
    pytest.param("admin", True, True, id="an admin may label and silence"),
])
def test_each_role_may_take_its_actions(role, label, silence):
    user = User("someone", role)
    assert (can(user, "label"), can(user, "silence")) == (label, silence)


def test_require_refuses_naming_the_user_role_and_action(caplog):
    caplog.set_level(logging.WARNING, logger="dashboards.roles")
    with pytest.raises(PermissionError) as refused:
        require(User("vera", "viewer"), "silence")
    message = str(refused.value)
    assert "'vera'" in message and "viewer" in message and "silence" in message
    assert "oncall, sre, admin" in message
    assert "refused silence to user 'vera' (role viewer)" in caplog.text


def test_require_lets_an_allowed_user_through():
    assert require(User("ana", "analyst"), "label") is None


def test_a_misspelt_action_fails_loudly_instead_of_refusing_everyone():
    with pytest.raises(ValueError, match="unknown action 'lable'; known: label, silence"):
        can(User("root", "admin"), "lable")


@pytest.mark.parametrize("name,role,fragment", [
    pytest.param("x", "superuser", "role 'superuser' is not one of viewer",
                 id="a made-up role is refused when the user is made"),
    pytest.param("", "admin", "needs a name", id="a user without a name is refused"),
])
def test_a_user_is_valid_or_not_made(name, role, fragment):
    with pytest.raises(ValueError, match=fragment):
        User(name, role)
