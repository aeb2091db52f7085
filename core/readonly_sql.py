"""Read-only SQL for users and operators (`policyscope sql`, the collector's loopback admin API).

Two guards: the statement must start with SELECT, WITH, SHOW, DESCRIBE/DESC or EXPLAIN and be a
single statement; and ClickHouse runs it with `readonly=1`, so even a crafted query cannot
write or change settings. Printing the rows is the caller's; `plain` and `to_records` give the
JSON-ready values every printer and the admin API share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

ALLOWED = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN")


class NotReadOnly(ValueError):
    """The statement is not one `policyscope sql` runs."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]


def check(query: str) -> str:
    """Return the statement without a trailing ';', or raise NotReadOnly saying why."""
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", query, flags=re.S).strip().rstrip(";").strip()
    if not text:
        raise NotReadOnly("the query is empty")
    if ";" in re.sub(r"'(?:[^'\\]|\\.)*'", "''", text):
        raise NotReadOnly("only one statement may be run at a time")
    first = text.split(None, 1)[0].upper()
    if first not in ALLOWED:
        raise NotReadOnly(f"{first} statements are not allowed; `policyscope sql` runs only "
                          + ", ".join(ALLOWED) + " (read-only)")
    return text


def run(client: Client, query: str) -> QueryResult:
    result = client.query(check(query), settings={"readonly": 1})
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
