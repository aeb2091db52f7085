"""OTLP log records and spans -> rows of the event model (schemas/events.py).

The normalizer never raises on data. It splits a request into accepted rows (Arrow tables, one
per event table), records that are not PolicyScope events (ignored: no `event_name` /
`event.name`, or a kind outside the `policy.` namespace that we do not know), and rejects: a
record that claims a PolicyScope kind but breaks the contract, with a reason per record.

Attributes may sit on the record, the scope or the resource; the record wins. Values of
resource and scope attributes are coerced once per scope, not once per record.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import pyarrow as pa

from schemas.events import (
    DEFAULT_REDACT_PATTERNS,
    EVENT_KINDS,
    EVENT_NAME_ATTRIBUTE,
    UID_ATTRIBUTE,
    Column,
    Table,
    TABLES,
    ValueType,
)

REDACTED = "[REDACTED]"
# DateTime64(3) holds 1900-01-01 .. 2299-12-31; a time outside would poison the whole insert.
MIN_TIME_MS = -2208988800000
MAX_TIME_MS = 10413791999999
MAX_EXTRA_VALUE_CHARS = 1024
MAX_REJECT_EXAMPLES = 5
_SPECIAL = {"event_id", "event_time", "observed_time", "trace_id", "span_id", "attributes",
            "event_kind"}


class RecordRejected(ValueError):
    """One record breaks the contract; `code` is a short reason code for counting."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class NormalizedBatch:
    """The outcome of normalizing one request. `tables` maps table name -> Arrow rows."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    accepted: int = 0
    ignored: int = 0
    rejected: int = 0
    reject_codes: Counter = field(default_factory=Counter)
    reject_examples: list[str] = field(default_factory=list)

    def reject(self, error: RecordRejected) -> None:
        self.rejected += 1
        self.reject_codes[error.code] += 1
        if len(self.reject_examples) < MAX_REJECT_EXAMPLES:
            self.reject_examples.append(str(error))

    def reject_message(self) -> str:
        """The partial_success message: counts by reason, then the first examples."""
        if not self.rejected:
            return ""
        counts = ", ".join(f"{code}: {n}" for code, n in self.reject_codes.most_common())
        return f"{self.rejected} records rejected ({counts}); e.g. " + " | ".join(
            self.reject_examples)


def any_value(v) -> Any:
    """An OTLP AnyValue as a Python value (bytes as hex, arrays as lists, kvlists as dicts)."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which is None:
        return None
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


def attributes(kvs: Iterable) -> dict[str, Any]:
    """KeyValue list -> dict (the hot loop: strings, the common case, skip the call)."""
    out = {}
    for kv in kvs:
        v = kv.value
        if v.WhichOneof("value") == "string_value":
            out[kv.key] = v.string_value
        else:
            out[kv.key] = any_value(v)
    return out


def _coerce(column: Column, key: str, value: Any) -> Any:
    vt = column.value_type
    if vt is ValueType.STRING:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, dict)):
            return json.dumps(value, sort_keys=True)
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
            if number != number or number in (float("inf"), float("-inf")):
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
    expected = {ValueType.FLOAT: "a finite number",
                ValueType.UINT: "an integer from 0 to 2^64-1",
                ValueType.BOOL: "true or false"}[vt]
    raise RecordRejected(f"invalid_{column.name}",
                         f"attribute '{key}' has value {value!r}; expected {expected}")


class _TablePlan:
    """Precomputed mapping for one table: attribute key -> (column, preference)."""

    def __init__(self, table: Table):
        self.table = table
        self.schema = table.arrow_schema()
        self.key_map: dict[str, tuple[Column, int]] = {}
        self.defaults: dict[str, Any] = {}
        for column in table.columns:
            if column.name in _SPECIAL:
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
                values[name] = _coerce(column, key, value)
        return values, unmapped


