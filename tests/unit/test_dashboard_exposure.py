"""The dashboard refuses to start beyond loopback without a login, and refuses a login
configuration that could not work, before anything listens; `policyscope dashboard` and
`policyscope up` print the reason and exit 1."""

from __future__ import annotations

import pytest
import streamlit.web.bootstrap as bootstrap
from argon2 import PasswordHasher
from streamlit.auth_util import secrets_singleton
from typer.testing import CliRunner

from core.config import ConfigError
from dashboards import config as dashboard_config
from dashboards import serve as serve_module
from dashboards.users import UsersFile
from policyscope.cli import app
from policyscope.config import load_config

pytestmark = pytest.mark.unit

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
AUTH = {"redirect_uri": "http://dash.example:8501/oauth2callback",
        "cookie_secret": "a-long-random-cookie-secret",
        "corp": {"client_id": "id", "client_secret": "s3cret-client",
                 "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}}


@pytest.fixture
def runs(monkeypatch) -> list:
    """What Streamlit was asked to serve (nothing is started)."""
    started = []
    monkeypatch.setattr(bootstrap, "run", lambda *a, **k: started.append(a))
    monkeypatch.setattr(bootstrap, "load_config_options", lambda **k: None)
    monkeypatch.setattr(dashboard_config, "_current", None)
    return started


@pytest.fixture
def users_file(tmp_path):
    file = UsersFile(tmp_path / "users.yaml", hasher=CHEAP)
    file.add("root", "admin", "correct-horse-battery")
    return file.path


@pytest.fixture
def secrets(monkeypatch):
    """Stand-in for .streamlit/secrets.toml, as Streamlit's secrets singleton holds it."""
    def put(value):
        monkeypatch.setattr(secrets_singleton, "_secrets", value)
    return put


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "dash.example.com", ""])
def test_beyond_loopback_without_a_login_it_refuses_to_start(runs, host):
    with pytest.raises(PermissionError, match="without a login") as refused:
        serve_module.serve(load_config(env={}, overrides={"dashboard_host": host}))
    assert runs == []
    for way_out in ("dashboard_users_file", "dashboard_oidc", "127.0.0.1",
                    "dashboard_allow_unauthenticated"):
        assert way_out in str(refused.value)


@pytest.mark.parametrize("settings", [
    pytest.param({}, id="on loopback with nothing configured it starts without a login"),
    pytest.param({"dashboard_host": "localhost"}, id="localhost is loopback"),
    pytest.param({"dashboard_host": "::1"}, id="::1 is loopback"),
    pytest.param({"dashboard_host": "0.0.0.0", "dashboard_allow_unauthenticated": True},
                 id="beyond loopback it starts when told something in front authenticates"),
])
def test_it_starts_where_it_is_safe_or_acknowledged(runs, settings):
    serve_module.serve(load_config(env={}, overrides=settings))
    assert runs and runs[0][0] == str(serve_module.APP)


def test_beyond_loopback_it_starts_with_a_users_file(runs, users_file):
    config = load_config(env={}, overrides={"dashboard_host": "0.0.0.0",
                                            "dashboard_users_file": str(users_file)})
    serve_module.serve(config)
    assert len(runs) == 1 and dashboard_config.current() is config


def test_beyond_loopback_it_starts_with_oidc(runs, secrets):
    secrets({"auth": AUTH})
    serve_module.serve(load_config(env={}, overrides={
        "dashboard_host": "0.0.0.0", "dashboard_oidc": True, "dashboard_oidc_provider": "corp"}))
    assert len(runs) == 1


@pytest.mark.parametrize("make,fragment", [
    pytest.param(lambda path: None, "does not exist, so nobody could log in",
                 id="a users file that does not exist is refused, saying how to make one"),
    pytest.param(lambda path: UsersFile(path, hasher=CHEAP).add("olga@x.io", "admin", None),
                 "holds no user with a password",
                 id="a users file where nobody has a password is refused without OIDC"),
    pytest.param(lambda path: path.write_text("root:\n  role: god\n"), "has role 'god'",
                 id="a bad users file is refused at start-up naming the user"),
])
def test_a_users_file_nobody_could_log_in_with_is_refused(runs, tmp_path, make, fragment):
    path = tmp_path / "users.yaml"
    make(path)
    with pytest.raises(ValueError, match=fragment):
        serve_module.serve(load_config(env={}, overrides={"dashboard_users_file": str(path)}))
    assert runs == []


@pytest.mark.parametrize("value,fragment", [
    pytest.param({}, "secrets.toml", id="OIDC without an [auth] secrets section is refused"),
    pytest.param({"auth": {k: v for k, v in AUTH.items() if k != "cookie_secret"}},
                 "cookie_secret", id="OIDC without a cookie secret is refused naming the key"),
    pytest.param({"auth": {k: v for k, v in AUTH.items() if k != "corp"}},
                 'provider "corp"', id="OIDC naming a provider not configured is refused"),
])
def test_an_oidc_login_that_cannot_work_is_refused(runs, secrets, value, fragment):
    secrets(value)
    with pytest.raises(ConfigError, match=fragment) as refused:
        serve_module.serve(load_config(env={}, overrides={"dashboard_oidc": True,
                                                          "dashboard_oidc_provider": "corp"}))
    assert "s3cret-client" not in str(refused.value)
    assert runs == []


def test_oidc_without_authlib_is_refused_saying_what_to_install(runs, secrets, monkeypatch):
    import streamlit.auth_util

    secrets({"auth": AUTH})
    monkeypatch.setattr(streamlit.auth_util, "is_authlib_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'streamlit\[auth\]'"):
        serve_module.serve(load_config(env={}, overrides={"dashboard_oidc": True}))
    assert runs == []


def test_the_dashboard_verb_prints_the_refusal_and_exits_1(runs):
    result = CliRunner().invoke(app, ["dashboard", "--dashboard-host", "0.0.0.0"],
                                prog_name="policyscope", env={})
    assert result.exit_code == 1
    assert "error: refusing to serve the dashboard on 0.0.0.0:8501 without a login" \
        in result.output
    assert runs == []


def test_the_dashboard_verb_takes_the_users_file_flag(runs, users_file):
    result = CliRunner().invoke(app, ["dashboard", "--dashboard-host", "0.0.0.0",
                                      "--users-file", str(users_file)],
                                prog_name="policyscope")
    assert result.exit_code == 0, result.output
    assert len(runs) == 1


def test_up_refuses_before_starting_anything(runs, monkeypatch):
    import policyscope.all_in_one as all_in_one

    started = []
    monkeypatch.setattr(all_in_one, "run_all_in_one", lambda *a, **k: started.append(a))
    result = CliRunner().invoke(app, ["up"], prog_name="policyscope",
                                env={"POLICYSCOPE_DASHBOARD_HOST": "0.0.0.0"})
    assert result.exit_code == 1
    assert "refusing to serve the dashboard" in result.output
    assert started == []  # the collector never started


def test_a_role_setting_must_be_a_role():
    with pytest.raises(ConfigError, match="role 'boss' is not one of viewer"):
        load_config(env={"POLICYSCOPE_DASHBOARD_OIDC_ROLE": "boss"})
    assert load_config(env={"POLICYSCOPE_DASHBOARD_OIDC_ROLE": ""}).dashboard \
        .dashboard_oidc_role is None
