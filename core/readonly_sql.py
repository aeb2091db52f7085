"""Read-only SQL for users and operators (`policyscope sql`, the collector's loopback admin API).

Read-only by construction, not by pattern: ClickHouse's own parser reads the text
(`formatQuerySingleLine`, which refuses a second statement however it is hidden in comments
or quotes), and what runs is the statement *as the parser rebuilt it*, never the text that was
sent. Its syntax tree (`EXPLAIN AST`) must then be one of the statement kinds in `STATEMENTS`,
use no table function outside `TABLE_FUNCTIONS`, call no function that reaches outside the
database (`OUTSIDE`: files, URLs, object stores, other databases, programs, dictionaries), and
carry no `SETTINGS`, `FORMAT` or `INTO OUTFILE`. It runs with `readonly=1` and the resource
limits of `LIMITS` -- per query on chDB (which has no users), and on a server through the
reader user's settings profile, where they are constraints the query cannot lift
(`schemas.migrations.reader_statements`). Every refusal names what was refused. Printing the
rows is the caller's; `plain` and `to_records` give the JSON-ready values every printer and the
admin API share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

# root node of the syntax tree -> what it is called in messages
STATEMENTS = {"SelectWithUnionQuery": "SELECT", "ShowTables": "SHOW TABLES",
              "ShowColumns": "SHOW COLUMNS", "ShowCreateTableQuery": "SHOW CREATE TABLE",
              "ShowCreateViewQuery": "SHOW CREATE VIEW", "DescribeQuery": "DESCRIBE",
              "ExistsTableQuery": "EXISTS", "Explain": "EXPLAIN"}
ALLOWED = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN")
TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "values",
                             "generate_series", "view"})
# functions (by lower-cased name prefix) that read or write outside the database
OUTSIDE = ("file", "url", "s3", "gcs", "oss", "cos", "azure", "hdfs", "hive", "remote",
           "cluster", "executable", "mysql", "postgresql", "sqlite", "odbc", "jdbc", "mongo",
           "redis", "kafka", "nats", "rabbitmq", "iceberg", "deltalake", "hudi", "paimon",
           "input", "dict", "arrowflight", "ytsaurus", "prometheus", "loop", "fuzz")
# the limits every read-only query runs under (seconds, bytes, rows)
LIMITS = {"max_execution_time": 30, "max_memory_usage": 2 * 1024**3,
          "max_result_rows": 100_000, "max_result_bytes": 256 * 1024**2,
          "result_overflow_mode": "throw", "max_rows_to_read": 2_000_000_000}
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"")


class NotReadOnly(ValueError):
    """The statement is not one `policyscope sql` runs; the message says what was refused."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]


def parse(client: Client, query: str) -> tuple[str, list[tuple[int, str, str]]]:
    """ClickHouse's reading of `query`: the one statement rebuilt by its parser, and its syntax
    tree as (depth, node kind, the rest of the node's label) lines. Raises NotReadOnly for an
    empty query, a syntax error or more than one statement."""
    if not query.strip().rstrip(";").strip():
        raise NotReadOnly("the query is empty")
    try:
        canonical = client.query("SELECT formatQuerySingleLine({q:String})",
                                 parameters={"q": query}).result_rows[0][0]
    except Exception as exc:
        message = str(exc).split("\n")[0]
        if "Multi-statements are not allowed" in message:
            raise NotReadOnly("only one statement may be run at a time") from None
        if "DB::Exception" not in message:
            raise  # not the parser's verdict (the connection failed): the caller's to handle
        raise NotReadOnly("the query does not parse: " + _parser_message(message)) from None
    # EXPLAIN AST parses and prints, it runs nothing; `canonical` is one statement. (Settings
    # passed here would show in the tree as a SETTINGS clause of the user's.)
    lines = client.query("EXPLAIN AST " + canonical).result_rows
    tree = []
    for (line,) in lines:
        label = line.strip()
        kind, _, rest = label.partition(" ")
        tree.append((len(line) - len(line.lstrip()), kind, rest.split(" (children")[0]))
    return canonical, tree


def _parser_message(message: str) -> str:
    found = re.search(r"DB::Exception: (.*?)(?: : In scope SELECT formatQuerySingleLine.*)?$",
                      message)
    return (found.group(1) if found else message)[:300]


def check(client: Client, query: str) -> str:
    """The statement as ClickHouse's parser rebuilt it, if it may run read-only; else
    NotReadOnly naming what is refused."""
    canonical, tree = parse(client, query)
    root = tree[0][1] if tree else ""
    if root not in STATEMENTS:
        first = canonical.split(None, 1)[0].upper() if canonical.strip() else root
        raise NotReadOnly(f"{first} statements are not allowed; `policyscope sql` runs only "
                          + ", ".join(ALLOWED) + " (read-only)")
    if root == "Explain" and len(tree) > 1 and tree[1][1] not in STATEMENTS:
        raise NotReadOnly("EXPLAIN is allowed only of a read-only statement")
    parents: list[tuple[int, str]] = []
    for depth, kind, rest in tree:
        while parents and parents[-1][0] >= depth:
            parents.pop()
        parent = parents[-1][1] if parents else ""
        parents.append((depth, kind))
        if kind == "Set":
            raise NotReadOnly("SETTINGS clauses are not allowed: read-only queries run with "
                              "fixed settings and limits")
        if kind != "Function":
            continue
        name = rest.split(" ")[0]
        if parent == "TableExpression" and name.lower() not in TABLE_FUNCTIONS:
            raise NotReadOnly(f"the table function {name}() is not allowed; read-only queries "
                              "may read tables and " + ", ".join(sorted(TABLE_FUNCTIONS)))
        if name.lower().startswith(OUTSIDE):
            raise NotReadOnly(f"the function {name}() reaches outside the database and is not "
                              "allowed in read-only queries")
    bare = _STRING.sub("''", canonical)
    if re.search(r"\bINTO\s+OUTFILE\b", bare, re.IGNORECASE):
        raise NotReadOnly("INTO OUTFILE is not allowed: read-only queries write nothing")
    if re.search(r"\bFORMAT\s+\w+\s*$", bare, re.IGNORECASE):
        raise NotReadOnly("FORMAT clauses are not allowed: choose the output with --format")
    return canonical


def run(client: Client, query: str, limits: dict | None = None, *,
        server_enforced: bool = False) -> QueryResult:
    """Check `query` (`check`) and run the parser's statement with `readonly=1` and `limits`
    (default `LIMITS`). With `server_enforced`, `client` is logged in as the reader user,
    whose settings profile locks `readonly` and the limits: nothing is sent per query (a
    readonly=1 user may not set settings, and the server's values rule). A query stopped by a
    limit can leave an embedded (chDB) connection unusable: a long-lived caller opens a new
    one after any error but NotReadOnly."""
    statement = check(client, query)
    settings = {} if server_enforced else {"readonly": 1, **(LIMITS if limits is None
                                                            else limits)}
    result = client.query(statement, settings=settings)
    return QueryResult(list(result.column_names), [tuple(r) for r in result.result_rows])


def plain(value: Any) -> Any:
    """A value JSON can hold: dates as ISO 8601, Decimal as text, bytes as hex, mappings with
    text keys, sequences as lists (recursively); anything else unchanged."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def to_records(result: QueryResult) -> list[dict[str, Any]]:
    return [{c: plain(v) for c, v in zip(result.columns, row)} for row in result.rows]
