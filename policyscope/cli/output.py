"""How the CLI prints results: a plain-text table, JSON (a list of objects) or CSV.

Every verb that prints rows or JSON goes through here. Values are made plain first
(`core.readonly_sql.plain`: dates as ISO 8601, Decimal as text, bytes as hex), so a table,
a JSON document and a CSV file of one result agree.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import typer

from core.readonly_sql import plain

FORMATS = ("table", "json", "csv")
TABLE_OR_JSON = ("table", "json")  # the verbs whose rows are not flat


def to_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Aligned columns: a header, a dashed rule, one line per row, then "(N rows)"."""
    cells = [[str(plain(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    lines.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(lines)


def to_json(value: Any) -> str:
    """Indented JSON of plain values (a list of objects, for rows); what JSON cannot hold
    otherwise is written as its str()."""
    return json.dumps(plain(value), indent=2, default=str)


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A header line, then one line per row; nested values (maps, arrays) as JSON text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([json.dumps(plain(v)) if isinstance(v, (dict, list, tuple))
                         else plain(v) for v in row])
    return out.getvalue().rstrip("\n")


def render(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str) -> str:
    """Rows as `fmt`, one of FORMATS; 'json' is a list of {column: value} objects."""
    if fmt == "json":
        return to_json([dict(zip(columns, row)) for row in rows])
    if fmt == "csv":
        return to_csv(columns, rows)
    if fmt != "table":
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    return to_table(columns, rows)


def emit(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "table") -> None:
    """Print rows as `fmt` on stdout."""
    typer.echo(render(columns, rows, fmt))


def emit_json(value: Any) -> None:
    """Print `value` (usually a list of objects) as indented JSON on stdout."""
    typer.echo(to_json(value))


def number(value: float | None) -> str:
    """A table cell for a ratio, burn rate or duration: 3 significant digits, '-' for none."""
    return "-" if value is None else f"{value:.3g}"


def labels(mapping: Mapping[str, Any], sep: str = ",") -> str:
    """Dimension values or matchers as one cell: team=a,service=b."""
    return sep.join(f"{k}={v}" for k, v in mapping.items())
