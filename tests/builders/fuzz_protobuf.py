"""Hypothesis strategies for OTLP protobuf request bodies, shared by the fuzz tests
(tests/fuzz/) and the fuzz campaign (bench/fuzz.py): valid ExportLogsServiceRequest /
ExportTraceServiceRequest messages built with the opentelemetry-proto classes, full of
adversarial values (times at and past what storage keeps, uint64 extremes, NaN and infinite
doubles, giant and odd strings, deep AnyValues, thousands of attributes, ids of any length),
those messages serialized and then mutated byte by byte, bodies nested deeper than the SDK
builds (encoded by hand), and random bytes.

Sizes are bounded (a body stays under a few MiB) so that one example never takes seconds."""

from __future__ import annotations

import operator

from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from collector.rows import MAX_TIME_MS, MIN_TIME_MS
from schemas.events import EVENT_KINDS, TABLES

MS = 10**6  # nanoseconds per millisecond
UINT64 = 2**64 - 1
MAPPED_KEYS = sorted({key for t in TABLES for c in t.columns for key in c.attributes}
                     | {"event.name", "log.record.uid"})
SECRET_KEYS = ["password", "api_key", "Authorization", "x.secret.token", "cookie"]
KINDS = [*EVENT_KINDS, "", "policy.nope", "policy.", "app.login", "POLICY.DECISION"]
TRICKY_STRINGS = ["", " ", "-1", "0", "1.5", "1e400", "nan", "NaN", "inf", "-inf", "true",
                  "FALSE", str(2**64), str(-2**63), "DENY", " allow ", "policy.decision",
                  "\x00", "\x00" * 5, "\u202e", "\ufeff", "\U0010ffff", "é", "日本", "'\"`\\",
                  "0x1F", "4bf92f3577b34da6a3ce929d0e0e4736"]
EDGE_TIMES = [0, 1, MS - 1, MS, MIN_TIME_MS * MS, MAX_TIME_MS * MS, MAX_TIME_MS * MS + MS - 1,
              (MAX_TIME_MS + 1) * MS, 2**63 - 1, 2**63, UINT64]


def _minimal(kind: str) -> list[KeyValue]:
    """Attributes that make a record of `kind` acceptable (so fuzzing reaches accepted rows)."""
    spec = EVENT_KINDS[kind]
    columns = {c.name: c for c in spec.table.columns}
    return [kv(columns[r].attributes[0], AnyValue(string_value=(columns[r].allowed or ("x",))[0]))
            for r in spec.required]


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


# -- values ------------------------------------------------------------------------------------

giant_strings = st.builds(operator.mul, st.characters(codec="utf-8"), st.integers(1000, 100_000))
strings = st.one_of(st.text(max_size=24), st.sampled_from(TRICKY_STRINGS),
                    st.one_of(st.text(max_size=24), st.sampled_from(TRICKY_STRINGS),
                              giant_strings))
int64s = st.one_of(st.integers(-2**63, 2**63 - 1), st.sampled_from([0, -1, 2**63 - 1, -2**63]))
uint32s = st.integers(0, 2**32 - 1)
int32s = st.integers(-2**31, 2**31 - 1)
times = st.one_of(st.just(0), st.sampled_from(EDGE_TIMES), st.integers(0, UINT64),
                  st.integers(1_600_000_000 * 10**9, 1_900_000_000 * 10**9))
ids = st.one_of(st.just(b""), st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8),
                st.binary(max_size=40))

small_scalar_values = st.one_of(
    st.builds(lambda s: AnyValue(string_value=s), st.sampled_from(TRICKY_STRINGS)),
    st.builds(lambda i: AnyValue(int_value=i), int64s),
    st.builds(lambda f: AnyValue(double_value=f), st.floats()),
    st.just(AnyValue()))
scalar_values = st.one_of(
    st.builds(lambda s: AnyValue(string_value=s), strings),
    st.builds(lambda i: AnyValue(int_value=i), int64s),
    st.builds(lambda f: AnyValue(double_value=f), st.floats()),  # NaN and +-inf included
    st.builds(lambda b: AnyValue(bool_value=b), st.booleans()),
    st.builds(lambda b: AnyValue(bytes_value=b), st.binary(max_size=64)),
    st.just(AnyValue()),  # no value set
)
keys = st.one_of(st.sampled_from(MAPPED_KEYS), st.sampled_from(MAPPED_KEYS),
                 st.sampled_from(SECRET_KEYS), strings)


def _array(values: list[AnyValue]) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=values))


def _kvlist(pairs: list[KeyValue]) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=pairs))


def _nested(leaf: AnyValue, depth: int, kvlists: bool) -> AnyValue:
    """`leaf` inside `depth` arrays or kvlists (as deep as the protobuf classes will build)."""
    for _ in range(depth):
        leaf = _kvlist([kv("k", leaf)]) if kvlists else _array([leaf])
    return leaf


any_values = st.one_of(
    st.recursive(scalar_values, lambda inner: st.one_of(
        st.builds(_array, st.lists(inner, max_size=3)),
        st.builds(_kvlist, st.lists(st.builds(kv, keys, inner), max_size=3))), max_leaves=6),
    st.builds(_nested, scalar_values, st.integers(1, 28), st.booleans()),
)


def _many(count: int, value: AnyValue, same_key: bool) -> list[KeyValue]:
    return [kv("k" if same_key else f"attr.{i}", value) for i in range(count)]


