"""Attributes + record facts -> typed rows of the event model (schemas/events.py), any source.

Every source (the OTLP walk in collector/normalize.py, native receivers, file importers) turns
its records into the same thing: a kind, a dict of attributes, and the record-level facts
(event and observed time, trace and span id, an identity). `RowBuilder` holds what does not
change per request (the table plans, the extras bound, the `Redactor`) and is
thread-safe; `RowBuilder.batch()` starts a `BatchBuilder` for one request, whose `add()` files
each record as a row, an ignore or a reject, and whose `finish()` gives the `NormalizedBatch`
that `Pipeline.consume` takes.

    rows = RowBuilder()
    out = rows.batch()
    scope = SourceContext({"policy.engine": "opa"})          # attributes shared by records
    out.add(scope, "policy.decision", {"policy.id": "p", "policy.outcome": "deny"},
            time_ms=1735732800000, event_id=decision_id)
    batch = out.finish()

A record's attributes win over its context's. The context's values are coerced once per table,
not once per record. Secrets are redacted here, before the rows reach the spool
(collector/redaction.py): in every string column and the event id (in `finish()`, a column at
a time), and in every value of the `attributes` map, where a secret-looking key's value is
`[REDACTED]` whole. A kind outside the wire contract is ignored, unless it claims the
`policy.` namespace (then it is rejected as unknown_kind); a record of a known kind that breaks
the contract is rejected with a reason code (`missing_<column>`, `invalid_<column>`,
`invalid_time`, ...). The builder never raises on data.

Values are coerced by `collector.coercion` (`TablePlan`, `coerce`, `RecordRejected`). The event
id is, in order: the `event_id` the source passes; the `log.record.uid` attribute; a
BLAKE2b-128 content hash of the context's `identity_prefix` followed by the record's identity
bytes (the source passes them, or a callable giving them, evaluated only when needed; without
one, a canonical JSON of kind, event time and attributes).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pyarrow as pa

from collector.coercion import RECORD_COLUMNS, RecordRejected, TablePlan, canonical_json
from collector.redaction import DEFAULT_VALUE_PATTERNS, REDACTED, Redactor
from schemas.events import (
    DEFAULT_REDACT_PATTERNS,
    EVENT_KINDS,
    EVENT_NAME_ATTRIBUTE,
    TABLES,
    UID_ATTRIBUTE,
    ValueType,
)
# Event times the tables can hold *and* their TTL (`toDateTime(event_time) + retention`, a
# DateTime: 1970-01-01 .. 2106-02-07) can compute without wrapping: a time outside would be
# acknowledged, then dropped at once by a TTL that wrapped (or poison the whole insert).
MIN_TIME_MS = 0  # 1970-01-01T00:00:00Z
MAX_TIME_MS = 4102444799999  # 2099-12-31T23:59:59.999Z: room for any retention up to 6 years
MAX_EXTRA_VALUE_CHARS = 1024
MAX_VALUE_CHARS = 4096  # default cut of a text column (reason, resource name, ...)
MAX_REJECT_EXAMPLES = 5
_HEX = re.compile(r"[0-9a-f]*")

Identity = bytes | Callable[[], bytes] | None


@dataclass
class NormalizedBatch:
    """The rows of one request. `tables` maps table name -> Arrow rows (only non-empty ones)."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    accepted: int = 0
    ignored: int = 0
    rejected: int = 0
    reject_codes: Counter = field(default_factory=Counter)
    reject_examples: list[str] = field(default_factory=list)
    truncated: Counter = field(default_factory=Counter)  # values cut, by column

    def warnings(self) -> str:
        """What the sender should know though nothing was rejected (values cut to the
        limits), for partial_success.error_message; "" when nothing was cut."""
        if not self.truncated:
            return ""
        cut = ", ".join(f"{column}: {n}" for column, n in self.truncated.most_common())
        return (f"values cut to the collector's limits ({cut}): max_value_length for text "
                "columns, 1024 characters per extra attribute, max_extra_attributes per record")

    def reject(self, error: RecordRejected) -> None:
        self.rejected += 1
        self.reject_codes[error.code] += 1
        if len(self.reject_examples) < MAX_REJECT_EXAMPLES:
            self.reject_examples.append(str(error))

    def reject_message(self) -> str:
        """The partial_success message: counts by reason, then the first examples, then
        the warnings."""
        if not self.rejected:
            return self.warnings()
        counts = ", ".join(f"{code}: {n}" for code, n in self.reject_codes.most_common())
        message = f"{self.rejected} records rejected ({counts}); e.g. " + " | ".join(
            self.reject_examples)
        return message + (f"; {self.warnings()}" if self.truncated else "")


