"""The dashboards' login, run with Streamlit's AppTest on a tiny app (tests/builders/
login_app.py) that logs in through `dashboards.auth` and shows the user's pages: local users
(wrong password refused, right one shows the role's pages, logout), no login on loopback,
OIDC through st.login, and the server-side refusal of a write the role may not make."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import streamlit
from argon2 import PasswordHasher
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.testing.v1 import AppTest

from dashboards import auth
from dashboards import config as dashboard_config
from dashboards.users import UsersFile
from policyscope.config import load_config

pytestmark = pytest.mark.unit

APP = str(Path(__file__).resolve().parents[1] / "builders" / "login_app.py")
PASSWORD = "correct-horse-battery"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def no_delay(monkeypatch):
    monkeypatch.setattr(auth, "FAILURE_DELAY", 0.0)


def use(monkeypatch, **settings) -> None:
    """Hand the app a config as `serve` would."""
    monkeypatch.setattr(dashboard_config, "_current", load_config(env={}, overrides=settings))


@pytest.fixture
def users(tmp_path, monkeypatch) -> UsersFile:
    path = tmp_path / "users.yaml"
    file = UsersFile(path, hasher=CHEAP)
    monkeypatch.setitem(auth._files, path, file)
    file.add("ana", "analyst", PASSWORD)
    file.add("vera", "viewer", PASSWORD)
    use(monkeypatch, dashboard_users_file=path)
    return file


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def log_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="policyscope-login-name").input(name)
    at.text_input(key="policyscope-login-password").input(password)
    at.button[0].click()  # the form's submit button
    return at.run()


def test_on_loopback_with_no_login_configured_everyone_is_the_local_admin(monkeypatch):
    use(monkeypatch)
    at = AppTest.from_file(APP).run()
    assert not at.exception
    assert texts(at) == ["user: local (admin)",
                         "pages: executive, oncall, triage, tuning, debug, slos, live"]
    assert not at.text_input  # no login form
    assert [b.label for b in at.button] == ["Label as false positive"]  # no logout either


def test_with_a_users_file_the_form_is_shown_and_nothing_else(users):
    at = AppTest.from_file(APP).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    password = at.text_input(key="policyscope-login-password").proto
    assert password.type == TextInputProto.PASSWORD  # shown as dots
    assert texts(at) == []  # the run stopped at the form


def test_a_wrong_password_is_refused_and_logged_without_the_password(users, caplog):
    caplog.set_level(logging.DEBUG)
    at = log_in(AppTest.from_file(APP).run(), "ana", "not-her-password")
    assert not at.exception
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert texts(at) == [] and [t.label for t in at.text_input] == ["User name", "Password"]
    assert at.session_state["policyscope_login_failures"] == 1
    assert "failed dashboard login for 'ana' (failure 1 in this session)" in caplog.text
    assert "not-her-password" not in caplog.text


def test_a_name_not_in_the_file_is_not_logged_it_may_be_a_password(users, caplog):
    caplog.set_level(logging.DEBUG)
    at = log_in(AppTest.from_file(APP).run(), PASSWORD + "-typed-as-name", PASSWORD)
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert "failed dashboard login for an unknown user name" in caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("name,shown", [
    pytest.param("ana", ["user: ana (analyst)", "pages: executive, triage, debug"],
                 id="an analyst logged in sees the analyst's pages"),
    pytest.param("vera", ["user: vera (viewer)", "pages: executive, slos, live"],
                 id="a viewer logged in sees the viewer's pages"),
])
def test_the_right_password_shows_the_roles_pages(users, caplog, name, shown):
    caplog.set_level(logging.DEBUG)
    at = log_in(AppTest.from_file(APP).run(), name, PASSWORD)
    assert not at.exception and not at.error
    assert texts(at) == shown
    assert not at.text_input  # the form is gone
    assert at.session_state["policyscope_user"] == name
    assert f"dashboard login: {name!r}" in caplog.text and PASSWORD not in caplog.text


def test_a_viewer_is_refused_a_label_on_the_server_side(users):
    at = log_in(AppTest.from_file(APP).run(), "vera", PASSWORD)
    at.button(key="label").click()
    at.run()
    assert [e.value for e in at.error] == [auth.safe_text(
        "user 'vera' (role viewer) may not label: that needs one of the roles analyst, sre, "
        "admin")]
    assert "labelled by vera" not in texts(at)


def test_an_analyst_may_label(users):
    at = log_in(AppTest.from_file(APP).run(), "ana", PASSWORD)
    at.button(key="label").click()
    at.run()
    assert not at.error and texts(at)[-1] == "labelled by ana"


def test_logout_clears_the_session_and_shows_the_form_again(users):
    at = log_in(AppTest.from_file(APP).run(), "ana", PASSWORD)
    assert [c.value for c in at.caption] == ["Logged in as ana (analyst)"]
    at.button(key="policyscope-logout").click()
    at.run()
    assert "policyscope_user" not in at.session_state
    assert texts(at) == [] and [t.label for t in at.text_input] == ["User name", "Password"]


def test_removing_a_user_or_changing_the_role_applies_at_the_next_run(users):
    at = log_in(AppTest.from_file(APP).run(), "ana", PASSWORD)
    users.set_role("ana", "sre")
    at.run()
    assert texts(at)[0] == "user: ana (sre)"
    users.remove("ana")
    at.run()
    assert texts(at) == [] and at.text_input  # logged out: back to the form


def test_failures_slow_down_then_lock_the_form_for_the_session(users, monkeypatch):
    slept = []
    monkeypatch.setattr(auth, "_sleep", slept.append)
    monkeypatch.setattr(auth, "FAILURE_DELAY", 1.0)
    at = AppTest.from_file(APP).run()
    for _ in range(auth.MAX_FAILURES):
        at = log_in(at, "ana", "guess-guess")
    assert slept == [1.0, 2.0, 3.0, 4.0, 5.0]  # FAILURE_DELAY x failures, at most MAX_DELAY
    at.run()
    assert not at.text_input  # locked: no form, not even for the right password
    assert at.error[0].value.startswith("Too many failed logins: try again in ")


def test_beyond_loopback_with_no_login_the_app_shows_only_an_error(monkeypatch):
    use(monkeypatch, dashboard_host="0.0.0.0")
    at = AppTest.from_file(APP).run()
    assert texts(at) == [] and not at.text_input
    assert "no login configured" in at.error[0].value


def test_allow_unauthenticated_beyond_loopback_is_an_anonymous_admin(monkeypatch):
    use(monkeypatch, dashboard_host="0.0.0.0", dashboard_allow_unauthenticated=True)
    at = AppTest.from_file(APP).run()
    assert texts(at)[0] == "user: anonymous (admin)"


# -- OIDC through st.login ------------------------------------------------------------------

@pytest.fixture
def oidc(tmp_path, monkeypatch) -> UsersFile:
    path = tmp_path / "users.yaml"
    file = UsersFile(path, hasher=CHEAP)
    monkeypatch.setitem(auth._files, path, file)
    file.add("olga@example.com", "oncall", None)
    use(monkeypatch, dashboard_oidc=True, dashboard_users_file=path,
        dashboard_oidc_provider="corp")
    return file


def test_oidc_logged_out_shows_the_sign_on_button_which_calls_st_login(oidc, monkeypatch):
    calls = []
    monkeypatch.setattr(streamlit, "login", calls.append)
    at = AppTest.from_file(APP)
    at.user = {"is_logged_in": False}
    at.run()
    assert texts(at) == [] and not at.text_input
    at.button(key="policyscope-login-oidc").click()
    at.run()
    assert calls == ["corp"]


@pytest.mark.parametrize("claims,shown", [
    pytest.param({"email": "olga@example.com", "email_verified": True},
                 "user: olga@example.com (oncall)",
                 id="an identity the users file lists gets its role"),
    pytest.param({"email": "nils@example.com"}, "user: nils@example.com (viewer)",
                 id="an identity it does not list gets dashboard_oidc_role"),
    pytest.param({"email": "olga@example.com", "email_verified": False, "sub": "u-1"},
                 "user: u-1 (viewer)",
                 id="an unverified email is not trusted: the subject is the identity"),
])
def test_oidc_logged_in_is_the_identity_with_its_role(oidc, claims, shown):
    at = AppTest.from_file(APP)
    at.user = {"is_logged_in": True, **claims}
    at.run()
    assert not at.exception
    assert texts(at)[0] == shown


def test_oidc_without_a_default_role_refuses_an_unlisted_identity(oidc, monkeypatch):
    config = dashboard_config._current
    config.dashboard.dashboard_oidc_role = None
    at = AppTest.from_file(APP)
    at.user = {"is_logged_in": True, "email": "eve_[x](http://evil)@example.com"}
    at.run()
    assert texts(at) == []
    assert at.error[0].value.startswith(auth.safe_text("eve_[x](http://evil)@example.com"))
    assert "may not use this dashboard" in at.error[0].value


def test_oidc_logout_calls_st_logout(oidc, monkeypatch):
    calls = []
    monkeypatch.setattr(streamlit, "logout", lambda: calls.append("logout"))
    at = AppTest.from_file(APP)
    at.user = {"is_logged_in": True, "email": "olga@example.com"}
    at.run()
    at.button(key="policyscope-logout").click()
    at.run()
    assert calls == ["logout"]


@pytest.mark.parametrize("text,escaped", [
    pytest.param("[click](http://evil.example)", r"\[click\]\(http\:\/\/evil\.example\)",
                 id="a link in an event string is shown as its characters"),
    pytest.param("![x](http://t/p.png)", r"\!\[x\]\(http\:\/\/t\/p\.png\)",
                 id="an image is shown as its characters"),
    pytest.param("<b>bold</b> *em* _u_ # h", r"\<b\>bold\<\/b\> \*em\* \_u\_ \# h",
                 id="HTML, emphasis and headings are shown as text"),
    pytest.param("plain words 42", "plain words 42", id="plain text is unchanged"),
])
def test_safe_text_escapes_markdown(text, escaped):
    assert auth.safe_text(text) == escaped


PAGES_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "pages"


@pytest.mark.parametrize("page", list(auth.PAGES))
def test_a_page_run_without_the_router_still_asks_for_the_login(users, page):
    """Streamlit's first multipage mode runs pages/<page>.py without app.py; the page checks
    its user itself, so it shows only the login form (and reads nothing)."""
    module = "triage_page" if page == "triage" else page
    at = AppTest.from_file(str(PAGES_DIR / f"{module}.py")).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert not at.dataframe and not at.metric and [h.value for h in at.title] == ["PolicyScope"]


def test_a_page_run_directly_refuses_a_role_that_does_not_see_it(users):
    at = AppTest.from_file(str(PAGES_DIR / "tuning.py"))
    at.session_state["policyscope_user"] = "vera"  # logged in, a viewer: no tuning page
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Your role (viewer) does not see this page."]
    assert not at.dataframe and not at.title


def test_serving_routes_every_request_through_the_app_script(monkeypatch):
    """`serve` turns off the mode that runs pages/<page>.py by itself (so without login)."""
    from streamlit.runtime.pages_manager import PagesManager

    from dashboards import serve

    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    serve._route_through_app()
    assert PagesManager.uses_pages_directory is False


@pytest.mark.parametrize("text,span", [
    ("/var/lib/slo", "`/var/lib/slo`"),
    ("a`b", "`` a`b ``"),
    ("``x", "``` ``x ```"),
])
def test_code_span_shows_a_path_verbatim_and_cannot_be_closed_early(text, span):
    assert auth.code_span(text) == span
