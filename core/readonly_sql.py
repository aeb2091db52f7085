"""Read-only SQL for users and operators (`policyscope sql`, the collector's loopback admin API).

Two guards: the statement must start with SELECT, WITH, SHOW, DESCRIBE/DESC or EXPLAIN and be a
single statement; and ClickHouse runs it with `readonly=1`, so even a crafted query cannot
write or change settings.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

ALLOWED = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN")
FORMATS = ("table", "json", "csv")


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


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_records(result: QueryResult) -> list[dict[str, Any]]:
    return [{c: _plain(v) for c, v in zip(result.columns, row)} for row in result.rows]


def render(result: QueryResult, fmt: str) -> str:
    """Render as 'json' (a list of objects), 'csv' (with header) or 'table' (plain text)."""
    if fmt == "json":
        return json.dumps(to_records(result), indent=2, default=str)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow([json.dumps(_plain(v)) if isinstance(v, (dict, list, tuple))
                             else _plain(v) for v in row])
        return out.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    cells = [[str(_plain(v)) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(result.columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    lines.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(lines)
