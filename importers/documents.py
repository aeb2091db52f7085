"""Reading an import's input with positions: a JSON document (value access that names the JSON
path of what is missing or mistyped), JSON lines (line numbers) and CSV (row numbers).

`Document` is what every parser gets: the file's name (`-` reads as `<stdin>`) and its text.
A parser walks the parsed JSON through `Node`s, so a wrong value fails with
`MalformedInput("reports.json", "$.items[2].results[0].result", "one of pass, fail, ...")`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from importers.errors import MalformedInput


@dataclass(frozen=True)
class Document:
    name: str  # for messages: the path given, or <stdin>
    text: str

    def json(self) -> "Node":
        """The whole text as one JSON value."""
        try:
            value = json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise MalformedInput(self.name, f"line {exc.lineno} column {exc.colno}",
                                 f"valid JSON ({exc.msg})") from None
        return Node(self.name, "$", value)

    def json_lines(self) -> Iterator[tuple[int, "Node"]]:
        """(line number, Node) of every non-blank line, each one JSON value."""
        for number, line in enumerate(self.text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MalformedInput(self.name, f"line {number} column {exc.colno}",
                                     f"one JSON value per line ({exc.msg})") from None
            yield number, Node(self.name, f"line {number}: $", value)

    def csv_rows(self, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
        """(line number, row) of a CSV file with a header naming at least `required`."""
        reader = csv.DictReader(io.StringIO(self.text))
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise MalformedInput(self.name, "line 1", "a CSV header with the columns "
                                 + ", ".join(required), ",".join(header) or "nothing")
        for row in reader:
            if None in row:  # more fields than the header
                raise MalformedInput(self.name, f"line {reader.line_num}",
                                     f"{len(header)} fields as in the header",
                                     f"{len(header) + len(row[None])} fields")
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}

    def looks_like_json_lines(self) -> bool:
        """Several JSON values, one per line (not one document spread over lines)."""
        lines = [line for line in self.text.splitlines() if line.strip()]
        if len(lines) < 2:
            return False
        try:
            json.loads(lines[0])
        except json.JSONDecodeError:
            return False
        return True


@dataclass(frozen=True)
class Node:
    """A JSON value and where it is (`path`), for messages that point at it."""

    source: str
    path: str
    value: Any

    def fail(self, expected: str, got: object = None) -> MalformedInput:
        return MalformedInput(self.source, self.path, expected, got)

    def child(self, key: str | int) -> "Node":
        suffix = f"[{key}]" if isinstance(key, int) else f".{key}"
        value = self.value.get(key) if isinstance(self.value, dict) else None
        return Node(self.source, self.path + suffix, value)

    # -- typed access ----------------------------------------------------------------------
    def mapping(self) -> dict:
        if not isinstance(self.value, dict):
            raise self.fail("an object", self.value)
        return self.value

    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    def items(self, key: str, *, required: bool = False) -> list["Node"]:
        """The elements of the array under `key` (absent or null: [] unless required)."""
        child = self.child(key)
        if child.value is None and not required:
            return []
        if not isinstance(child.value, list):
            raise child.fail("an array", child.value)
        return [Node(self.source, f"{child.path}[{i}]", v) for i, v in enumerate(child.value)]

    def text(self, key: str, *, required: bool = False, default: str = "") -> str:
        child = self.child(key)
        if child.value is None:
            if required:
                raise child.fail("a string")
            return default
        if not isinstance(child.value, str):
            raise child.fail("a string", child.value)
        if required and not child.value:
            raise child.fail("a non-empty string", child.value)
        return child.value

    def one_of(self, key: str, allowed: tuple[str, ...], *, required: bool = True,
               default: str = "") -> str:
        value = self.text(key, required=required, default=default)
        if value not in allowed and not (value == default and not required):
            raise self.child(key).fail("one of " + ", ".join(allowed), value)
        return value

    def integer(self, key: str, *, default: int | None = None) -> int | None:
        child = self.child(key)
        if child.value is None:
            return default
        value = child.value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)  # Kubernetes' int64 fields arrive as strings too
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise child.fail("an integer", value)
        return int(value)

    def number(self, key: str) -> float | None:
        child = self.child(key)
        if child.value is None:
            return None
        value = child.value
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise child.fail("a number", value) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise child.fail("a number", value)
        return float(value)

    def flag(self, key: str) -> bool | None:
        child = self.child(key)
        if child.value is None:
            return None
        if not isinstance(child.value, bool):
            raise child.fail("true or false", child.value)
        return child.value

    def time_ms(self, key: str) -> int | None:
        """A time as epoch milliseconds: RFC 3339 text (`2024-05-01T10:00:00Z`), a protobuf
        Timestamp object (`{"seconds": ..., "nanos": ...}`, what PolicyReports hold) or a
        number of epoch seconds (Gatekeeper's `ts`); absent: None."""
        child = self.child(key)
        value = child.value
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise child.fail("an RFC 3339 time like 2024-05-01T10:00:00Z", value) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return int(when.timestamp() * 1000)
        if isinstance(value, dict):
            seconds, nanos = child.integer("seconds", default=0), child.integer("nanos",
                                                                                default=0)
            return seconds * 1000 + nanos // 1_000_000
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value * 1000)
        raise child.fail("a time (RFC 3339 text, {seconds, nanos} or epoch seconds)", value)

    def labels(self, key: str) -> dict[str, str]:
        """A string -> string map (Kubernetes labels and annotations); absent: {}."""
        child = self.child(key)
        if child.value is None:
            return {}
        if not isinstance(child.value, dict) or not all(
                isinstance(v, str) for v in child.value.values()):
            raise child.fail("an object of strings", child.value)
        return child.value