class Normalizer:
    """Turns decoded OTLP requests into event rows. Thread-safe: its only mutable state is a
    cache of which attribute keys match a redaction pattern."""

    def __init__(self, *, max_extra_attributes: int = 32,
                 redact_attributes: Iterable[str] = DEFAULT_REDACT_PATTERNS):
        self.plans = {t.name: _TablePlan(t) for t in TABLES}
        self.max_extra = max_extra_attributes
        self._redact = [re.compile(p) for p in redact_attributes]
        self._redacted_keys: dict[str, bool] = {}  # key -> matches a redaction pattern

    # -- entry points -------------------------------------------------------------------------
    def logs(self, request) -> NormalizedBatch:
        """Normalize an ExportLogsServiceRequest."""
        out = _Builder(self)
        now_ms = time.time_ns() // 1_000_000
        for rl in request.resource_logs:
            resource = attributes(rl.resource.attributes)
            resource_bytes = rl.resource.SerializeToString(deterministic=True)
            for sl in rl.scope_logs:
                base = {**resource, **attributes(sl.scope.attributes)}
                context = _Context(self, base, resource_bytes + sl.scope.SerializeToString(
                    deterministic=True))
                for rec in sl.log_records:
                    rec_attrs = attributes(rec.attributes)
                    kind = rec.event_name or rec_attrs.get(EVENT_NAME_ATTRIBUTE) or \
                        base.get(EVENT_NAME_ATTRIBUTE)
                    out.add(context, kind, rec_attrs,
                            time_ms=(rec.time_unix_nano or rec.observed_time_unix_nano) // 10**6
                            or now_ms,
                            observed_ms=rec.observed_time_unix_nano // 10**6 or now_ms,
                            trace_id=rec.trace_id, span_id=rec.span_id,
                            identity=rec, duration_s=None)
        return out.finish()

    def spans(self, request) -> NormalizedBatch:
        """Normalize an ExportTraceServiceRequest: spans (or span events) that carry a kind."""
        out = _Builder(self)
        now_ms = time.time_ns() // 1_000_000
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            resource_bytes = rs.resource.SerializeToString(deterministic=True)
            for ss in rs.scope_spans:
                base = {**resource, **attributes(ss.scope.attributes)}
                context = _Context(self, base, resource_bytes + ss.scope.SerializeToString(
                    deterministic=True))
                for span in ss.spans:
                    span_attrs = attributes(span.attributes)
                    kind = span_attrs.get(EVENT_NAME_ATTRIBUTE) or (
                        span.name if span.name in EVENT_KINDS else None)
                    duration = max(span.end_time_unix_nano - span.start_time_unix_nano, 0) / 1e9
                    if kind:
                        out.add(context, kind, span_attrs,
                                time_ms=span.start_time_unix_nano // 10**6 or now_ms,
                                observed_ms=now_ms, trace_id=span.trace_id,
                                span_id=span.span_id, identity=span,
                                duration_s=duration if span.end_time_unix_nano else None)
                    for event in span.events:
                        if event.name not in EVENT_KINDS:
                            continue
                        out.add(context, event.name, {**span_attrs,
                                                      **attributes(event.attributes)},
                                time_ms=event.time_unix_nano // 10**6 or now_ms,
                                observed_ms=now_ms, trace_id=span.trace_id,
                                span_id=span.span_id, identity=event, duration_s=None,
                                identity_salt=span.span_id)
                    if not kind and not any(e.name in EVENT_KINDS for e in span.events):
                        out.batch.ignored += 1
        return out.finish()

    def extras(self, attrs: dict[str, Any], unmapped: list[str]) -> list[tuple[str, str]]:
        """The bounded, redacted `attributes` map of a record."""
        extra = []
        for key in unmapped:
            if len(extra) >= self.max_extra:
                break
            if key in (EVENT_NAME_ATTRIBUTE, UID_ATTRIBUTE):
                continue
            value = attrs[key]
            secret = self._redacted_keys.get(key)
            if secret is None:
                secret = any(pattern.search(key) for pattern in self._redact)
                if len(self._redacted_keys) < 100_000:
                    self._redacted_keys[key] = secret
            if secret:
                text = REDACTED
            elif isinstance(value, str):
                text = value
            else:
                text = json.dumps(value, sort_keys=True)
            extra.append((key, text[:MAX_EXTRA_VALUE_CHARS]))
        return extra


