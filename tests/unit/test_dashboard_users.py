"""The local users file: written 0600 and atomically, salted argon2 hashes that verify, wrong
passwords refused, and never a password in a log or an error."""

from __future__ import annotations

import json
import logging
import os

import pytest
from argon2 import PasswordHasher

from dashboards.roles import User
from dashboards.users import UsersFile, UsersFileError

pytestmark = pytest.mark.unit

PASSWORD = "correct-horse-battery"
# Cheap parameters for speed; verify reads them from each hash, so the code path is the same.
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(params=["users.yaml", "users.json"])
def users(tmp_path, request) -> UsersFile:
    return UsersFile(tmp_path / "secrets" / request.param, hasher=CHEAP)


def test_add_creates_the_file_0600_with_a_salted_hash_that_verifies(users):
    users.add("alice", "analyst", PASSWORD)
    users.add("bob", "oncall", PASSWORD)

    assert users.path.stat().st_mode & 0o777 == 0o600
    text = users.path.read_text()
    assert PASSWORD not in text
    alice, bob = users.get("alice"), users.get("bob")
    assert alice.password_hash.startswith("$argon2id$")
    assert alice.password_hash != bob.password_hash  # salted: same password, other hash
    assert users.verify("alice", PASSWORD) == User("alice", "analyst")
    assert [p.name for p in users.path.parent.iterdir()] == [users.path.name]  # no temp left


def test_the_file_format_follows_the_name(users):
    users.add("alice", "analyst", PASSWORD)
    text = users.path.read_text()
    if users.path.suffix == ".json":
        assert json.loads(text)["alice"]["role"] == "analyst"
    else:
        assert text.startswith("# PolicyScope dashboard users")
        assert "alice:\n  role: analyst\n  password_hash: $argon2id$" in text


@pytest.mark.parametrize("name,password", [
    pytest.param("alice", "wrong-password", id="a wrong password is refused"),
    pytest.param("mallory", PASSWORD, id="an unknown name is refused"),
    pytest.param("olga@example.com", PASSWORD,
                 id="an OIDC-only entry cannot log in with a password"),
    pytest.param("alice", "", id="an empty password is refused"),
])
def test_a_login_that_is_not_theirs_is_refused(users, name, password):
    users.add("alice", "analyst", PASSWORD)
    users.add("olga@example.com", "viewer", None)
    assert users.verify(name, password) is None


def test_remove_and_set_role_change_only_that_user(users):
    users.add("alice", "analyst", PASSWORD)
    users.add("bob", "oncall", PASSWORD)
    old_hash = users.get("bob").password_hash

    users.set_role("bob", "sre")
    users.remove("alice")

    assert sorted(users.load()) == ["bob"]
    assert users.get("bob").role == "sre" and users.get("bob").password_hash == old_hash
    assert users.verify("bob", PASSWORD) == User("bob", "sre")
    assert users.path.stat().st_mode & 0o777 == 0o600


def test_set_password_replaces_the_hash(users):
    users.add("alice", "analyst", PASSWORD)
    users.set_password("alice", "a-new-passphrase")
    assert users.verify("alice", PASSWORD) is None
    assert users.verify("alice", "a-new-passphrase") == User("alice", "analyst")


@pytest.mark.parametrize("change,fragment", [
    pytest.param(lambda u: u.add("alice", "admin", PASSWORD), "already exists",
                 id="adding a name already there is refused"),
    pytest.param(lambda u: u.add("bad name", "admin", PASSWORD), "is not valid",
                 id="a name with a space is refused"),
    pytest.param(lambda u: u.add("carol", "root", PASSWORD), "role 'root' is not one of",
                 id="an unknown role is refused"),
    pytest.param(lambda u: u.add("carol", "admin", "short"), "too short",
                 id="a short password is refused"),
    pytest.param(lambda u: u.remove("carol"), "no user 'carol'",
                 id="removing a user not there is refused naming the users"),
    pytest.param(lambda u: u.set_role("carol", "admin"), "no user 'carol'",
                 id="changing a user not there is refused"),
])
def test_refused_changes_say_why_and_leave_the_file_as_it_was(users, change, fragment):
    users.add("alice", "analyst", PASSWORD)
    before = users.path.read_text()
    with pytest.raises(UsersFileError, match=fragment) as refused:
        change(users)
    assert PASSWORD not in str(refused.value)
    assert users.path.read_text() == before


@pytest.mark.parametrize("text,fragment", [
    pytest.param("alice: [\n", "not valid YAML", id="broken YAML is named"),
    pytest.param("- alice\n", "must map user names", id="a list is not a users file"),
    pytest.param("alice:\n  role: root\n", "user 'alice' has role 'root'",
                 id="an unknown role in the file is named"),
    pytest.param("alice:\n  role: admin\n  password: hunter22\n", "nothing else",
                 id="a clear-text password key is refused"),
    pytest.param("alice:\n  role: admin\n  password_hash: hunter22\n", "not an argon2 hash",
                 id="a hash that is not argon2 is refused without echoing it"),
])
def test_a_bad_file_is_refused_naming_the_user_and_problem(tmp_path, text, fragment):
    path = tmp_path / "users.yaml"
    path.write_text(text)
    with pytest.raises(UsersFileError, match=fragment) as refused:
        UsersFile(path, hasher=CHEAP).load()
    assert "hunter22" not in str(refused.value)


def test_a_missing_file_has_no_users(tmp_path):
    assert UsersFile(tmp_path / "none.yaml").load() == {}


def test_a_file_others_can_read_is_warned_about(tmp_path, caplog):
    users = UsersFile(tmp_path / "users.yaml", hasher=CHEAP)
    users.add("alice", "analyst", PASSWORD)
    os.chmod(users.path, 0o644)
    with caplog.at_level(logging.WARNING, logger="dashboards.users"):
        users.load()
    assert "readable by others (mode 644)" in caplog.text


def test_no_password_or_hash_reaches_the_log(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    users = UsersFile(tmp_path / "users.yaml", hasher=CHEAP)
    users.add("alice", "analyst", PASSWORD)
    users.set_password("alice", PASSWORD + "-2")
    users.verify("alice", "a-wrong-guess")
    users.set_role("alice", "sre")
    assert "added 'alice' (role analyst" in caplog.text  # something was logged
    assert PASSWORD not in caplog.text and "a-wrong-guess" not in caplog.text
    assert "$argon2" not in caplog.text


def test_a_damaged_hash_refuses_the_login_and_says_what_to_do(tmp_path, caplog):
    path = tmp_path / "users.yaml"
    path.write_text("alice:\n  role: admin\n  password_hash: $argon2id$garbage\n")
    with caplog.at_level(logging.ERROR, logger="dashboards.users"):
        assert UsersFile(path, hasher=CHEAP).verify("alice", PASSWORD) is None
    assert "damaged password hash for 'alice'" in caplog.text and "set-password" in caplog.text
