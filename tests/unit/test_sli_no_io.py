"""The SLI families and the window sums are definitions: frames in, rows out. They read only
through `metrics.sources` (which the families call with `ctx.client`) and never touch a client
or hold SQL themselves; `metrics.sli_writer` is the only writer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PURE = [*sorted((ROOT / "metrics" / "sli").glob("*.py")),
        *sorted((ROOT / "metrics" / "window_sums").glob("*.py")), ROOT / "metrics" / "windows.py"]
CLIENT_CALLS = {"query", "query_arrow", "query_df", "command", "insert", "insert_arrow",
                "insert_df", "raw_query"}
SQL_WORDS = ("SELECT ", "INSERT ", "FROM ", "WHERE ")


def docstrings(tree: ast.AST) -> set[int]:
    """Ids of the constant nodes that are docstrings (prose, not SQL)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) \
                and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant):
            out.add(id(node.body[0].value))
    return out


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_module_neither_calls_a_client_nor_holds_sql(path):
    tree = ast.parse(path.read_text(), str(path))
    prose = docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in CLIENT_CALLS:
            found.append(f"line {node.lineno} calls .{node.func.attr}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in prose and any(w in node.value.upper() for w in SQL_WORDS):
            found.append(f"line {node.lineno} holds SQL: {node.value[:40]!r}")
    assert found == []
