"""Attribute values -> column values: how each `ValueType` of schemas/events.py is coerced
(`coerce`), which attribute fills which column of a table (`TablePlan`), and the error a
value that cannot be coerced raises (`RecordRejected`, with a reason code for counting). The
rules are documented for users in schemas/conventions.md (`VALUE_RULES`)."""

from __future__ import annotations

import json
from typing import Any

from schemas.events import Column, Table, ValueType

# Columns filled from the record facts, not from attributes.
RECORD_COLUMNS = frozenset({"event_id", "event_time", "observed_time", "trace_id", "span_id",
                            "attributes", "event_kind"})


class RecordRejected(ValueError):
    """One record breaks the contract; `code` is a short reason code for counting."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def coerce(column: Column, key: str, value: Any) -> Any:
    """`value` of attribute `key` as a value of `column`; raises RecordRejected if it is not."""
    vt = column.value_type
    if vt is ValueType.STRING:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, dict)):
            return canonical_json(value)
        return str(value)
    if vt is ValueType.ENUM:
        text = str(value).strip().lower()
        if text not in column.allowed:
            raise RecordRejected(
                f"invalid_{column.name}",
                f"attribute '{key}' has value {value!r}; expected one of "
                + ", ".join(column.allowed))
        return text
    try:
        if vt is ValueType.FLOAT:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if number != number or number in (float("inf"), float("-inf")) or (
                    number < 0 and column.non_negative):
                raise ValueError
            return number
        if vt is ValueType.UINT:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            number = int(value)
            if not 0 <= number < 2**64:
                raise ValueError
            return number
        if vt is ValueType.BOOL:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        pass
    expected = {ValueType.FLOAT: "a finite number" + (" >= 0" if column.non_negative else ""),
                ValueType.UINT: "an integer from 0 to 2^64-1",
                ValueType.BOOL: "true or false"}[vt]
    raise RecordRejected(f"invalid_{column.name}",
                         f"attribute '{key}' has value {value!r}; expected {expected}")


class TablePlan:
    """Precomputed mapping for one table: attribute key -> (column, preference)."""

    def __init__(self, table: Table):
        self.table = table
        self.schema = table.arrow_schema()
        self.key_map: dict[str, tuple[Column, int]] = {}
        self.defaults: dict[str, Any] = {}
        for column in table.columns:
            if column.name in RECORD_COLUMNS:
                continue
            self.defaults[column.name] = column.default
            for rank, key in enumerate(column.attributes):
                self.key_map[key] = (column, rank)

    def mapped(self, attrs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Coerced column values for the mapped keys of `attrs`, plus the unmapped keys.

        Raises RecordRejected for a value that cannot be coerced.
        """
        values: dict[str, Any] = {}
        ranks: dict[str, int] = {}
        unmapped = []
        key_map = self.key_map
        for key, value in attrs.items():
            hit = key_map.get(key)
            if hit is None:
                unmapped.append(key)
                continue
            column, rank = hit
            if value is None:
                continue
            name = column.name
            previous = ranks.get(name)
            if previous is not None and previous <= rank:
                continue  # an alias after the attribute it stands for: the first-listed wins
            ranks[name] = rank
            if type(value) is str and column.value_type is ValueType.STRING:
                values[name] = value
            else:
                values[name] = coerce(column, key, value)
        return values, unmapped


def canonical_json(value: Any) -> str:
    """Canonical JSON text of a value (keys sorted); never raises for odd keys or types."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return json.dumps(repr(value))