class SourceContext:
    """Attributes shared by a group of records (an OTLP resource + scope, a receiver's fixed
    attributes), coerced once per table, and the bytes that open their content hashes."""

    def __init__(self, base: dict[str, Any] | None = None, identity_prefix: bytes = b""):
        self.base = base or {}
        self.identity_prefix = identity_prefix
        self._base_rows: dict[str, tuple[dict[str, Any], RecordRejected | None]] = {}

    def base_row(self, plan: TablePlan) -> dict[str, Any]:
        """Defaults overlaid with the coerced base attributes; raises their RecordRejected."""
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


def row_settings(config) -> dict[str, Any]:
    """RowBuilder's keyword arguments from the collector's config section."""
    return {"max_extra_attributes": config.max_extra_attributes,
            "max_value_length": config.max_value_length,
            "redact_attributes": list(config.redact_attributes),
            "redact_values": list(config.redact_values)}


class RowBuilder:
    """What turns records into rows, whatever their source. Thread-safe: its only mutable state
    is the redactor's caches. `redact_attributes` are key patterns, `redact_values` value
    patterns (collector/redaction.py; empty turns that redaction off)."""

    def __init__(self, *, max_extra_attributes: int = 32,
                 max_value_length: int = MAX_VALUE_CHARS,
                 redact_attributes: Iterable[str] = DEFAULT_REDACT_PATTERNS,
                 redact_values: Iterable[str] = DEFAULT_VALUE_PATTERNS):
        self.plans = {t.name: TablePlan(t) for t in TABLES}
        self.max_extra = max_extra_attributes
        self.max_value_length = max_value_length
        self.redactor = Redactor(redact_attributes, redact_values)
        # table -> its columns of text from the source, redacted in BatchBuilder.finish()
        self.text_columns = {t.name: tuple(
            c.name for c in t.columns if c.value_type is ValueType.STRING
            and (c.name not in RECORD_COLUMNS or c.name == "event_id")) for t in TABLES}

    def batch(self, now_ms: int | None = None) -> BatchBuilder:
        """Start the rows of one request; `now_ms` (default: now) stands in for absent times."""
        return BatchBuilder(self, time.time_ns() // 1_000_000 if now_ms is None else now_ms)

    def extras(self, attrs: dict[str, Any], unmapped: list[str],
               truncated: Counter | None = None) -> list[tuple[str, str]]:
        """The bounded `attributes` map of a record, a secret-looking key's value redacted
        whole; a value longer than MAX_EXTRA_VALUE_CHARS is redacted, then cut (the others
        are redacted with the batch's, in `BatchBuilder.finish`)."""
        extra = []
        secret_key = self.redactor.key
        for key in unmapped:
            if len(extra) >= self.max_extra:
                if truncated is not None:
                    truncated["attributes"] += 1  # a record with attributes left out
                break
            if key in (EVENT_NAME_ATTRIBUTE, UID_ATTRIBUTE):
                continue
            if secret_key(key):
                text = REDACTED
            else:
                value = attrs[key]
                text = value if isinstance(value, str) else canonical_json(value)
                if len(text) > MAX_EXTRA_VALUE_CHARS:
                    text = self.redactor.value(text)[:MAX_EXTRA_VALUE_CHARS]
                    if truncated is not None:
                        truncated["attribute_value"] += 1
            extra.append((key, text))
        return extra


class BatchBuilder:
    """The rows of one request, accumulated as column lists, then built as Arrow tables."""

    def __init__(self, rows: RowBuilder, now_ms: int):
        self.rows = rows
        self.now_ms = now_ms
        self.batch = NormalizedBatch()
        self.columns: dict[str, dict[str, list]] = {
            name: {c: [] for c in plan.table.column_names} for name, plan in rows.plans.items()}

    def ignore(self, count: int = 1) -> None:
        """Count records that are not PolicyScope events."""
        self.batch.ignored += count

    def reject(self, code: str, message: str) -> None:
        """Count a record the source itself found unusable."""
        self.batch.reject(RecordRejected(code, message))

    def add(self, context: SourceContext, kind: Any, attrs: dict[str, Any], *,
            time_ms: int | None = None, observed_ms: int | None = None,
            trace_id: bytes | str | None = b"", span_id: bytes | str | None = b"",
            identity: Identity = None, event_id: str | None = None,
            duration_s: float | None = None) -> None:
        """File one record as a row, an ignore or a reject (see the module docstring).

        Times are integer milliseconds since the epoch (None: the batch's `now_ms`; the event
        time of a record without one). Trace and span ids are raw bytes or hex text.
        `duration_s` fills latency_seconds when no attribute does (a span's duration).
        """
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
        plan = self.rows.plans[spec.table.name]
        try:
            base = context.base_row(plan)
            values, unmapped = plan.mapped(attrs)
            for required in spec.required:
                if values.get(required, base[required]) in ("", None):
                    column = next(c for c in plan.table.columns if c.name == required)
                    raise RecordRejected(
                        f"missing_{required}",
                        f"{kind} needs attribute '{column.attributes[0]}' (column {required})")
            time_ms = self.now_ms if time_ms is None else _time_ms(time_ms, "event time")
            observed_ms = self.now_ms if observed_ms is None else _time_ms(observed_ms,
                                                                           "observed time")
            values["trace_id"] = trace_id.hex() if type(trace_id) is bytes else \
                _hex_id(trace_id, "trace_id")
            values["span_id"] = span_id.hex() if type(span_id) is bytes else \
                _hex_id(span_id, "span_id")
        except RecordRejected as exc:
            self.batch.reject(exc)
            return
        if not event_id:
            uid = attrs.get(UID_ATTRIBUTE)
            event_id = str(uid) if uid not in (None, "") else ""
        if not event_id:
            if identity is None:
                identity = canonical_json([kind, time_ms, attrs]).encode("utf-8", "surrogatepass")
            elif callable(identity):
                identity = identity()
            digest = hashlib.blake2b(context.identity_prefix, digest_size=16)
            digest.update(identity)
            event_id = digest.hexdigest()
        values["event_id"] = event_id
        values["event_time"] = time_ms
        values["observed_time"] = observed_ms
        values["attributes"] = self.rows.extras(attrs, unmapped, self.batch.truncated)
        values["event_kind"] = kind
        if duration_s is not None and "latency_seconds" in base and \
                values.get("latency_seconds") is None:
            values["latency_seconds"] = duration_s
        for name, values_list in self.columns[plan.table.name].items():
            values_list.append(values[name] if name in values else base[name])
        self.batch.accepted += 1

    def finish(self) -> NormalizedBatch:
        """The batch, its text redacted a column at a time (each distinct value once, and a
        column whose values hold no trigger of any pattern in one pass): the string columns,
        the event ids and the values of the attributes maps."""
        redactor = self.rows.redactor
        for name, plan in self.rows.plans.items():
            cols = self.columns[name]
            if cols["event_id"]:
                if redactor.redacts_values:
                    for column in self.rows.text_columns[name]:
                        cols[column] = redactor.column(cols[column])
                    cols["attributes"] = _redact_maps(redactor, cols["attributes"])
                limit = self.rows.max_value_length
                for column in self.rows.text_columns[name]:
                    if column == "event_id":
                        continue  # an id is kept whole: cut, two ids could become one
                    values = cols[column]
                    if any(len(v) > limit for v in values if v):
                        self.batch.truncated[column] += sum(
                            1 for v in values if v and len(v) > limit)
                        cols[column] = [v[:limit] if v and len(v) > limit else v
                                        for v in values]
                self.batch.tables[name] = pa.Table.from_pydict(cols, schema=plan.schema)
        return self.batch


def _redact_maps(redactor: Redactor, maps: list[list[tuple[str, str]]]
                 ) -> list[list[tuple[str, str]]]:
    changed = redactor.changes({value for pairs in maps for _, value in pairs})
    if not changed:
        return maps
    return [[(key, changed.get(value, value)) for key, value in pairs] for pairs in maps]


def _time_ms(value: Any, what: str) -> int:
    if type(value) is not int:
        try:
            if isinstance(value, bool) or value != value:
                raise ValueError
            value = int(value)
        except (TypeError, ValueError, OverflowError):
            raise RecordRejected("invalid_time", f"{what} {value!r} is not a number of "
                                 "milliseconds since the epoch") from None
    if not MIN_TIME_MS <= value <= MAX_TIME_MS:
        raise RecordRejected("invalid_time", f"{what} {value} ms since epoch is outside "
                             "1970-01-01..2099-12-31, the range storage can keep")
    return value


def _hex_id(value: str | None, column: str) -> str:
    if not value:
        return ""
    text = str(value).strip().lower()
    if not _HEX.fullmatch(text) or len(text) % 2:
        raise RecordRejected(f"invalid_{column}", f"{column} {value!r} is not hex")
    return text
