"""`policyscope users add | list | remove | set-role | set-password`: the password comes from
a prompt (asked twice) or stdin, never a flag, and is never printed; `list` shows no hash."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dashboards import users as users_module
from dashboards.users import UsersFile
from policyscope.cli import app
from policyscope.cli import users as users_cli

pytestmark = pytest.mark.unit

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(users_module, "PasswordHasher", lambda *args, **kwargs: cheap)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "dash" / "users.yaml"


def run(*args, input=None, env=None):
    return CliRunner().invoke(app, ["users", *args], input=input, env=env or {},
                              prog_name="policyscope")


def test_add_from_stdin_then_list_shows_no_hash_or_password(path):
    added = run("add", "ana", "--role", "analyst", "--password-stdin", "--users-file", str(path),
                input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert added.output == f"added ana (analyst, login by password) to {path}\n"
    assert UsersFile(path).verify("ana", PASSWORD).role == "analyst"
    assert path.stat().st_mode & 0o777 == 0o600

    listed = run("list", "--users-file", str(path))
    assert listed.exit_code == 0
    assert "ana" in listed.output and "analyst" in listed.output and "password" in listed.output
    assert "$argon2" not in listed.output and PASSWORD not in listed.output + added.output
    as_json = run("list", "--users-file", str(path), "--format", "json")
    assert '"login": "password"' in as_json.output and "argon2" not in as_json.output


def test_add_asks_twice_and_again_when_the_two_differ(path, monkeypatch):
    monkeypatch.setattr(users_cli, "_interactive", lambda: True)
    result = run("add", "ana", "--role", "analyst", "--users-file", str(path),
                 input=f"{PASSWORD}\nsomething-else\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    assert UsersFile(path).verify("ana", PASSWORD) is not None


def test_without_a_terminal_add_refuses_to_prompt_and_names_the_flag(path):
    result = run("add", "ana", "--role", "analyst", "--users-file", str(path), input="")
    assert result.exit_code == 2
    assert "--password-stdin" in result.output
    assert not path.exists()


def test_there_is_no_password_flag(path):
    result = run("add", "ana", "--role", "admin", "--password", PASSWORD,
                 "--users-file", str(path))
    assert result.exit_code == 2 and "No such option" in result.output
    assert not path.exists()


def test_an_oidc_user_has_no_password(path):
    result = run("add", "olga@example.com", "--role", "oncall", "--oidc",
                 "--users-file", str(path))
    assert result.exit_code == 0, result.output
    assert UsersFile(path).get("olga@example.com").password_hash is None
    assert "oidc" in run("list", "--users-file", str(path)).output


def test_set_role_set_password_and_remove(path):
    run("add", "ana", "--role", "analyst", "--password-stdin", "--users-file", str(path),
        input=PASSWORD + "\n")
    assert run("set-role", "ana", "sre", "--users-file", str(path)).output == "ana is now sre\n"
    changed = run("set-password", "ana", "--password-stdin", "--users-file", str(path),
                  input="another-passphrase\n")
    assert changed.exit_code == 0 and UsersFile(path).verify("ana", "another-passphrase")
    assert UsersFile(path).verify("ana", PASSWORD) is None
    assert run("remove", "ana", "--users-file", str(path)).exit_code == 0
    assert UsersFile(path).load() == {}


@pytest.mark.parametrize("args,code,fragment", [
    pytest.param(["add", "ana", "--role", "boss", "--password-stdin"], 2,
                 "role 'boss' is not one of viewer", id="an unknown role is refused"),
    pytest.param(["add", "ana", "--role", "admin", "--password-stdin"], 1, "already exists",
                 id="adding a name already there is refused"),
    pytest.param(["add", "bo b", "--role", "admin", "--password-stdin"], 1, "is not valid",
                 id="a name with a space is refused"),
    pytest.param(["remove", "zed"], 1, "no user 'zed'", id="removing a user not there fails"),
    pytest.param(["set-role", "zed", "admin"], 1, "no user 'zed'",
                 id="changing a user not there fails"),
    pytest.param(["set-role", "ana", "boss"], 2, "not one of", id="setting a bad role fails"),
])
def test_refusals_say_why(path, args, code, fragment):
    run("add", "ana", "--role", "analyst", "--password-stdin", "--users-file", str(path),
        input=PASSWORD + "\n")
    result = run(*args, "--users-file", str(path), input="x-password-1\n")
    assert result.exit_code == code, result.output
    assert fragment in result.output and "x-password-1" not in result.output


def test_a_short_password_from_stdin_is_refused(path):
    result = run("add", "ana", "--role", "analyst", "--password-stdin", "--users-file",
                 str(path), input="short\n")
    assert result.exit_code == 1 and "too short" in result.output
    assert not path.exists()


def test_the_file_comes_from_the_config_or_environment_too(path, tmp_path):
    env = {"POLICYSCOPE_DASHBOARD_USERS_FILE": str(path)}
    assert run("add", "ana", "--role", "exec", "--password-stdin", input=PASSWORD + "\n",
               env=env).exit_code == 0
    config = tmp_path / "policyscope.yaml"
    config.write_text(f"dashboard:\n  dashboard_users_file: {path}\n")
    assert "exec" in run("list", "--config", str(config)).output


def test_without_a_users_file_the_verbs_say_how_to_name_one():
    result = run("list")
    assert result.exit_code == 2
    assert "--users-file" in result.output and "dashboard_users_file" in result.output
