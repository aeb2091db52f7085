"""The reader user on a ClickHouse server (issue 11, item 1), through a recording client: the
statements `migrate` issues, in order and idempotent; where the password comes from; and that
it appears in no statement, log line or error message. (No server runs here, and chDB has no
writable user storage; tests/integration/test_reader_ddl.py parses every statement with
ClickHouse's own parser.)"""

from __future__ import annotations

import hashlib
import logging
import re

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from pydantic import SecretStr

from core.config import StorageConfig
from core.readonly_sql import LIMITS
from core.storage import ReaderAccount, StorageError, connect, reader_account
from policyscope.config import ConfigError, load_config, redacted
from schemas import migrations

pytestmark = pytest.mark.unit

PASSWORD = "correct-horse-battery-staple"
SERVER = "http://admin:admin-pw@clickhouse.example:8123/policyscope"
READER = ReaderAccount("policyscope_reader", SecretStr(PASSWORD))


class RecordingClient:
    """Stands in for a ClickHouse server whose schema is migrated already: records every
    statement; `refuse` makes the statement starting with it fail as the server would,
    quoting the statement back (as ClickHouse does in some messages)."""

    def __init__(self, refuse: str | None = None):
        self.commands: list[str] = []
        self.refuse = refuse

    def command(self, sql, settings=None):
        if self.refuse and sql.startswith(self.refuse):
            raise DatabaseError(f"Code: 497. DB::Exception: admin: Not enough privileges. "
                                f"Query: {sql} password {PASSWORD} (ACCESS_DENIED)")
        self.commands.append(sql)
        if sql.startswith("SHOW CREATE TABLE"):
            return "TTL toDateTime(event_time) + toIntervalDay(395)"
        return None

    def query(self, sql, parameters=None, settings=None):
        class Result:
            result_rows = [(m.version,) for m in migrations.available()]
        return Result()


def reader_commands(client: RecordingClient) -> list[str]:
    return [c for c in client.commands if re.match(r"(CREATE|ALTER) (USER|SETTINGS)|GRANT", c)]


def test_migrate_with_a_reader_issues_profile_user_and_grant_in_order():
    client = RecordingClient()
    assert migrations.migrate(client, "policyscope", retention_days=395, reader=READER) == []
    kinds = [re.match(r"(\w+ (?:SETTINGS PROFILE|USER|SELECT))", c).group(1)
             for c in reader_commands(client)]
    assert kinds == ["CREATE SETTINGS PROFILE", "ALTER SETTINGS PROFILE", "CREATE USER",
                     "ALTER USER", "GRANT SELECT"]
    create_profile, alter_profile, create_user, alter_user, grant = reader_commands(client)
    assert create_profile == "CREATE SETTINGS PROFILE IF NOT EXISTS policyscope_reader_profile"
    assert create_user.startswith("CREATE USER IF NOT EXISTS policyscope_reader IDENTIFIED")
    assert grant == "GRANT SELECT ON policyscope.* TO policyscope_reader WITH REPLACE OPTION"
    for statement in (create_user, alter_user):
        assert "SETTINGS PROFILE 'policyscope_reader_profile'" in statement
        assert "DEFAULT DATABASE policyscope" in statement and "DEFAULT ROLE NONE" in statement


def test_readonly_and_every_limit_are_constraints_of_the_profile():
    alter = migrations.reader_statements("policyscope", READER)[1]
    assert "readonly = 1 CONST" in alter
    for name, value in LIMITS.items():
        literal = f"'{value}'" if isinstance(value, str) else str(value)
        assert f"{name} = {literal} CONST" in alter
    assert alter.count("CONST") == len(LIMITS) + 1  # nothing unconstrained slips in


def test_migrate_without_a_reader_touches_no_user():
    client = RecordingClient()
    migrations.migrate(client, "policyscope")
    assert reader_commands(client) == []


def test_running_it_again_states_the_same_whole_state():
    first, second = RecordingClient(), RecordingClient()
    migrations.ensure_reader(first, "policyscope", READER)
    migrations.ensure_reader(second, "policyscope", READER)
    salted = re.compile(r"BY '[0-9A-F]{64}' SALT '[0-9A-F]{32}'")
    assert [salted.sub("BY <hash>", c) for c in first.commands] == \
        [salted.sub("BY <hash>", c) for c in second.commands]
    assert first.commands != second.commands  # a fresh salt each time
    creates = [c for c in first.commands if c.startswith("CREATE")]
    assert creates and all(" IF NOT EXISTS " in c for c in creates)