attribute_lists = st.one_of(
    st.lists(st.builds(kv, keys, any_values), max_size=5),
    st.builds(operator.add, st.sampled_from([_minimal(k) for k in EVENT_KINDS]),
              st.lists(st.builds(kv, keys, any_values), max_size=4)),
    st.builds(_many, st.integers(100, 2000), small_scalar_values, st.booleans()),
)

# -- messages ----------------------------------------------------------------------------------

scopes = st.builds(InstrumentationScope, name=strings, version=strings,
                   attributes=st.lists(st.builds(kv, keys, any_values), max_size=2))
resources = st.builds(Resource, attributes=st.one_of(st.just([]), attribute_lists),
                      dropped_attributes_count=uint32s)
log_records = st.builds(
    LogRecord, time_unix_nano=times, observed_time_unix_nano=times, severity_number=int32s,
    severity_text=strings, body=any_values, attributes=attribute_lists,
    dropped_attributes_count=uint32s, flags=uint32s, trace_id=ids, span_id=ids,
    event_name=st.one_of(st.sampled_from(KINDS), strings))
logs_requests = st.builds(ExportLogsServiceRequest, resource_logs=st.lists(st.builds(
    ResourceLogs, resource=resources, schema_url=strings, scope_logs=st.lists(st.builds(
        ScopeLogs, scope=scopes, schema_url=strings,
        log_records=st.lists(log_records, min_size=1, max_size=4)), min_size=1, max_size=2)),
    min_size=1, max_size=2))

span_events = st.builds(Span.Event, time_unix_nano=times, name=st.sampled_from(KINDS),
                        attributes=attribute_lists, dropped_attributes_count=uint32s)
spans = st.builds(
    Span, trace_id=ids, span_id=ids, parent_span_id=ids, trace_state=strings, flags=uint32s,
    name=st.one_of(st.sampled_from(KINDS), strings), kind=int32s, start_time_unix_nano=times,
    end_time_unix_nano=times, attributes=attribute_lists, events=st.lists(span_events, max_size=2),
    status=st.builds(Status, message=strings, code=int32s))
traces_requests = st.builds(ExportTraceServiceRequest, resource_spans=st.lists(st.builds(
    ResourceSpans, resource=resources, schema_url=strings, scope_spans=st.lists(st.builds(
        ScopeSpans, scope=scopes, spans=st.lists(spans, min_size=1, max_size=3)), min_size=1, max_size=2)),
    min_size=1, max_size=2))

REQUESTS = {"logs": logs_requests, "traces": traces_requests}

# -- bytes: mutations and hand-encoded nesting -------------------------------------------------


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, encoded by hand."""
    size, out = len(payload), bytearray(_varint((number << 3) | 2))
    out += _varint(size)
    return bytes(out) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def deep_body(signal: str, depth: int, kvlists: bool) -> bytes:
    """A request whose one record's attribute is an AnyValue `depth` levels deep -- deeper
    than the protobuf classes build, as a client that does not care would send it."""
    value = _field(1, b"x")  # AnyValue.string_value
    for _ in range(depth):  # kvlist_value(6) -> values(1) -> KeyValue(key 1, value 2); array(5)
        value = _field(6, _field(1, _field(1, b"k") + _field(2, value))) if kvlists else \
            _field(5, _field(1, value))
    attribute = _field(1, b"x") + _field(2, value)
    if signal == "logs":  # resource_logs(1).scope_logs(2).log_records(2).attributes(6)
        return _field(1, _field(2, _field(2, _field(12, b"policy.decision") + _field(6, attribute))))
    # resource_spans(1).scope_spans(2).spans(2).attributes(9)
    return _field(1, _field(2, _field(2, _field(5, b"policy.decision") + _field(9, attribute))))


MAX_BODY = 2 * 1024**2  # a mutation that would grow a body past this is skipped
MUTATIONS = ("flip", "truncate", "insert", "delete", "duplicate", "ff", "append")


def mutate(body: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    """`body` after each (operation, position, payload) of `ops`, positions modulo its size."""
    data = bytearray(body)
    for op, position, payload in ops:
        at = position % (len(data) + 1)
        if op == "flip" and data:
            data[at % len(data)] ^= (payload[:1] or b"\x01")[0] or 1
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = payload
        elif op == "delete":
            del data[at:at + 1 + len(payload)]
        elif op == "duplicate":
            data[at:at] = data[at:at + 1 + len(payload) * 4]
        elif op == "ff":  # an over-long varint / a huge length prefix
            data[at:at] = b"\xff" * (1 + len(payload))
        elif op == "append" and len(data) + len(body) <= MAX_BODY:
            data += body
    return bytes(data)


mutation_lists = st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 2**20),
                                    st.binary(max_size=12)), min_size=1, max_size=6)


def protobuf_bodies(signal: str) -> st.SearchStrategy[bytes]:
    """Bodies for `/v1/<signal>` as application/x-protobuf: valid, mutated, deep or random."""
    valid = REQUESTS[signal].map(lambda m: m.SerializeToString()).filter(
        lambda body: len(body) <= MAX_BODY)
    return st.one_of(
        valid,
        st.builds(mutate, valid, mutation_lists),
        st.builds(deep_body, st.just(signal), st.integers(1, 400), st.booleans()),
        st.binary(max_size=600),
    )


def byte_mutants(body: bytes, count: int, rng) -> list[bytes]:
    """`count` variants of `body`, each after 1-3 random MUTATIONS drawn with `rng` (a
    random.Random): the campaign's cheap extra inputs around every generated body."""
    return [mutate(body, [(rng.choice(MUTATIONS), rng.randrange(2**20),
                           rng.randbytes(rng.randrange(12))) for _ in range(rng.randint(1, 3))])
            for _ in range(count)]
