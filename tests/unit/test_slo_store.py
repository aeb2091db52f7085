"""The `slo` package talks to ClickHouse in one module, `slo/store.py`: no other module of `slo`
calls a client's query, command or insert methods or holds SQL (docstrings aside), and the
store names its tables from the registry (`schemas.tables`), never by string literal. Its SLI
inputs it reads through `metrics.read`, which these checks do not see."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from schemas.tables import all_tables

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
STORE = Path("slo/store.py")
# clickhouse-connect's Client methods that run SQL or write rows; any receiver counts (a
# `list.insert` here would have to live elsewhere or be written differently)
CLIENT_CALLS = frozenset({
    "query", "query_arrow", "query_arrow_stream", "query_df", "query_df_stream", "query_np",
    "query_rows", "raw_query", "raw_stream", "command", "insert", "insert_arrow", "insert_df",
    "raw_insert"})
SQL = re.compile(r"\bSELECT\s|\bINSERT\s+INTO\b|\bALTER\s+TABLE\b|\bOPTIMIZE\s+TABLE\b|"
                 r"\bTRUNCATE\s+TABLE\b|\bDELETE\s+FROM\b")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module and its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            found.add(id(node.body[0].value))
    return found


def _strings(tree: ast.AST) -> list[ast.Constant]:
    """Every string literal but docstrings (the literal parts of f-strings included)."""
    skip = _docstrings(tree)
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in skip]


def violations(root: Path = ROOT, tables: tuple[str, ...] = all_tables()) -> list[str]:
    out = []
    table_name = re.compile(r"\b(" + "|".join(map(re.escape, tables)) + r")\b")
    for path in sorted((root / "slo").rglob("*.py")):
        relative = path.relative_to(root)
        tree = ast.parse(path.read_text(), str(path))
        if relative == STORE:
            out += [f"{relative}:{n.lineno} names table {table_name.search(n.value)[0]!r} by a "
                    "string literal (use schemas.tables)"
                    for n in _strings(tree) if table_name.search(n.value)]
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in CLIENT_CALLS:
                out.append(f"{relative}:{node.lineno} calls .{node.func.attr}(): ClickHouse "
                           f"calls of slo live in {STORE}")
        out += [f"{relative}:{n.lineno} holds SQL ({SQL.search(n.value)[0].strip()!r}): SQL "
                f"of slo lives in {STORE}" for n in _strings(tree) if SQL.search(n.value)]
    return out


def test_only_the_store_talks_to_clickhouse():
    assert violations() == []


def test_the_store_is_where_the_alerting_tables_are_read_and_written():
    source = (ROOT / STORE).read_text()
    for name in ("ALERTS", "ALERT_EVENTS", "SILENCES", "BUDGET_POLICY_EVENTS",
                 "NOTIFICATION_DEAD_LETTERS"):
        assert re.search(rf"\b{name}\b", source), name


def test_the_check_sees_calls_and_sql_outside_the_store(tmp_path):
    (tmp_path / "slo" / "notify").mkdir(parents=True)
    (tmp_path / "slo" / "lifecycle.py").write_text(
        '"""Reads alerts: SELECT * FROM alerts, in a docstring, is fine."""\n'
        "def load(client):\n"
        '    """So is SELECT here."""\n'
        '    return client.query(f"SELECT * FROM {TABLE} FINAL")\n')
    (tmp_path / "slo" / "notify" / "sink.py").write_text(
        "def write(self, rows):\n"
        "    self.client.insert('alerts', rows)\n"
        "    sql = 'INSERT  INTO alerts VALUES'\n")
    (tmp_path / "slo" / "store.py").write_text(
        '"""The store: SELECT FROM alerts in its docstring."""\n'
        "def load(client):\n"
        '    return client.query(f"SELECT * FROM {ALERTS} FINAL")\n'
        "def save(client, rows):\n"
        "    client.insert('alerts', rows)\n")
    assert violations(tmp_path, ("alerts",)) == [
        "slo/lifecycle.py:4 calls .query(): ClickHouse calls of slo live in slo/store.py",
        "slo/lifecycle.py:4 holds SQL ('SELECT'): SQL of slo lives in slo/store.py",
        "slo/notify/sink.py:2 calls .insert(): ClickHouse calls of slo live in slo/store.py",
        "slo/notify/sink.py:3 holds SQL ('INSERT  INTO'): SQL of slo lives in slo/store.py",
        "slo/store.py:5 names table 'alerts' by a string literal (use schemas.tables)",
    ]
