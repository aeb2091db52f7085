"""The OTLP message walk: ExportLogsServiceRequest / ExportTraceServiceRequest -> event rows.

This module only reads OTLP messages: it turns KeyValue lists into dicts, finds each record's
kind, times, trace context and identity, and hands them to the source-independent row builder
(collector/rows.py), which does the coercion, rejects, event ids and redaction.

Attributes may sit on the record, the scope or the resource; the record wins. One
`SourceContext` per scope carries the resource + scope attributes (coerced once per scope, not
once per record) and the serialized resource + scope that open each record's content hash, so
a record without `log.record.uid` has the id BLAKE2b-128(resource bytes + scope bytes + record
bytes) (a span event: + the span id before the event bytes).

Logs: the kind is the record's `event_name`, else its (or the scope's or resource's)
`event.name` attribute. Spans: the span's `event.name` attribute, else its name if that is a
known kind (latency_seconds defaults to the span duration); each span event named after a
known kind is a record too, with the span's attributes under its own.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Iterable

from collector.rows import NormalizedBatch, RowBuilder, SourceContext
from schemas.events import EVENT_KINDS, EVENT_NAME_ATTRIBUTE


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


def _scope_context(resource: dict[str, Any], resource_bytes: bytes, scope) -> SourceContext:
    return SourceContext({**resource, **attributes(scope.attributes)},
                         resource_bytes + scope.SerializeToString(deterministic=True))


class Normalizer:
    """Turns decoded OTLP requests into event rows. Thread-safe (see RowBuilder)."""

    def __init__(self, *, rows: RowBuilder | None = None, **row_settings):
        """`row_settings`: RowBuilder's keyword arguments (limits, redaction patterns)."""
        self.rows = rows or RowBuilder(**row_settings)

    def logs(self, request) -> NormalizedBatch:
        """Normalize an ExportLogsServiceRequest."""
        out = self.rows.batch()
        now_ms = out.now_ms
        for rl in request.resource_logs:
            resource = attributes(rl.resource.attributes)
            resource_bytes = rl.resource.SerializeToString(deterministic=True)
            for sl in rl.scope_logs:
                context = _scope_context(resource, resource_bytes, sl.scope)
                base = context.base
                for rec in sl.log_records:
                    rec_attrs = attributes(rec.attributes)
                    kind = rec.event_name or rec_attrs.get(EVENT_NAME_ATTRIBUTE) or \
                        base.get(EVENT_NAME_ATTRIBUTE)
                    out.add(context, kind, rec_attrs,
                            time_ms=(rec.time_unix_nano or rec.observed_time_unix_nano) // 10**6
                            or now_ms,
                            observed_ms=rec.observed_time_unix_nano // 10**6 or now_ms,
                            trace_id=rec.trace_id, span_id=rec.span_id,
                            identity=partial(rec.SerializeToString, deterministic=True))
        return out.finish()

    def spans(self, request) -> NormalizedBatch:
        """Normalize an ExportTraceServiceRequest: spans (or span events) that carry a kind."""
        out = self.rows.batch()
        now_ms = out.now_ms
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            resource_bytes = rs.resource.SerializeToString(deterministic=True)
            for ss in rs.scope_spans:
                context = _scope_context(resource, resource_bytes, ss.scope)
                for span in ss.spans:
                    span_attrs = attributes(span.attributes)
                    kind = span_attrs.get(EVENT_NAME_ATTRIBUTE) or (
                        span.name if span.name in EVENT_KINDS else None)
                    duration = max(span.end_time_unix_nano - span.start_time_unix_nano, 0) / 1e9
                    if kind:
                        out.add(context, kind, span_attrs,
                                time_ms=span.start_time_unix_nano // 10**6 or now_ms,
                                observed_ms=now_ms, trace_id=span.trace_id,
                                span_id=span.span_id,
                                identity=partial(span.SerializeToString, deterministic=True),
                                duration_s=duration if span.end_time_unix_nano else None)
                    for event in span.events:
                        if event.name not in EVENT_KINDS:
                            continue
                        out.add(context, event.name, {**span_attrs,
                                                      **attributes(event.attributes)},
                                time_ms=event.time_unix_nano // 10**6 or now_ms,
                                observed_ms=now_ms, trace_id=span.trace_id,
                                span_id=span.span_id,
                                identity=partial(_salted, span.span_id, event))
                    if not kind and not any(e.name in EVENT_KINDS for e in span.events):
                        out.ignore()
        return out.finish()


def _salted(salt: bytes, message) -> bytes:
    """A span event's identity: its span id, then the event (events alone may repeat)."""
    return salt + message.SerializeToString(deterministic=True)
