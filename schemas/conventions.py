"""Renders `schemas/conventions.md`, the OTLP attribute -> column mapping, from schemas/events.py.

The Markdown file is generated, never edited by hand: `python -m schemas.conventions` rewrites
it, `python -m schemas.conventions --check` exits 1 when it is stale (CI and
`tests/unit/test_schema_contract.py` run the check).

The only facts that live here rather than in events.py are how the normalizer fills the columns
that come from the record itself (`RECORD_SOURCES`) and how a value of each `ValueType` is
coerced (`VALUE_RULES`); the contract test checks both cover every column and value type.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from schemas.events import (
    ENGINES,
    EVENT_KINDS,
    EVENT_NAME_ATTRIBUTE,
    TABLES,
    UID_ATTRIBUTE,
    Column,
    Table,
    ValueType,
)

PATH = Path(__file__).with_name("conventions.md")

# Columns filled from the record itself (Column.attributes is empty), and from what.
RECORD_SOURCES: dict[str, str] = {
    "event_id": (f"the `{UID_ATTRIBUTE}` attribute, else a content hash of the record with its "
                 "scope and resource (same record twice -> same id); the deduplication key"),
    "event_time": ("log record `time_unix_nano`, else `observed_time_unix_nano`, else the receive "
                   "time; a span's start time; a span event's time"),
    "observed_time": "log record `observed_time_unix_nano`, else the receive time",
    "trace_id": "the record's or span's `trace_id` as lower-case hex; empty when absent",
    "span_id": "the record's or span's `span_id` as lower-case hex; empty when absent",
    "attributes": ("the record's attributes that map to no column (not the scope's or "
                   "resource's), at most `collector.max_extra_attributes` keys, long values "
                   "truncated, non-string values as JSON; a key matching "
                   "`collector.redact_attributes` (passwords, tokens, API keys, ...) is stored "
                   "with the value `[REDACTED]`, and in every value (as in every string column) "
                   "what `collector.redact_values` matches (AWS keys, tokens, JWTs, private "
                   f"keys, URL passwords, ...) is replaced by `[REDACTED]`; `{EVENT_NAME_ATTRIBUTE}` "
                   f"and `{UID_ATTRIBUTE}` are not repeated here"),
    "event_kind": f"the kind: the log record's `event_name`, else the `{EVENT_NAME_ATTRIBUTE}` "
                  "attribute",
}

# How an attribute value of each kind of column is coerced; a value that cannot be is rejected.
VALUE_RULES: dict[ValueType, str] = {
    ValueType.STRING: ("any value; booleans become `true`/`false`, arrays and maps JSON, "
                       "bytes lower-case hex, numbers their decimal text"),
    ValueType.ENUM: ("a string, trimmed and lower-cased (`DENY` -> `deny`), that must be one of "
                     "the column's allowed values"),
    ValueType.FLOAT: "a finite number, or a string holding one (NaN and infinities are rejected)",
    ValueType.UINT: "a non-negative integer, or a string holding one",
    ValueType.BOOL: "a boolean, or the string `true` / `false` (any case)",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(values) -> str:
    return ", ".join(f"`{v}`" for v in values)


def value_type(column: Column) -> str:
    """The wire-facing type of a column, as the tables show it."""
    if column.clickhouse_type.startswith("DateTime64"):
        return "timestamp (ms, UTC)"
    if column.clickhouse_type.startswith("Map("):
        return "map string -> string"
    return column.value_type.value


def default_text(column: Column) -> str:
    if column.name in RECORD_SOURCES:
        return "—"
    if column.default is None:
        return "NULL"
    if column.default == "":
        return "`\"\"` (empty)"
    return f"`{column.default}`"


def attribute_text(column: Column) -> str:
    if not column.attributes:
        return "*(from the record, see below)*"
    first, *aliases = column.attributes
    text = f"`{first}`"
    if aliases:
        text += " (alias " + ", ".join(f"`{a}`" for a in aliases) + ")"
    return text


def required_by(table: Table, column: Column) -> list[str]:
    """The kinds stored in `table` that reject a record without this column."""
    return [k.name for k in EVENT_KINDS.values()
            if k.table.name == table.name and column.name in k.required]


def _required_text(table: Table, column: Column) -> str:
    if column.name in RECORD_SOURCES:
        return "always set"
    kinds = required_by(table, column)
    return _code(kinds) if kinds else "no"


def _kind_table() -> list[str]:
    lines = ["| kind | table | required attributes (column) | meaning |",
             "|---|---|---|---|"]
    for kind in EVENT_KINDS.values():
        columns = {c.name: c for c in kind.table.columns}
        required = ", ".join(f"`{columns[name].attributes[0]}` ({name})" if columns[name].attributes
                             else f"({name})" for name in kind.required) or "—"
        lines.append(f"| `{kind.name}` | `{kind.table.name}` | {required} | {_cell(kind.doc)} |")
    return lines


def _column_table(table: Table) -> list[str]:
    lines = ["| attribute | column | type | ClickHouse type | required? | default | meaning |",
             "|---|---|---|---|---|---|---|"]
    for c in table.columns:
        lines.append(f"| {attribute_text(c)} | `{c.name}` | {value_type(c)} | "
                     f"`{c.clickhouse_type}` | {_required_text(table, c)} | {default_text(c)} | "
                     f"{_cell(c.doc)} |")
    return lines


def _enum_table() -> list[str]:
    lines = ["| column | attribute | allowed values | default | tables |", "|---|---|---|---|---|"]
    seen: dict[str, tuple[Column, list[str]]] = {}
    for table in TABLES:
        for c in table.columns:
            if c.value_type is ValueType.ENUM:
                seen.setdefault(c.name, (c, []))[1].append(table.name)
    for c, tables in seen.values():
        lines.append(f"| `{c.name}` | `{c.attributes[0]}` | {_code(c.allowed)} | "
                     f"{default_text(c)} | {_code(tables)} |")
    return lines


def render() -> str:
    """The full text of conventions.md (deterministic: no dates, no environment)."""
    out = [
        "# PolicyScope OTLP conventions",
        "",
        "<!-- Generated by `python -m schemas.conventions` from schemas/events.py. "
        "Do not edit by hand. -->",
        "",
        "How an OpenTelemetry log record (or span) becomes a row of `policy_decisions` or "
        "`policy_events`. This is the wire contract of ingest: columns are added, attributes are "
        "never renamed without still accepting the old name as an alias.",
        "",
        "## Recognising an event",
        "",
        f"- A log record is a PolicyScope event when it names a kind in its `event_name` field "
        f"or in an `{EVENT_NAME_ATTRIBUTE}` attribute. A span is one when it carries "
        f"`{EVENT_NAME_ATTRIBUTE}` (or is named after a kind); each span event named after a "
        "kind is one too.",
        "- A record without a kind, or with an unknown kind outside the `policy.` namespace, is "
        "**ignored** (counted, not stored, not an error).",
        "- A record whose kind is an unknown `policy.*` kind, that lacks a required attribute, or "
        "whose attribute value cannot be coerced is **rejected** with a reason code: "
        "`unknown_kind`, `missing_<column>`, `invalid_<column>`.",
        "",
        "## Where attributes may sit",
        "",
        "Attributes may sit on the log record, its instrumentation scope or its resource. The "
        "record wins over the scope and the resource, even when the record uses an alias and "
        "the scope or resource the preferred name; for the same key, the scope wins over the "
        "resource. Otherwise, when a column lists several attributes, the first one present "
        "wins. An attribute without a value counts as absent.",
        "",
        "## Event kinds",
        "",
        *_kind_table(),
    ]
    for table in TABLES:
        kinds = [k.name for k in EVENT_KINDS.values() if k.table.name == table.name]
        out += ["", f"## Table `{table.name}`", "",
                f"Holds {_code(kinds)}. Columns in table order; ClickHouse adds `ingested_at` "
                "(insert time) after them.", "", *_column_table(table)]
    out += ["", "## Columns filled from the record", "",
            "| column | source |", "|---|---|"]
    out += [f"| `{name}` | {_cell(text)} |" for name, text in RECORD_SOURCES.items()]
    out += ["", "## Enumerations", "",
            "Compared after trimming and lower-casing; any other value rejects the record with "
            "`invalid_<column>`. An absent attribute takes the default.", "", *_enum_table(),
            "", "`engine` (`policy.engine`) is free text; the engines PolicyScope knows are "
            f"{_code(ENGINES)}."]
    out += ["", "## Value coercion", "", "| type | accepted values |", "|---|---|"]
    out += [f"| {vt.value} | {_cell(text)} |" for vt, text in VALUE_RULES.items()]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.conventions",
                                     description="Render schemas/conventions.md from events.py.")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if conventions.md differs from what would be rendered")
    args = parser.parse_args(argv)
    text = render()
    current = PATH.read_text(encoding="utf-8") if PATH.exists() else ""
    if args.check:
        if current != text:
            print(f"{PATH} is stale; run `python -m schemas.conventions` and commit the result")
            return 1
        print(f"{PATH} is up to date")
        return 0
    if current != text:
        PATH.write_text(text, encoding="utf-8")
        print(f"wrote {PATH}")
    else:
        print(f"{PATH} unchanged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
