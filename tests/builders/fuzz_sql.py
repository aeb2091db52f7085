"""SQL for fuzzing the read-only guard (core/readonly_sql.py), and the sandbox that judges what
a statement did, shared by tests/fuzz/ and bench/fuzz.py.

`queries` generates text from a small grammar: read-only statements (SELECT, WITH, SHOW,
DESCRIBE, EXISTS, EXPLAIN) mixed with writes (INSERT, CREATE, DROP, ALTER, BACKUP, SET, ...),
several statements in one text with the joins hidden in `#`, `--` and `/* */` comments, in
"double-quoted" and `backquoted` identifiers and in string literals with quotes inside, table
functions and scalar functions that reach outside (file, url, s3, remote, executable, sqlite,
mysql, postgresql, hdfs, input, jdbc, odbc, dictionaries, ...), INTO OUTFILE, SETTINGS and
FORMAT clauses, in any letter case; plus soups of the same fragments. Paths and ports are
placeholders (`@DIR@`, `@CANARY@`, `@PORT@`, `@DB@`) that `SqlSandbox.fill` replaces.

`SqlSandbox` holds a scratch database with rows, a canary file, and a listening socket that
records every connection made to it (every url/remote/s3/... in the grammar points at it).
`SqlSandbox.verdict` runs one text through the guarded execution path the admin API uses
(`collector.admin.ReadOnlyQueries`, i.e. `readonly_sql.run` on a connection of its own) and
says whether it was refused, ran, or escaped: wrote (a table, database, function or
dictionary made, dropped or changed, a row count changed, a file created), read a file (the
canary opened -- its access time moved -- or its content or /etc/passwd's content in a result) or
reached the network (a connection)."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from clickhouse_connect.driver.exceptions import ClickHouseError
from hypothesis import strategies as st

from core import readonly_sql
from tests.builders.fuzz_verdicts import ACCEPTED, CRASH, REFUSED, Verdict

ENGINE_REFUSED = "engine-refused"  # the guard let it through, the engine refused it (a 400)
ESCAPED = "escaped"

HOST = "127.0.0.1:@PORT@"
OUTSIDE = [
    "file('@CANARY@')", "file('@CANARY@', 'LineAsString')", "FILE('@CANARY@', 'CSV', 'x String')",
    "file('../../../../../..@CANARY@', 'LineAsString')", "file('/etc/passwd', 'LineAsString')",
    "fileCluster('default', '@CANARY@', 'LineAsString')",
    "url('http://@HOST@/u', 'LineAsString')", "URL('http://localhost:@PORT@/u', 'CSV', 'x String')",
    "urlCluster('default', 'http://@HOST@/u', 'CSV', 'x String')",
    "s3('http://@HOST@/b/k.csv', 'CSV', 'x String')", "S3Cluster('default', 'http://@HOST@/b/k')",
    "gcs('http://@HOST@/b/k', 'CSV')", "azureBlobStorage('http://@HOST@/a', 'c', 'b', 'CSV')",
    "remote('@HOST@', system.one)", "remoteSecure('@HOST@', 'system', 'one')",
    "cluster('default', system.one)", "clusterAllReplicas('default', system.one)",
    "executable('cat @CANARY@', 'LineAsString', 'x String')",
    "executable('fuzz.sh', 'LineAsString', 'x String', (SELECT 1))",
    "sqlite('@DIR@/made.db', 't')", "mysql('@HOST@', 'db', 't', 'u', 'p')",
    "postgresql('@HOST@', 'db', 't', 'u', 'p')", "mongodb('@HOST@', 'db', 'c', 'u', 'p', 'x String')",
    "redis('@HOST@', 'k', 'k String')", "hdfs('hdfs://@HOST@/x', 'CSV', 'x String')",
    "input('x String')", "jdbc('jdbc:mysql://@HOST@/db', 't')", "odbc('DSN=fuzz', 't')",
    "dictionary('fuzz_dictionary')", "iceberg('http://@HOST@/i')", "deltaLake('http://@HOST@/d')",
    "hudi('http://@HOST@/h')", "loop(numbers(3))", "merge('@DB@', '.*')",
    "merge(currentDatabase(), '^policy')", "generateRandom('a UInt8', 1, 10, 2)", "null('x UInt8')",
    "format(CSV, 'x String', '1')", "fuzzJSON('{}', 1)", "view(SELECT 1 AS x)",
    "numbers(3)", "numbers(1, 5)", "numbers_mt(4)", "zeros(2)", "values('x UInt8', 1, 2)",
    "generate_series(1, 3)", "mergeTreeIndex('@DB@', 'policy_decisions')", "system.one", "system.numbers", "system.tables", "policy_decisions",
    "@DB@.policy_events", "`policy_decisions`", '"policy_events"', "nope",
]
SCALARS = [
    "1", "0", "-1", "NULL", "'a'", "'it''s'", "'a\\'b'", "'; DROP TABLE policy_events; --'",
    "'\\\\'", "'#'", "'--'", "'/*'", "[1, 2]", "(1, 'x')", "1e308", "'@CANARY@'", "now()",
    "count()", "x", "number", "*", "policy_id", "currentDatabase()", "version()", "getSetting('readonly')",
    "file('@CANARY@')", "length(file('@CANARY@'))", "substring(file('/etc/passwd'), 1, 20)",
    "dictGet('fuzz_dictionary', 'a', toUInt64(1))", "dictHas('d', 1)", "joinGet('j', 'v', 1)",
    "arrayMap(x -> x * 2, [1, 2])", "`x'`", '"x;"', "(SELECT 1)", "(SELECT * FROM file('@CANARY@'))",
    "throwIf(0)", "sleep(0)", "hostName()", "toString(number) AS \"'\"",
    "catboostEvaluate('@CANARY@', 1)", "naiveBayesClassifier('m', 'x')", "showCertificate()",
    "getSetting('max_execution_time')", "filesystemAvailable()",
]
TAILS = ["", "", "", " LIMIT 3", " INTO OUTFILE '@DIR@/out.txt'", " INTO OUTFILE 'fuzz-out.txt'",
         " INTO OUTFILE '@DIR@/o.gz' AND STDOUT", " INTO OUTFILE '@DIR@/a.txt' APPEND",
         " SETTINGS readonly = 0", " SETTINGS max_execution_time = 0, readonly = 2",
         " FORMAT JSON", " FORMAT TabSeparated", " FORMAT Null", " SETTINGS allow_ddl = 1 FORMAT CSV"]
WRITES = [
    "INSERT INTO policy_decisions (event_id, event_time, policy_id, outcome) VALUES "
    "('forged', now(), 'p', 'allow')", "INSERT INTO @DB@.policy_events SELECT * FROM policy_events",
    "INSERT INTO FUNCTION file('@DIR@/w.csv', 'CSV', 'x UInt8') VALUES (1)",
    "INSERT INTO TABLE FUNCTION url('http://@HOST@/w', 'CSV', 'x UInt8') VALUES (1)",
    "CREATE TABLE @DB@.fuzzed (x UInt8) ENGINE = Memory", "CREATE TABLE default.fuzzed AS system.one",
    "CREATE DATABASE fuzz_made", "CREATE VIEW @DB@.fuzz_view AS SELECT 1",
    "CREATE MATERIALIZED VIEW @DB@.fuzz_mv ENGINE = Memory AS SELECT * FROM policy_decisions",
    "CREATE TEMPORARY TABLE fuzz_tmp (x UInt8)", "CREATE FUNCTION fuzz_f AS x -> x",
    "CREATE USER fuzz_user", "GRANT ALL ON *.* TO default", "SET readonly = 0", "USE system",
    "CREATE DICTIONARY @DB@.fuzz_dictionary (a UInt64) PRIMARY KEY a SOURCE(FILE(path "
    "'@CANARY@' format 'CSV')) LAYOUT(FLAT()) LIFETIME(0)",
    "DROP TABLE policy_events", "DROP TABLE IF EXISTS @DB@.policy_decisions", "DROP DATABASE @DB@",
    "TRUNCATE TABLE policy_decisions", "DETACH TABLE policy_events", "RENAME TABLE policy_events TO pe2",
    "EXCHANGE TABLES policy_events AND policy_decisions", "ALTER TABLE policy_decisions DELETE WHERE 1",
    "ALTER TABLE policy_decisions UPDATE team = 'x' WHERE 1", "DELETE FROM policy_decisions WHERE 1",
    "ALTER TABLE policy_decisions ADD COLUMN fuzz UInt8", "OPTIMIZE TABLE policy_decisions FINAL",
    "BACKUP TABLE policy_decisions TO File('@DIR@/b.zip')", "RESTORE TABLE x FROM File('@DIR@/b.zip')",
    "SYSTEM FLUSH LOGS", "SYSTEM STOP MERGES", "SYSTEM DROP DNS CACHE", "KILL QUERY WHERE 1",
    "ATTACH TABLE fuzz_at (x UInt8) ENGINE = Memory", "UNDROP TABLE policy_events",
    "CHECK TABLE policy_decisions", "WATCH fuzz_view",
]
SHOWS = ["SHOW TABLES", "SHOW TABLES FROM @DB@", "SHOW DATABASES", "SHOW PROCESSLIST",
         "SHOW CREATE TABLE policy_decisions", "SHOW GRANTS", "SHOW USERS", "SHOW DICTIONARIES",
         "SHOW SETTINGS LIKE 'read%'", "SHOW COLUMNS FROM policy_decisions", "SHOW ENGINES",
         "DESCRIBE TABLE policy_decisions", "DESC system.one", "EXISTS TABLE policy_decisions",
         "EXISTS DATABASE @DB@", "SHOW CREATE DICTIONARY fuzz_dictionary", "SHOW FUNCTIONS"]
SEPARATORS = ["; ", ";\n", " # '\n; ", " -- '\n; ", "-- \n;", " /* ' */; ", "/*;*/;", ";/* */",
              " AS \"x'\"; ", " AS `x'`; ", " AS \"x\\\"\"; ", ", 'a'''; ", " #!\n;", ";;"]
HIDERS = ["", " # '", " -- '", " /* '", " AS \"'\"", " AS `'`", " # ;", "--", "/* */", ";"]
PREFIXES = ["", "", "/* */ ", "-- x\n", "# x\n", "/* ; DROP TABLE policy_events; */ ", "\n ",
            "(", "/*! */"]
EXPLAINS = ["EXPLAIN ", "EXPLAIN AST ", "EXPLAIN SYNTAX ", "EXPLAIN PLAN ", "EXPLAIN PIPELINE ",
            "EXPLAIN ESTIMATE ", "EXPLAIN QUERY TREE ", "EXPLAIN TABLE OVERRIDE "]

scalars = st.sampled_from(SCALARS)
sources = st.sampled_from(OUTSIDE)


@st.composite
def selects(draw, depth: int = 0) -> str:
    text = "SELECT " + ", ".join(draw(st.lists(scalars, min_size=1, max_size=3)))
    if draw(st.booleans()):
        text += " FROM " + draw(sources)
        if depth < 1 and draw(st.integers(0, 3)) == 0:
            text += draw(st.sampled_from([" AS a CROSS JOIN ", " AS a, ", " JOIN "])) + \
                draw(sources) + (" AS b USING (x)" if "JOIN " in text[-8:] else " AS b")
    if draw(st.integers(0, 3)) == 0:
        text += " WHERE " + draw(scalars) + draw(st.sampled_from([" = 1", " IN (1)", ""]))
    if depth < 1 and draw(st.integers(0, 4)) == 0:
        text += draw(st.sampled_from([" UNION ALL ", " UNION DISTINCT ", " EXCEPT "])) + \
            draw(selects(depth + 1))
    return text + draw(st.sampled_from(TAILS))


@st.composite
def statements(draw) -> str:
    choice = draw(st.integers(0, 9))
    if choice <= 3:
        return draw(selects())
    if choice == 4:
        return "WITH t AS (" + draw(selects(1)) + ") " + draw(selects(1))
    if choice == 5:
        return draw(st.sampled_from(EXPLAINS)) + draw(st.one_of(selects(1), st.sampled_from(WRITES)))
    if choice == 6:
        return draw(st.sampled_from(SHOWS)) + draw(st.sampled_from(TAILS))
    if choice == 7:
        return "DESCRIBE " + draw(st.sampled_from(["", "TABLE "])) + draw(sources)
    return draw(st.sampled_from(WRITES))


@st.composite
def queries(draw) -> str:
    """One text for the guard: a statement, several joined behind hiders, or a fragment soup."""
    shape = draw(st.integers(0, 5))
    if shape <= 1:
        text = draw(st.sampled_from(PREFIXES)) + draw(statements())
    elif shape <= 3:
        parts = draw(st.lists(statements(), min_size=2, max_size=3))
        text = draw(st.sampled_from(PREFIXES)) + parts[0]
        for part in parts[1:]:
            text += draw(st.sampled_from(SEPARATORS)) + part
        text += draw(st.sampled_from(HIDERS))
    elif shape == 4:
        text = draw(selects()) + " " + draw(st.sampled_from(["'", '"', "`", "/*", "--", "#"])) + \
            draw(st.sampled_from(SEPARATORS)) + draw(st.sampled_from(WRITES)) + \
            draw(st.sampled_from(HIDERS))
    else:
        soup = [*SEPARATORS, *HIDERS, *PREFIXES, "SELECT ", "FROM ", "1", "'", '"', "`", "\\",
                "$$", *WRITES[:8], *OUTSIDE[:12], *TAILS[4:]]
        text = "".join(draw(st.lists(st.sampled_from(soup), min_size=1, max_size=12)))
    case = draw(st.sampled_from(["as is", "as is", "lower", "upper", "swap"]))
    return {"as is": text, "lower": text.lower(), "upper": text.upper(),
            "swap": text.swapcase()}[case]


_FUNCTIONS = "SELECT concat('function ', name) FROM system.functions WHERE origin != 'System'"
_SNAPSHOT = """
SELECT concat('table ', database, '.', name, ' ', engine, ' ', toString(ifNull(total_rows, 0)))
  FROM system.tables WHERE database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema')