class _Context:
    """Per-scope state: base (resource+scope) attributes coerced once per table."""

    def __init__(self, normalizer: Normalizer, base: dict[str, Any], identity_prefix: bytes):
        self.base = base
        self.identity_prefix = identity_prefix
        self._base_rows: dict[str, tuple[dict[str, Any], RecordRejected | None]] = {}
        self.normalizer = normalizer

    def base_row(self, plan: _TablePlan) -> dict[str, Any]:
        cached = self._base_rows.get(plan.table.name)
        if cached is None:
            try:
                values, _ = plan.mapped(self.base)
                cached = ({**plan.defaults, **values}, None)
            except RecordRejected as exc:
                cached = ({}, exc)
            self._base_rows[plan.table.name] = cached
        if cached[1] is not None:
            raise cached[1]
        return cached[0]


class _Builder:
    """Accumulates rows per table as column lists, then builds Arrow tables."""

    def __init__(self, normalizer: Normalizer):
        self.normalizer = normalizer
        self.batch = NormalizedBatch()
        self.columns: dict[str, dict[str, list]] = {
            name: {c: [] for c in plan.table.column_names}
            for name, plan in normalizer.plans.items()}

    def add(self, context: _Context, kind: Any, attrs: dict[str, Any], *, time_ms: int,
            observed_ms: int, trace_id: bytes, span_id: bytes, identity, duration_s,
            identity_salt: bytes = b"") -> None:
        if not kind or not isinstance(kind, str):
            self.batch.ignored += 1
            return
        spec = EVENT_KINDS.get(kind)
        if spec is None:
            if kind.startswith("policy."):
                self.batch.reject(RecordRejected(
                    "unknown_kind", f"event kind {kind!r} is not known; expected one of "
                    + ", ".join(EVENT_KINDS)))
            else:
                self.batch.ignored += 1
            return
        plan = self.normalizer.plans[spec.table.name]
        try:
            base = context.base_row(plan)
            values, unmapped = plan.mapped(attrs)
            for required in spec.required:
                if values.get(required, base[required]) in ("", None):
                    column = next(c for c in plan.table.columns if c.name == required)
                    raise RecordRejected(
                        f"missing_{required}",
                        f"{kind} needs attribute '{column.attributes[0]}' (column {required})")
        except RecordRejected as exc:
            self.batch.reject(exc)
            return
        if not MIN_TIME_MS <= time_ms <= MAX_TIME_MS:
            self.batch.reject(RecordRejected(
                "invalid_time", f"event time {time_ms} ms since epoch is outside "
                "1900-01-01..2299-12-31"))
            return
        uid = attrs.get(UID_ATTRIBUTE)
        event_id = str(uid) if uid not in (None, "") else ""
        if not event_id:
            digest = hashlib.blake2b(context.identity_prefix, digest_size=16)
            digest.update(identity_salt)
            digest.update(identity.SerializeToString(deterministic=True))
            event_id = digest.hexdigest()
        values["event_id"] = event_id
        values["event_time"] = time_ms
        values["observed_time"] = observed_ms
        values["trace_id"] = trace_id.hex()
        values["span_id"] = span_id.hex()
        values["attributes"] = self.normalizer.extras(attrs, unmapped)
        values["event_kind"] = kind
        if duration_s is not None and "latency_seconds" in base and \
                values.get("latency_seconds") is None:
            values["latency_seconds"] = duration_s
        for name, values_list in self.columns[plan.table.name].items():
            values_list.append(values[name] if name in values else base[name])
        self.batch.accepted += 1

    def finish(self) -> NormalizedBatch:
        for name, plan in self.normalizer.plans.items():
            cols = self.columns[name]
            if cols["event_id"]:
                self.batch.tables[name] = pa.Table.from_pydict(cols, schema=plan.schema)
        return self.batch
