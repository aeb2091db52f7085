"""The read-only SQL path is read-only by construction (issue 11, "read-only by construction"):
every attack found on it is refused with a message naming what was refused, and leaves no
trace -- no table made or dropped, no row stored, no file written or created, no request sent;
read-only queries still run; and a query runs within limits, off the collector's event loop."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import readonly_sql
from tests.builders.otlp import post
from tests.builders.processes import serving

pytestmark = pytest.mark.integration


class _Listener(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Listener.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"a": 1}\n')

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    _Listener.hits = []
    with serving(_Listener) as port:
        yield port


def tables(client, database: str) -> set[str]:
    return {r[0] for r in client.query("SELECT name FROM system.tables WHERE database = "
                                       "{d:String}", parameters={"d": database}).result_rows}


ATTACKS = [
    pytest.param("SELECT 1 # '\n; CREATE TABLE {db}.hidden (x UInt8) ENGINE=Memory; "
                 "SELECT 2 # '", "one statement",
                 id="a CREATE hidden behind a # comment is refused"),
    pytest.param("SELECT 1 AS \"x'\"; INSERT INTO {db}.policy_decisions (event_id, event_time, "
                 "policy_id, outcome) VALUES ('forged', now(), 'p', 'allow'); SELECT 2 AS \"'\"",
                 "one statement", id="an INSERT hidden behind a double-quoted identifier is refused"),
    pytest.param("SELECT 1 -- '\n; DROP TABLE {db}.policy_events; SELECT '", "one statement",
                 id="a DROP hidden behind a -- comment is refused"),
    pytest.param("SELECT file('/etc/passwd')", "file()", id="the scalar file() is refused"),
    pytest.param("SELECT length(FILE('/etc/shadow'))", "FILE()",
                 id="file() in any case, inside another function, is refused"),
    pytest.param("SELECT 1 INTO OUTFILE '{tmp}/out.txt'", "INTO OUTFILE",
                 id="INTO OUTFILE is refused"),
    pytest.param("DESCRIBE url('http://127.0.0.1:{port}/x', 'JSONEachRow')", "url()",
                 id="url() is refused before any request is made"),
    pytest.param("SELECT * FROM sqlite('{tmp}/made.db', 't')", "sqlite()",
                 id="sqlite() is refused before it creates its file"),
    pytest.param("SELECT * FROM remote('127.0.0.1', system.one)", "remote()",
                 id="remote() is refused"),
    pytest.param("SELECT dictGet('d', 'a', toUInt64(1))", "dictGet()",
                 id="dictionary functions are refused"),
    pytest.param("SELECT * FROM {db}.policy_decisions SETTINGS readonly = 0", "SETTINGS",
                 id="a SETTINGS clause is refused"),
    pytest.param("SELECT 1 FORMAT JSON", "FORMAT", id="a FORMAT clause is refused"),
    pytest.param("EXPLAIN SELECT * FROM file('/etc/passwd')", "file()",
                 id="EXPLAIN of a refused statement is refused"),
    pytest.param("DROP TABLE {db}.policy_events", "DROP statements are not allowed",
                 id="a DROP is refused naming the statement"),
    pytest.param("INSERT INTO {db}.policy_decisions (event_id) VALUES ('x')",
                 "INSERT statements are not allowed", id="an INSERT is refused"),
    pytest.param("SHOW PROCESSLIST", "not allowed", id="other sessions' queries are not shown"),
    pytest.param("SELEC 1", "does not parse", id="a syntax error is named"),
    pytest.param("   ;", "empty", id="an empty query is refused"),
]


@pytest.mark.parametrize("query,fragment", ATTACKS)
def test_every_attack_is_refused_and_leaves_no_trace(chdb_client, database, tmp_path, listener,
                                                     query, fragment):
    before = tables(chdb_client, database)
    text = query.format(db=database, tmp=tmp_path, port=listener)
    with pytest.raises(readonly_sql.NotReadOnly) as refused:
        readonly_sql.run(chdb_client, text)
    assert fragment in str(refused.value)
    assert tables(chdb_client, database) == before
    assert chdb_client.command("SELECT count() FROM policy_decisions") == 0
    assert list(tmp_path.iterdir()) == []
    assert _Listener.hits == []


@pytest.mark.parametrize("query,expected", [
    pytest.param("SELECT 1 AS one", [(1,)], id="a plain SELECT runs"),
    pytest.param("SELECT 1;", [(1,)], id="a trailing semicolon is fine"),
    pytest.param("WITH t AS (SELECT number AS n FROM numbers(3)) SELECT sum(n) FROM t",
                 [(3,)], id="a CTE over numbers() runs"),
    pytest.param("SELECT 1 UNION ALL SELECT 2 ORDER BY 1", [(1,), (2,)], id="UNION runs"),
    pytest.param("SELECT arrayMap(x -> x * 2, [1, 2])", [([2, 4],)], id="lambdas run"),
    pytest.param("SELECT 'INTO OUTFILE' AS text", [("INTO OUTFILE",)],
                 id="words inside a string are just text"),
    pytest.param("SELECT count() FROM policy_decisions", [(0,)],
                 id="PolicyScope's tables can be read"),
])
def test_read_only_queries_run(chdb_client, database, query, expected):
    assert readonly_sql.run(chdb_client, query).rows == expected


@pytest.mark.parametrize("query", ["SHOW TABLES", "DESCRIBE TABLE policy_decisions",
                                   "EXISTS TABLE policy_decisions", "EXPLAIN SELECT 1",
                                   "SHOW CREATE TABLE policy_decisions"])
def test_show_describe_exists_and_explain_run(chdb_client, database, query):
    assert readonly_sql.run(chdb_client, query).rows


def test_what_runs_is_the_statement_as_the_parser_rebuilt_it(chdb_client, database):
    assert readonly_sql.check(chdb_client, "select   1 -- a comment\n") == "SELECT 1"


@pytest.mark.parametrize("query,limits,code", [
    pytest.param("SELECT sleepEachRow(0.5) FROM numbers(20)",
                 {"max_execution_time": 1, "max_block_size": 1}, "TIMEOUT_EXCEEDED",
                 id="a query over its time limit is stopped"),
    pytest.param("SELECT sum(number) FROM numbers_mt(1000000000000)", {}, "TOO_MANY_ROWS",
                 id="a query that would read a trillion rows is stopped before it starts"),
    pytest.param("SELECT number FROM numbers(200000)", {}, "TOO_MANY_ROWS_OR_BYTES",
                 id="a result over the row limit is refused, not truncated"),
])
def test_a_query_past_its_limits_is_stopped(chdb_client, database, query, limits, code):
    from core import storage

    client = storage.another(chdb_client)  # a stopped query can leave its connection unusable
    try:
        with pytest.raises(Exception) as stopped:
            readonly_sql.run(client, query, {**readonly_sql.LIMITS, **limits})
        assert code in str(stopped.value)
    finally:
        client.close()


FRAGMENTS = ["SELECT", "1", "'", '"', "`", "#", "--", "/*", "*/", ";", "\n", " ",
             "file('/etc/passwd')", "INSERT INTO policy_decisions (event_id) VALUES ('f')",
             "CREATE TABLE fuzzed (x UInt8) ENGINE=Memory", "DROP TABLE policy_events",
             "INTO OUTFILE '/tmp/policyscope-fuzz'", "url('http://127.0.0.1:9/')", "FROM",
             "numbers(3)", "SETTINGS readonly=0", "\\", "$$", "EXPLAIN", "WITH x AS (SELECT 1)"]


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12))
def test_no_text_gets_past_the_guard_to_write(chdb_client, database, parts):
    before = tables(chdb_client, database)
    try:
        readonly_sql.run(chdb_client, "".join(parts))
    except readonly_sql.NotReadOnly:
        pass
    except Exception as exc:  # noqa: BLE001 - a read the engine refuses is fine; a write is not
        assert "DB::Exception" in str(exc), exc
    assert tables(chdb_client, database) == before
    assert chdb_client.command("SELECT count() FROM policy_decisions") == 0


def test_a_slow_query_leaves_health_and_ingest_free_and_a_second_one_waits(collector):
    port = collector.http_port
    token = {"Authorization": f"Bearer {collector.admin.token}"}
    answers: dict = {}

    def slow():
        answers["slow"] = post(port, "/api/sql", json.dumps({"query": "SELECT sleep(2)"})
                               .encode(), "application/json", headers=token)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.3)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as health:
        assert health.status == 200
    assert thread.is_alive(), "the slow query ended before /health was asked"
    second = post(port, "/api/sql", json.dumps({"query": "SELECT 1"}).encode(),
                  "application/json", headers=token)
    assert thread.is_alive(), "the slow query ended before the second one was sent"
    assert second[0] == 429 and second[1].get("Retry-After") == "1"
    thread.join(30)
    assert answers["slow"][0] == 200, answers["slow"]


def test_the_admin_api_refuses_a_hidden_statement_with_400(collector):
    status, _, body = post(collector.http_port, "/api/sql", json.dumps(
        {"query": "SELECT 1 # '\n; DROP TABLE policy_events; SELECT 2 # '"}).encode(),
        "application/json", headers={"Authorization": f"Bearer {collector.admin.token}"})
    assert status == 400 and "one statement" in json.loads(body)["error"]
    assert collector.pipeline.client.command("EXISTS TABLE policy_events") == 1


# -- the admin API's credential and request checks --------------------------------------------

def _ask(collector, headers=None, content_type="application/json", host=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{collector.http_port}/api/sql",
        data=json.dumps({"query": "SELECT count() AS n FROM policy_decisions"}).encode(),
        headers={"Content-Type": content_type, **(headers or {})}, method="POST")
    if host is not None:
        request.add_unredirected_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("case,status,fragment", [
    pytest.param("no token", 401, "token", id="a request without the token gets 401"),
    pytest.param("wrong token", 401, "token", id="a wrong token gets 401"),
    pytest.param("origin", 403, "cross-origin",
                 id="a request a web page sent (it has an Origin) gets 403, token or not"),
    pytest.param("rebound host", 403, "Host",
                 id="a DNS-rebinding Host gets 403, token or not"),
    pytest.param("text/plain", 415, "Content-Type",
                 id="a form-style text/plain body gets 415, token or not"),
])
def test_the_admin_api_refuses_what_a_hostile_page_or_user_can_send(collector, case, status,
                                                                    fragment):
    good = _bearer(collector.admin.token)
    sent = {"no token": lambda: _ask(collector),
            "wrong token": lambda: _ask(collector, _bearer("guess")),
            "origin": lambda: _ask(collector, {**good, "Origin": "http://evil.example"}),
            "rebound host": lambda: _ask(collector, good,
                                         host=f"rebind.evil.example:{collector.http_port}"),
            "text/plain": lambda: _ask(collector, good, content_type="text/plain")}[case]()
    assert sent[0] == status and fragment in sent[1]["error"]


def test_the_admin_api_answers_with_the_published_token(collector):
    from collector.admin import read_address

    url, token = read_address(collector.admin.path)
    assert url == f"http://127.0.0.1:{collector.http_port}" and token == collector.admin.token
    assert _ask(collector, _bearer(token)) == (200, {"columns": ["n"], "rows": [{"n": 0}]})


def test_the_published_token_is_private_to_the_collectors_user_and_removed_at_shutdown(
        chdb_client, database, config_factory):
    import stat

    from collector.service import CollectorService

    service = CollectorService(config_factory(), client=chdb_client, database=database)
    service.start()
    path = service.admin.path
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert service.admin.token in path.read_text()
    finally:
        service.shutdown()
    assert not path.exists()