def test_the_statements_carry_the_salted_hash_clickhouse_checks_never_the_password():
    statements = migrations.reader_statements("policyscope", READER, salt="0A1B")
    digest = hashlib.sha256((PASSWORD + "0A1B").encode()).hexdigest().upper()
    assert f"IDENTIFIED WITH sha256_hash BY '{digest}' SALT '0A1B'" in statements[2]
    assert not any(PASSWORD in s for s in statements)


def test_the_password_is_in_no_log_line(caplog):
    caplog.set_level(logging.DEBUG)
    migrations.ensure_reader(RecordingClient(), "policyscope", READER)
    assert "policyscope_reader" in caplog.text and PASSWORD not in caplog.text


def test_a_refused_step_is_named_without_the_password_or_its_hash(caplog):
    caplog.set_level(logging.DEBUG)
    client = RecordingClient(refuse="CREATE USER")
    with pytest.raises(StorageError, match="CREATE USER IF NOT EXISTS policyscope_reader") as err:
        migrations.ensure_reader(client, "policyscope", READER)
    message = str(err.value)
    assert "ACCESS_DENIED" in message and "access management" in message
    assert PASSWORD not in message and not re.search(r"[0-9A-F]{64}", message)
    assert err.value.__cause__ is None and PASSWORD not in caplog.text


@pytest.mark.parametrize("config,expected", [
    pytest.param({"dsn": "chdb:///tmp/x", "reader_password": PASSWORD}, None,
                 id="the embedded store has no users: no reader"),
    pytest.param({"dsn": SERVER}, None, id="a server without a reader password: no reader"),
    pytest.param({"dsn": SERVER, "reader_password": PASSWORD}, "policyscope_reader",
                 id="the default reader is named after the database"),
    pytest.param({"dsn": "http://h:8123/events", "reader_password": PASSWORD}, "events_reader",
                 id="the database in the DSN names the default reader"),
    pytest.param({"dsn": SERVER, "reader_password": PASSWORD, "reader_user": "ro"}, "ro",
                 id="a configured reader name wins"),
])
def test_which_reader_a_config_gives(config, expected):
    account = reader_account(StorageConfig(**config))
    assert (account.user if account else None) == expected
    if account is not None:
        assert account.password.get_secret_value() == PASSWORD


def test_the_password_may_come_from_a_file(tmp_path):
    path = tmp_path / "reader-password"
    path.write_text(PASSWORD + "\n")
    account = reader_account(StorageConfig(dsn=SERVER, reader_password_file=path))
    assert account.password.get_secret_value() == PASSWORD


@pytest.mark.parametrize("content,fragment", [
    pytest.param(None, "cannot read reader_password_file", id="a missing file is named"),
    pytest.param("  \n", "is empty", id="an empty file is refused"),
])
def test_a_bad_password_file_is_named_never_echoed(tmp_path, content, fragment):
    path = tmp_path / "reader-password"
    if content is not None:
        path.write_text(content)
    with pytest.raises(StorageError, match=fragment) as err:
        reader_account(StorageConfig(dsn=SERVER, reader_password_file=path))
    assert str(path) in str(err.value)


def test_a_password_and_a_file_together_are_refused(tmp_path):
    with pytest.raises(StorageError, match="not both") as err:
        reader_account(StorageConfig(dsn=SERVER, reader_password=PASSWORD,
                                     reader_password_file=tmp_path / "f"))
    assert PASSWORD not in str(err.value)


def test_the_config_hides_the_password_in_dumps_reprs_and_errors(tmp_path):
    config = load_config(env={"POLICYSCOPE_READER_PASSWORD": PASSWORD})
    assert PASSWORD not in str(redacted(config)) and PASSWORD not in repr(config)
    assert config.storage.reader_password.get_secret_value() == PASSWORD
    path = tmp_path / "c.yaml"
    path.write_text(f"storage:\n  reader_password: [{PASSWORD}]\n")
    with pytest.raises(ConfigError, match="storage.reader_password") as err:
        load_config(path, env={})
    assert PASSWORD not in str(err.value)


def test_a_reader_account_is_refused_for_the_embedded_store():
    with pytest.raises(StorageError, match="no users"):
        connect("chdb:///nonexistent/store", "policyscope", account=READER)
