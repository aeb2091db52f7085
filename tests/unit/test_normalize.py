"""collector/normalize.py: OTLP log records and spans -> event rows, rejects and ignores.

Requests are built from the real opentelemetry.proto messages, as the receivers decode them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
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
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.normalize import Normalizer
from collector.rows import MAX_EXTRA_VALUE_CHARS, REDACTED
from policyscope.config import CollectorConfig
from schemas.events import EVENT_KINDS, TABLES

pytestmark = pytest.mark.unit

T0 = 1_735_732_800_000_000_000  # 2025-01-01T12:00:00Z in ns
T0_TIME = dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone.utc)
DECISION = {"policy.id": "k8s.require-non-root", "policy.outcome": "deny"}
TRACE_ID = bytes.fromhex("4BF92F3577B34DA6A3CE929D0E0E4736")
SPAN_ID = bytes.fromhex("00F067AA0BA902B7")
DECISIONS_TABLE = "policy_decisions"
EVENTS_TABLE = "policy_events"


# -- building OTLP messages --------------------------------------------------------------------

def any_value(value) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=kvs(value)))
    raise TypeError(f"no AnyValue for {value!r}")


def kvs(attrs: dict | None) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in (attrs or {}).items()]


def log_record(attrs: dict | None = None, *, kind: str = "policy.decision", time_ns: int = T0,
               observed_ns: int = T0, trace_id: bytes = b"", span_id: bytes = b"") -> LogRecord:
    return LogRecord(event_name=kind, attributes=kvs(attrs), time_unix_nano=time_ns,
                     observed_time_unix_nano=observed_ns, trace_id=trace_id, span_id=span_id)


def logs_request(*records: LogRecord, resource: dict | None = None,
                 scope: dict | None = None) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=kvs(resource)),
        scope_logs=[ScopeLogs(scope=InstrumentationScope(name="test", attributes=kvs(scope)),
                              log_records=list(records))])])


def spans_request(*spans: Span, resource: dict | None = None) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=kvs(resource)),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="test"), spans=list(spans))])])


def rows(batch, table: str) -> list[dict]:
    return batch.tables[table].to_pylist() if table in batch.tables else []


def only_row(batch, table: str) -> dict:
    assert (batch.accepted, batch.rejected, batch.ignored) == (1, 0, 0), batch.reject_message()
    (row,) = rows(batch, table)
    return row


def one(attrs: dict | None = None, **kwargs) -> dict:
    """The single decision row normalizing one record gives."""
    return only_row(Normalizer().logs(logs_request(log_record(attrs, **kwargs))),
                    DECISIONS_TABLE)


# -- accepted records --------------------------------------------------------------------------

ACCEPTED = [
    pytest.param(
        {"service.name": "checkout", "k8s.cluster.name": "eu-1", "team.name": "from-resource",
         "policy.engine": "opa"},
        {"team.name": "from-scope", "policy.engine": "kyverno", "k8s.namespace.name": "shop"},
        {**DECISION, "policy.engine": "gatekeeper"}, "policy.decision", DECISIONS_TABLE,
        {"service": "checkout", "cluster": "eu-1", "namespace": "shop", "team": "from-scope",
         "engine": "gatekeeper", "policy_id": "k8s.require-non-root", "outcome": "deny"},
        id="attributes split across resource, scope and record land in one row; the record "
           "wins over scope and resource, the scope over the resource"),
    pytest.param(
        {"policy.id": "from-resource"}, {}, {"policy.outcome": "allow"}, "policy.decision",
        DECISIONS_TABLE, {"policy_id": "from-resource", "outcome": "allow"},
        id="a required attribute on the resource satisfies the kind"),
    pytest.param(
        {"deployment.environment.name": "prod"}, {}, {**DECISION, "deployment.environment":
                                                      "staging"},
        "policy.decision", DECISIONS_TABLE, {"environment": "staging"},
        id="the record's alias wins over the resource's preferred attribute"),
    pytest.param(
        {}, {}, {**DECISION, "deployment.environment": "old", "deployment.environment.name":
                 "prod"},
        "policy.decision", DECISIONS_TABLE, {"environment": "prod"},
        id="on one level the preferred attribute wins over an alias listed before it"),
    pytest.param(
        {}, {}, {**DECISION, "deployment.environment.name": "prod", "deployment.environment":
                 "old"},
        "policy.decision", DECISIONS_TABLE, {"environment": "prod"},
        id="on one level the preferred attribute wins over an alias listed after it"),
    pytest.param(
        {"k8s.cluster.name": "from-resource"}, {"deployment.environment.name": "prod",
                                                "deployment.environment": "old"},
        DECISION, "policy.decision", DECISIONS_TABLE,
        {"environment": "prod", "cluster": "from-resource"},
        id="on the scope too the preferred attribute wins over an alias listed after it"),
    pytest.param(
        {}, {}, {"policy.id": "p", "policy.outcome": "DENY", "policy.severity": " High ",
                 "policy.enforcement": "Audit"},
        "policy.decision", DECISIONS_TABLE,
        {"outcome": "deny", "severity": "high", "enforcement": "audit"},
        id="enum values are trimmed and lower-cased: 'DENY' is stored as deny"),
    pytest.param(
        {}, {}, DECISION, "policy.decision", DECISIONS_TABLE,
        {"enforcement": "enforce", "severity": "", "latency_seconds": None, "reason": ""},
        id="absent attributes take their defaults: enforcement enforce, latency NULL"),
    pytest.param(
        {}, {}, {**DECISION, "policy.evaluation.duration": 0.0042}, "policy.decision",
        DECISIONS_TABLE, {"latency_seconds": 0.0042},
        id="policy.evaluation.duration becomes latency_seconds"),
    pytest.param(
        {}, {}, {**DECISION, "policy.evaluation.duration": "2"}, "policy.decision",
        DECISIONS_TABLE, {"latency_seconds": 2.0},
        id="a numeric string duration is parsed as seconds"),
    pytest.param(
        {}, {}, {**DECISION, "policy.version": 7, "policy.rule": True,
                 "policy.resource.name": ["a", "b"]},
        "policy.decision", DECISIONS_TABLE,
        {"policy_version": "7", "rule": "true", "resource_name": '["a", "b"]'},
        id="string columns take non-string values as text: ints, bools, arrays as JSON"),
    pytest.param(
        {}, {}, {**DECISION, "event.name": "policy.decision"}, "", DECISIONS_TABLE,
        {"policy_id": "k8s.require-non-root"},
        id="the event.name attribute names the kind when event_name is empty"),
    pytest.param(
        {}, {}, {"workload.id": "w-1", "workload.enforced": True}, "workload.inventory",
        EVENTS_TABLE, {"event_kind": "workload.inventory", "workload_enforced": True},
        id="workload.enforced sent as a bool is stored as a bool"),
    pytest.param(
        {}, {}, {"workload.id": "w-1", "workload.enforced": "true"}, "workload.inventory",
        EVENTS_TABLE, {"workload_enforced": True},
        id="workload.enforced sent as the string 'true' is stored as true"),
    pytest.param(
        {}, {}, {"workload.id": "w-1", "workload.enforced": "FALSE"}, "workload.inventory",
        EVENTS_TABLE, {"workload_enforced": False},
        id="workload.enforced sent as 'FALSE' is stored as false"),
    pytest.param(
        {}, {}, {"agent.id": "a-1", "agent.dropped_events": "12", "agent.status": "Degraded",
                 "agent.heartbeat.interval": 30},
        "agent.heartbeat", EVENTS_TABLE,
        {"dropped_events": 12, "agent_status": "degraded", "heartbeat_interval_seconds": 30.0},
        id="a heartbeat's counter given as a string is stored as an integer"),
    pytest.param(
        {}, {}, {"policy.id": "p", "policy.violation.id": "v-1",
                 "policy.violation.status": "opened", "policy.remediation.kind": "auto"},
        "policy.violation", EVENTS_TABLE,
        {"event_kind": "policy.violation", "violation_status": "opened",
         "remediation_kind": "auto", "workload_enforced": None, "dropped_events": None},
        id="a violation goes to policy_events with NULL for the other kinds' numbers"),
]


@pytest.mark.parametrize(("resource", "scope", "record", "kind", "table", "expected"), ACCEPTED)
def test_accepted_record(resource, scope, record, kind, table, expected):
    batch = Normalizer().logs(logs_request(log_record(record, kind=kind), resource=resource,
                                           scope=scope))
    row = only_row(batch, table)
    assert {k: row[k] for k in expected} == expected


# -- rejected records --------------------------------------------------------------------------

REJECTED = [
    pytest.param({}, {"policy.id": "p"}, "policy.decision", "missing_outcome",
                 ["'policy.outcome'", "policy.decision"],
                 id="a decision without policy.outcome is rejected as missing_outcome"),
    pytest.param({}, {"policy.outcome": "allow"}, "policy.decision", "missing_policy_id",
                 ["'policy.id'"], id="a decision without policy.id is rejected"),
    pytest.param({}, {"policy.id": "p", "policy.outcome": "alow"}, "policy.decision",
                 "invalid_outcome",
                 ["'policy.outcome'", "'alow'", "expected one of allow, deny, warn, error"],
                 id="outcome 'alow' is rejected with a message listing the allowed values"),
    pytest.param({}, {"policy.id": "p", "policy.outcome": ""}, "policy.decision",
                 "invalid_outcome", ["'policy.outcome'"],
                 id="an empty outcome is rejected as invalid"),
    pytest.param({"policy.severity": "urgent"}, DECISION, "policy.decision",
                 "invalid_severity", ["'policy.severity'", "'urgent'", "critical, high"],
                 id="a bad enum value on the resource rejects the record"),
    pytest.param({}, {"policy.id": "p", "policy.violation.id": "v"}, "policy.violation",
                 "missing_violation_status", ["'policy.violation.status'"],
                 id="a violation without a status is rejected"),
    pytest.param({}, {"agent.id": "a", "agent.dropped_events": -1}, "agent.heartbeat",
                 "invalid_dropped_events",
                 ["'agent.dropped_events'", "-1", "an integer from 0 to 2^64-1"],
                 id="a negative agent.dropped_events is rejected"),
    pytest.param({}, {"agent.id": "a", "agent.dropped_events": math.inf}, "agent.heartbeat",
                 "invalid_dropped_events", ["'agent.dropped_events'"],
                 id="an infinite agent.dropped_events is rejected, not raised"),
    pytest.param({}, {"agent.id": "a", "agent.dropped_events": str(2**64)}, "agent.heartbeat",
                 "invalid_dropped_events", ["'agent.dropped_events'"],
                 id="an agent.dropped_events beyond UInt64 is rejected, not raised"),
    pytest.param({}, {"workload.id": "w", "workload.enforced": "maybe"}, "workload.inventory",
                 "invalid_workload_enforced", ["'maybe'", "true or false"],
                 id="workload.enforced 'maybe' is rejected"),
    pytest.param({}, {**DECISION, "policy.evaluation.duration": math.nan}, "policy.decision",
                 "invalid_latency_seconds", ["'policy.evaluation.duration'", "finite"],
                 id="a NaN evaluation duration is rejected"),
    pytest.param({}, DECISION, "policy.decisoin", "unknown_kind",
                 ["'policy.decisoin'", "policy.decision"],
                 id="an unknown policy.* kind is rejected as unknown_kind"),
]


@pytest.mark.parametrize(("resource", "record", "kind", "code", "fragments"), REJECTED)
def test_rejected_record(resource, record, kind, code, fragments):
    batch = Normalizer().logs(logs_request(log_record(record, kind=kind), resource=resource))
    assert (batch.accepted, batch.rejected, batch.ignored) == (0, 1, 0)
    assert dict(batch.reject_codes) == {code: 1}
    (message,) = batch.reject_examples
    for fragment in fragments:
        assert fragment in message
    assert f"{code}: 1" in batch.reject_message()
    assert batch.tables == {}


def test_a_rejected_record_does_not_stop_the_rest_of_the_request():
    batch = Normalizer().logs(logs_request(
        log_record(DECISION), log_record({"policy.id": "p"}),
        log_record({**DECISION, "policy.outcome": "warn"})))
    assert (batch.accepted, batch.rejected) == (2, 1)
    assert [r["outcome"] for r in rows(batch, DECISIONS_TABLE)] == ["deny", "warn"]


# -- ignored records ---------------------------------------------------------------------------

IGNORED = [
    pytest.param("", DECISION, id="a record without event_name or event.name is ignored, "
                                  "not rejected"),
    pytest.param("app.login", {"user.id": "u"}, id="an unknown kind outside policy.* is ignored"),
    pytest.param("", {**DECISION, "event.name": 42},
                 id="a non-string event.name is ignored"),
]


@pytest.mark.parametrize(("kind", "record"), IGNORED)
def test_ignored_record(kind, record):
    batch = Normalizer().logs(logs_request(log_record(record, kind=kind)))
    assert (batch.accepted, batch.rejected, batch.ignored) == (0, 0, 1)
    assert batch.tables == {} and batch.reject_message() == ""


# -- event id ----------------------------------------------------------------------------------

def test_event_id_is_log_record_uid_when_present():
    assert one({**DECISION, "log.record.uid": "01J0-abc"})["event_id"] == "01J0-abc"


def test_event_id_without_uid_is_a_stable_content_hash():
    record = log_record(DECISION)
    first = Normalizer().logs(logs_request(record, record))
    again = Normalizer().logs(logs_request(record))
    ids = [r["event_id"] for r in rows(first, DECISIONS_TABLE)]
    assert ids[0] == ids[1] == rows(again, DECISIONS_TABLE)[0]["event_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", ids[0])


@pytest.mark.parametrize("other", [
    pytest.param(logs_request(log_record({**DECISION, "policy.outcome": "allow"})),
                 id="a different attribute value gives a different id"),
    pytest.param(logs_request(log_record(DECISION, time_ns=T0 + 1)),
                 id="a different time gives a different id"),
    pytest.param(logs_request(log_record(DECISION), resource={"service.name": "other"}),
                 id="the same record from another resource gives a different id"),
])
def test_event_id_differs_for_a_different_record(other):
    base = rows(Normalizer().logs(logs_request(log_record(DECISION))), DECISIONS_TABLE)
    assert rows(Normalizer().logs(other), DECISIONS_TABLE)[0]["event_id"] != base[0]["event_id"]


# -- time and ids ------------------------------------------------------------------------------

def test_event_time_is_the_record_time_and_observed_time_is_kept_apart():
    row = one(DECISION, time_ns=T0, observed_ns=T0 + 5 * 10**9)
    assert row["event_time"] == T0_TIME
    assert row["observed_time"] == T0_TIME + dt.timedelta(seconds=5)


def test_event_time_falls_back_to_observed_time():
    row = one(DECISION, time_ns=0, observed_ns=T0 + 1_500_000)
    assert row["event_time"] == row["observed_time"] == T0_TIME + dt.timedelta(milliseconds=1)


def test_event_time_falls_back_to_receive_time_without_either():
    before = dt.datetime.fromtimestamp(time.time() - 1, dt.timezone.utc)
    row = one(DECISION, time_ns=0, observed_ns=0)
    after = dt.datetime.fromtimestamp(time.time() + 1, dt.timezone.utc)
    assert before <= row["event_time"] <= after
    assert before <= row["observed_time"] <= after


def test_trace_and_span_ids_are_lower_case_hex():
    row = one(DECISION, trace_id=TRACE_ID, span_id=SPAN_ID)
    assert row["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert row["span_id"] == "00f067aa0ba902b7"


def test_trace_and_span_ids_are_empty_when_absent():
    row = one(DECISION)
    assert (row["trace_id"], row["span_id"]) == ("", "")


# -- the attributes map ------------------------------------------------------------------------

def test_unmapped_record_attributes_go_to_the_attributes_map_as_text():
    batch = Normalizer().logs(logs_request(
        log_record({**DECISION, "http.route": "/admit", "retry.count": 3, "dry": False,
                    "tags": ["a", 1], "event.name": "policy.decision", "log.record.uid": "u1"}),
        resource={"host.name": "node-1"}))
    extra = dict(only_row(batch, DECISIONS_TABLE)["attributes"])
    assert extra == {"http.route": "/admit", "retry.count": "3", "dry": "false",
                     "tags": '["a", 1]'}


@pytest.mark.parametrize("key", [
    pytest.param("db.password", id="db.password is redacted"),
    pytest.param("api_key", id="api_key is redacted"),
    pytest.param("http.request.header.authorization", id="an authorization header is redacted"),
    pytest.param("GITHUB_TOKEN", id="a token is redacted whatever its case"),
])
def test_secret_looking_keys_are_redacted_with_the_default_patterns(key):
    normalizer = Normalizer(redact_attributes=CollectorConfig().redact_attributes)
    batch = normalizer.logs(logs_request(log_record(
        {**DECISION, key: "hunter2", "http.route": "/admit"})))
    extra = dict(only_row(batch, DECISIONS_TABLE)["attributes"])
    assert extra == {key: REDACTED, "http.route": "/admit"}
    assert "hunter2" not in repr(batch.tables)


@pytest.mark.parametrize("bound", [
    pytest.param(0, id="a bound of 0 keeps no extra attributes"),
    pytest.param(3, id="a bound of 3 keeps the first 3 of 10 extra attributes"),
])
def test_the_attributes_map_is_bounded(bound):
    extra_attrs = {f"x.{i}": str(i) for i in range(10)}
    batch = Normalizer(max_extra_attributes=bound).logs(logs_request(
        log_record({**DECISION, **extra_attrs})))
    extra = dict(only_row(batch, DECISIONS_TABLE)["attributes"])
    assert extra == {f"x.{i}": str(i) for i in range(bound)}


def test_long_extra_values_are_truncated():
    extra = dict(one({**DECISION, "note": "x" * 5000})["attributes"])
    assert extra["note"] == "x" * MAX_EXTRA_VALUE_CHARS


# -- spans -------------------------------------------------------------------------------------

def _span(attrs: dict, *, name: str = "evaluate", start: int = T0,
          end: int = T0 + 250_000_000, events: tuple = ()) -> Span:
    return Span(trace_id=TRACE_ID, span_id=SPAN_ID, name=name, start_time_unix_nano=start,
                end_time_unix_nano=end, attributes=kvs(attrs), events=list(events))


def test_a_decision_span_without_a_duration_attribute_takes_the_span_duration():
    batch = Normalizer().spans(spans_request(
        _span({**DECISION, "event.name": "policy.decision"}), resource={"team.name": "pay"}))
    row = only_row(batch, DECISIONS_TABLE)
    assert row["latency_seconds"] == pytest.approx(0.25)
    assert (row["event_time"], row["team"], row["outcome"]) == (T0_TIME, "pay", "deny")
    assert (row["trace_id"], row["span_id"]) == (TRACE_ID.hex(), SPAN_ID.hex())


def test_a_decision_span_keeps_an_explicit_evaluation_duration():
    batch = Normalizer().spans(spans_request(_span(
        {**DECISION, "event.name": "policy.decision", "policy.evaluation.duration": 0.002})))
    assert only_row(batch, DECISIONS_TABLE)["latency_seconds"] == 0.002


def test_a_span_named_after_a_kind_is_that_kind():
    batch = Normalizer().spans(spans_request(_span(DECISION, name="policy.decision")))
    assert only_row(batch, DECISIONS_TABLE)["policy_id"] == "k8s.require-non-root"


def test_a_span_event_named_policy_violation_becomes_a_violation_row():
    event = Span.Event(name="policy.violation", time_unix_nano=T0 + 10**9, attributes=kvs(
        {"policy.violation.id": "v-9", "policy.violation.status": "opened"}))
    batch = Normalizer().spans(spans_request(_span({"policy.id": "p-1"}, events=(event,))))
    row = only_row(batch, EVENTS_TABLE)
    assert {k: row[k] for k in ("event_kind", "policy_id", "violation_id", "violation_status",
                                "trace_id", "span_id", "event_time")} == {
        "event_kind": "policy.violation", "policy_id": "p-1", "violation_id": "v-9",
        "violation_status": "opened", "trace_id": TRACE_ID.hex(), "span_id": SPAN_ID.hex(),
        "event_time": T0_TIME + dt.timedelta(seconds=1)}
    assert rows(batch, DECISIONS_TABLE) == []


def test_a_span_without_a_kind_is_ignored():
    batch = Normalizer().spans(spans_request(_span(DECISION)))
    assert (batch.accepted, batch.rejected, batch.ignored) == (0, 0, 1)


# -- property: the normalizer never raises on data ---------------------------------------------

MAPPED_KEYS = sorted({key for t in TABLES for c in t.columns for key in c.attributes}
                     | {"event.name", "log.record.uid"})
TRICKY_STRINGS = ["", " ", "-1", "0", "1.5", "1e400", "nan", "inf", "-inf", "true", "FALSE",
                  str(2**64), "DENY", "allow", "policy.decision", "policy.nope", "\x00"]
scalars = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.sampled_from(TRICKY_STRINGS),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.binary(max_size=8),
    st.none(),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.text(max_size=5), inner, max_size=2)), max_leaves=6)
# Mostly keys that map to a column (so coercion runs), some arbitrary ones.
keys = st.one_of(st.sampled_from(MAPPED_KEYS), st.sampled_from(MAPPED_KEYS),
                 st.sampled_from(MAPPED_KEYS), st.text(min_size=1, max_size=12))
attr_maps = st.dictionaries(keys, values, max_size=8)
kinds = st.sampled_from([*EVENT_KINDS, "", "policy.nope", "app.login"])
records = st.builds(
    lambda kind, attrs, t, o: log_record(attrs, kind=kind, time_ns=t, observed_ns=o),
    kinds, attr_maps, st.one_of(st.just(0), st.integers(0, 2**64 - 1)),
    st.one_of(st.just(0), st.integers(0, 2**64 - 1)))


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(resource=attr_maps, scope=attr_maps, recs=st.lists(records, max_size=6))
@example(resource={"agent.dropped_events": math.inf}, scope={},
         recs=[log_record({}, kind="drift.detected"), log_record(DECISION)])
def test_the_normalizer_never_raises_and_accounts_for_every_record(resource, scope, recs):
    normalizer = Normalizer(max_extra_attributes=4,
                            redact_attributes=CollectorConfig().redact_attributes)
    batch = normalizer.logs(logs_request(*recs, resource=resource, scope=scope))
    assert batch.accepted + batch.rejected + batch.ignored == len(recs)
    assert sum(t.num_rows for t in batch.tables.values()) == batch.accepted
    assert sum(batch.reject_codes.values()) == batch.rejected


# Every mapped attribute, with the kind and minimal attributes that make a valid record of its
# table, so the value under test is the only thing that can make it fail.
MINIMAL_RECORD = {DECISIONS_TABLE: ("policy.decision", DECISION),
                  EVENTS_TABLE: ("drift.detected", {})}
ATTRIBUTES = [(t.name, c.name, key) for t in TABLES for c in t.columns for key in c.attributes]


@settings(max_examples=400, deadline=None, database=None)
@given(case=st.sampled_from(ATTRIBUTES), value=values)
@example(case=(EVENTS_TABLE, "dropped_events", "agent.dropped_events"), value=math.inf)
@example(case=(EVENTS_TABLE, "dropped_events", "agent.dropped_events"), value=1e30)
@example(case=(EVENTS_TABLE, "sbom_components", "sbom.component.count"), value=str(2**64))
@example(case=(DECISIONS_TABLE, "latency_seconds", "policy.evaluation.duration"), value=1e400)
@example(case=(EVENTS_TABLE, "workload_enforced", "workload.enforced"), value=b"\x01")
@example(case=(DECISIONS_TABLE, "outcome", "policy.outcome"), value=["deny"])
def test_any_value_of_a_mapped_attribute_is_stored_or_rejected_as_that_column(case, value):
    table, column, key = case
    kind, minimal = MINIMAL_RECORD[table]
    batch = Normalizer().logs(logs_request(log_record({**minimal, key: value}, kind=kind)))
    assert (batch.accepted + batch.rejected, batch.ignored) == (1, 0)
    assert set(batch.reject_codes) <= {f"invalid_{column}", f"missing_{column}"}
    if batch.accepted:
        assert len(rows(batch, table)) == 1
