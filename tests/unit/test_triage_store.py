"""The `triage` package talks to ClickHouse in one module, `triage/store.py`: no other module of
`triage` calls a client's query, command or insert methods or holds SQL (docstrings aside);
the store names its tables from the registry, never by string literal, and only ever reads or
INSERTs (the verdict history is append-only: no UPDATE, DELETE, ALTER or TRUNCATE)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from schemas.tables import all_tables
from tests.unit.test_slo_store import CLIENT_CALLS, SQL, _strings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
STORE = Path("triage/store.py")
MUTATIONS = re.compile(r"\b(UPDATE|DELETE|ALTER|TRUNCATE|OPTIMIZE|DROP|RENAME)\b")


def violations(root: Path = ROOT, tables: tuple[str, ...] = all_tables()) -> list[str]:
    out = []
    table_name = re.compile(r"\b(" + "|".join(map(re.escape, tables)) + r")\b")
    for path in sorted((root / "triage").rglob("*.py")):
        relative = path.relative_to(root)
        tree = ast.parse(path.read_text(), str(path))
        if relative == STORE:
            for node in _strings(tree):
                if table_name.search(node.value):
                    out.append(f"{relative}:{node.lineno} names table "
                               f"{table_name.search(node.value)[0]!r} by a string literal")
                if MUTATIONS.search(node.value):
                    out.append(f"{relative}:{node.lineno} holds "
                               f"{MUTATIONS.search(node.value)[0]}: the store only reads "
                               "and inserts")
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in CLIENT_CALLS:
                out.append(f"{relative}:{node.lineno} calls .{node.func.attr}(): ClickHouse "
                           f"calls of triage live in {STORE}")
        out += [f"{relative}:{n.lineno} holds SQL ({SQL.search(n.value)[0].strip()!r}): SQL "
                f"of triage lives in {STORE}" for n in _strings(tree) if SQL.search(n.value)]
    return sorted(out)


def test_only_the_store_talks_to_clickhouse_and_it_only_reads_and_inserts():
    assert violations() == []


def test_the_store_is_where_the_triage_tables_are_read_and_written():
    source = (ROOT / STORE).read_text()
    for name in ("TRIAGE_HISTORY", "TRIAGE_RULES", "TRIAGE_VERDICTS"):
        assert re.search(rf"\b{name}\b", source), name


def test_the_check_sees_calls_sql_and_mutations(tmp_path):
    (tmp_path / "triage").mkdir()
    (tmp_path / "triage" / "queue.py").write_text(
        '"""SELECT in a docstring is fine."""\n'
        "def load(client):\n"
        '    return client.query(f"SELECT * FROM {TABLE}")\n')
    (tmp_path / "triage" / "store.py").write_text(
        '"""The store: DELETE in its docstring is prose."""\n'
        "def wipe(client):\n"
        '    client.command(f"ALTER TABLE {T} DELETE WHERE 1")\n'
        "def save(client, rows):\n"
        "    client.insert('triage_history', rows)\n")
    assert violations(tmp_path, ("triage_history",)) == [
        "triage/queue.py:3 calls .query(): ClickHouse calls of triage live in triage/store.py",
        "triage/queue.py:3 holds SQL ('SELECT'): SQL of triage lives in triage/store.py",
        "triage/store.py:3 holds ALTER: the store only reads and inserts",
        "triage/store.py:3 holds DELETE: the store only reads and inserts",
        "triage/store.py:5 names table 'triage_history' by a string literal",
    ]
