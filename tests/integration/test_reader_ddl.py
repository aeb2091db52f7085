"""The reader user's DDL read by ClickHouse's own parser (through chDB), and the read-only
paths logging in as the reader on a server (issue 11, item 1).

chDB cannot run the DDL for real: its engine has no writable user storage ("no writeable
access storage in user directories", even with access management on), so CREATE USER /
SETTINGS PROFILE are checked here by the parser -- one statement each, the constraints and
the whole-state ALTERs as the parser rebuilds them -- and by the recording client in
tests/unit/test_reader_user.py for the order, idempotence and secrecy."""

from __future__ import annotations

import base64
import json
import re
from http.server import BaseHTTPRequestHandler

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from core import readonly_sql
from core.readonly_sql import LIMITS
from core.storage import ReaderAccount, StorageError, connect, reader_account, resolve
from policyscope.cli import app
from schemas.migrations import reader_statements
from tests.builders.processes import serving

pytestmark = pytest.mark.integration

PASSWORD = "correct-horse-battery-staple"
READER = ReaderAccount("policyscope_reader", SecretStr(PASSWORD))
ROOTS = ["CreateSettingsProfileQuery", "CreateSettingsProfileQuery", "CreateUserQuery",
         "CreateUserQuery", "GrantQuery"]


def canonical(client, statement: str) -> str:
    return client.query("SELECT formatQuerySingleLine({q:String})",
                        parameters={"q": statement}).result_rows[0][0]


def test_every_reader_statement_is_one_statement_clickhouse_parses(chdb_client):
    statements = reader_statements("policyscope", READER)
    roots = [chdb_client.query("EXPLAIN AST " + s).result_rows[0][0].split(" ")[0]
             for s in statements]
    assert roots == ROOTS
    for statement in statements:
        assert ";" not in canonical(chdb_client, statement)


def test_the_parser_keeps_every_constraint_and_reads_the_alters_as_whole_states(chdb_client):
    statements = reader_statements("policyscope", READER)
    profile = canonical(chdb_client, statements[1])
    assert "DROP ALL SETTINGS, DROP ALL PROFILES, ADD SETTINGS readonly = 1 CONST" in profile
    for name, value in LIMITS.items():
        literal = f"'{value}'" if isinstance(value, str) else str(value)
        assert f"{name} = {literal} CONST" in profile
    user = canonical(chdb_client, statements[3])
    assert "DROP ALL SETTINGS, DROP ALL PROFILES, ADD PROFILE `policyscope_reader_profile`" \
        in user and "DEFAULT ROLE NONE" in user and "DEFAULT DATABASE policyscope" in user
    assert re.search(r"IDENTIFIED WITH sha256_hash BY '[0-9A-F]{64}' SALT '[0-9A-F]{32}'", user)
    assert canonical(chdb_client, statements[4]) == \
        "GRANT SELECT ON policyscope.* TO policyscope_reader WITH REPLACE OPTION"


def test_chdb_cannot_create_users_so_the_server_path_is_tested_by_recording(chdb_client):
    with pytest.raises(Exception, match="ACCESS_DENIED|ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND"):
        chdb_client.command(reader_statements("policyscope", READER)[0])


class _Recording:
    """A client on the test's chDB store that records the settings each query carries."""

    def __init__(self, client):
        self._client = client
        self.queries: list[tuple[str, dict | None]] = []
        self.database = client.database

    def query(self, sql, parameters=None, settings=None):
        self.queries.append((sql, settings))
        return self._client.query(sql, parameters=parameters, settings=settings)

    def close(self):
        pass


@pytest.fixture
def as_reader(monkeypatch, chdb_client, database):
    """`core.storage.connect` answering with a recording client on chDB, noting the
    account each caller logs in with."""
    calls: list[ReaderAccount | None] = []
    recording = _Recording(chdb_client)

    def fake_connect(dsn, db, *, create_database=True, account=None):
        calls.append(account)
        return recording, resolve(dsn, db)

    monkeypatch.setattr("core.storage.connect", fake_connect)
    return calls, recording


def test_policyscope_sql_on_a_server_runs_as_the_reader_with_nothing_set_per_query(
        as_reader, database):
    calls, recording = as_reader
    env = {"POLICYSCOPE_DSN": f"http://admin:admin-pw@clickhouse.example:8123/{database}",
           "POLICYSCOPE_READER_PASSWORD": PASSWORD}
    result = CliRunner().invoke(app, ["sql", "--format", "json", "SELECT 1 AS one"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"one": 1}]
    assert [a.user if a else None for a in calls] == [f"{database}_reader"]
    statement = recording.queries[-1]
    assert statement[0] == "SELECT 1 AS one" and not statement[1]
    refused = CliRunner().invoke(app, ["sql", "DROP TABLE policy_decisions"], env=env)
    assert refused.exit_code == 2 and "not allowed" in refused.output  # the guard stays


def test_on_chdb_the_guard_sets_readonly_and_the_limits_per_query(chdb_client, database):
    recording = _Recording(chdb_client)
    readonly_sql.run(recording, "SELECT 1")
    assert recording.queries[-1][1] == {"readonly": 1, **LIMITS}


def test_the_admin_api_on_a_server_queries_as_the_reader(as_reader, database):
    from collector.admin import ReadOnlyQueries
    from policyscope.config import load_config

    calls, recording = as_reader
    config = load_config(env={}, overrides={
        "dsn": f"http://admin:admin-pw@clickhouse.example:8123/{database}",
        "reader_password": PASSWORD})

    class Pipeline:
        def __init__(self):
            self.config, self.database, self.client = config, database, None

    pipeline = Pipeline()
    queries = ReadOnlyQueries(pipeline, reader_account(pipeline.config.storage))
    try:
        result = queries._run("SELECT 2 AS two")
    finally:
        queries.close()
    assert result.rows == [(2,)]
    assert [a.user for a in calls] == [f"{database}_reader"]
    assert recording.queries[-1] == ("SELECT 2 AS two", {})


class _RefusingServer(BaseHTTPRequestHandler):
    """A ClickHouse HTTP endpoint that refuses every login, quoting the password it was sent
    back in its error (the worst a server could do); records who tried."""

    seen: list[tuple[str, str]] = []

    def do_POST(self):  # noqa: N802 - the http.server API
        self._answer()

    def do_GET(self):  # noqa: N802
        self._answer()

    def _answer(self):
        user = self.headers.get("X-ClickHouse-User", "")
        password = self.headers.get("X-ClickHouse-Key", "")
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme == "Basic":
            user, _, password = base64.b64decode(value).decode().partition(":")
        type(self).seen.append((user, password))
        body = (f"Code: 516. DB::Exception: {user}: Authentication failed: password "
                f"{password} is incorrect. (AUTHENTICATION_FAILED)").encode()
        self.send_response(403)
        self.send_header("X-ClickHouse-Exception-Code", "516")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_read_only_paths_log_in_as_the_reader_and_never_show_its_password():
    _RefusingServer.seen = []
    with serving(_RefusingServer) as port:
        with pytest.raises(StorageError) as err:
            connect(f"http://admin:admin-pw@127.0.0.1:{port}/policyscope", "policyscope",
                    create_database=False, account=READER)
    assert _RefusingServer.seen and set(_RefusingServer.seen) == {("policyscope_reader",
                                                                   PASSWORD)}
    message = str(err.value)
    assert "as policyscope_reader" in message and "AUTHENTICATION_FAILED" in message
    assert PASSWORD not in message and "admin-pw" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