UNION ALL SELECT concat('system table ', name) FROM system.tables WHERE database = 'system'
UNION ALL SELECT concat('database ', name) FROM system.databases
UNION ALL SELECT concat('dictionary ', database, '.', name) FROM system.dictionaries
"""


class _Listener:
    """A loopback TCP socket that records every connection, answers it with a tiny HTTP 200
    and closes it."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections: list[str] = []
        self._thread = threading.Thread(target=self._accept, name="fuzz-listener", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self.socket.accept()
            except OSError:
                return  # closed
            self.connections.append(f"{peer[0]}:{peer[1]}")
            try:  # an answer, so an HTTP client stops at once instead of retrying a reset
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
                             b"x\n")
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self.socket.close()


class SqlSandbox:
    """A scratch database, a canary file and a recording listener; see the module docstring.
    `client` must come from `core.storage.connect` (the guarded path opens its own
    connection from it); `database` should hold PolicyScope's tables and a few rows."""

    def __init__(self, client, database: str, directory: Path):
        self.client, self.database, self.dir = client, database, Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.canary = self.dir / "canary.txt"
        self.secret = "CANARY" + secrets.token_hex(12)
        self.canary.write_text(self.secret + "\n")
        # Reads are seen two ways: the canary's content in a result, and its access time,
        # set to 1970 before each statement (relatime then updates it on any read) -- where
        # the filesystem keeps access times at all (checked once here).
        self._arm()
        self.canary.read_text()
        self.atime_works = self._was_read()
        self._arm()
        self.listener = _Listener()
        self.queries = _guarded_path(client)
        self.busy_retries = 0  # spurious 429s (see `guarded`)
        self.state = self.snapshot()

    def fill(self, text: str) -> str:
        return text.replace("@HOST@", HOST).replace("@PORT@", str(self.listener.port)) \
            .replace("@CANARY@", str(self.canary)).replace("@DIR@", str(self.dir)) \
            .replace("@DB@", self.database)

    def snapshot(self, functions: bool = True) -> frozenset[str]:
        """Tables (and their row counts), databases, dictionaries, files in the sandbox and
        ./fuzz*; and user-defined functions if `functions` (system.functions costs 50 ms; only
        a text with the word FUNCTION can make one)."""
        rows = self.client.query(_SNAPSHOT).result_rows
        if functions:
            rows += self.client.query(_FUNCTIONS).result_rows
        else:
            rows += [(f,) for f in self.state if f.startswith("function ")]
        files = {f"file {p}" for p in self.dir.rglob("*") if p != self.canary}
        files |= {f"file ./{name}" for name in os.listdir(".") if name.startswith("fuzz")}
        return frozenset(r[0] for r in rows) | files

    def _arm(self) -> None:
        os.utime(self.canary, (0, self.canary.stat().st_mtime))

    def _was_read(self) -> bool:
        return self.canary.stat().st_atime != 0

    def leaked(self, result_text: str) -> bool:
        windows = {self.secret[i:i + 8] for i in range(len(self.secret) - 7)}
        return any(w in result_text for w in windows) or "root:x:0:0" in result_text

    def guarded(self, query: str) -> list:
        """The rows of `query` run as the admin API runs it (raises its refusals). The admin
        API answers 429 while its previous query's thread still holds the busy lock -- which
        it does for a moment after the answer (collector/admin.py sets the result, then
        releases): such a refusal is counted in `busy_retries` and the query sent again."""
        for _ in range(1000):
            result = asyncio.run(self.queries.run(query))
            if result is not None:
                return result.rows
            self.busy_retries += 1
            time.sleep(0.005)
        raise AssertionError("the guarded path stayed busy for 5 s with no query running")

    def verdict(self, text: str, run=None) -> Verdict:
        """Run `text` (placeholders filled) through `run` (default: the guarded path; a
        test of this oracle passes an unguarded one) and judge what it did."""
        query = self.fill(text)
        seen = len(self.listener.connections)
        try:
            kind, detail = ACCEPTED, repr((run or self.guarded)(query))
        except readonly_sql.NotReadOnly as exc:
            kind, detail = REFUSED, str(exc)
        except ClickHouseError as exc:
            kind, detail = ENGINE_REFUSED, str(exc).split("\n")[0][:300]
        except Exception as exc:  # noqa: BLE001 - the admin API would answer 500: a crash
            kind, detail = CRASH, f"{type(exc).__name__}: {exc}"
        escapes = []
        now = self.snapshot(functions="function" in query.lower())
        if now != self.state:
            escapes.append("wrote: " + ", ".join(sorted(now ^ self.state))[:300])
            self.state = now
        if kind == ACCEPTED and self.leaked(detail):
            escapes.append("read a file: " + detail[:200])
        elif self.atime_works and self._was_read():
            escapes.append(f"read a file: the canary was opened ({kind}: {detail[:150]})")
        if self.atime_works and self._was_read():
            self._arm()
        if len(self.listener.connections) > seen:
            escapes.append(f"reached the network ({len(self.listener.connections) - seen} "
                           "connections)")
        if escapes:
            return Verdict(ESCAPED, f"{query!r} ({kind}) -> " + "; ".join(escapes), escapes)
        return Verdict(kind, detail[:300])

    def close(self) -> None:
        self.listener.close()
        self.queries.close()


def _guarded_path(client):
    """The admin API's runner of read-only queries (collector.admin), on `client`'s store."""
    from collector.admin import ReadOnlyQueries

    return ReadOnlyQueries(SimpleNamespace(client=client))
