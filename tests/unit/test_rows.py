"""collector/rows.py: plain attribute dicts -> typed rows, rejects and stable ids, no OTLP.

Native receivers and importers build rows this way; the OTLP walk (collector/normalize.py) too,
and its content-hash ids must not change (the last tests here).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from types import SimpleNamespace

import pyarrow as pa
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.config import CollectorConfig
from collector.errors import StorageUnavailable
from collector.normalize import Normalizer
from collector.pipeline import Pipeline
from collector.rows import MAX_TIME_MS, MIN_TIME_MS, REDACTED, RowBuilder, SourceContext
from schemas.events import DECISIONS, EVENTS

pytestmark = pytest.mark.unit

T0_MS = 1_735_732_800_000  # 2025-01-01T12:00:00Z
T0_TIME = dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone.utc)
DECISION = {"policy.id": "k8s.require-non-root", "policy.outcome": "deny",
            "policy.engine": "opa", "policy.evaluation.duration": 0.004}
VIOLATION = {"policy.id": "CKV_AWS_20", "policy.violation.id": "v-1",
             "policy.violation.status": "opened", "policy.severity": "HIGH",
             "code.file.path": "main.tf"}


def build(*records, rows: RowBuilder | None = None, base: dict | None = None,
          now_ms: int = T0_MS):
    """Each record is (kind, attrs, keyword facts); one batch of them."""
    out = (rows or RowBuilder()).batch(now_ms=now_ms)
    context = SourceContext(base)
    for kind, attrs, facts in records:
        out.add(context, kind, attrs, **facts)
    return out.finish()


def only_row(batch, table: str) -> dict:
    assert (batch.accepted, batch.rejected, batch.ignored) == (1, 0, 0), batch.reject_message()
    (row,) = batch.tables[table].to_pylist()
    return row


# -- rows --------------------------------------------------------------------------------------

def test_a_decision_from_a_plain_dict_is_a_typed_arrow_row():
    batch = build(("policy.decision", DECISION,
                   {"time_ms": T0_MS, "observed_ms": T0_MS + 5, "trace_id": "4BF92F35" * 4,
                    "span_id": bytes.fromhex("00f067aa0ba902b7")}),
                  base={"team.name": "payments", "k8s.cluster.name": "eu-1"})
    table = batch.tables["policy_decisions"]
    assert table.schema.equals(DECISIONS.arrow_schema())
    assert table.schema.field("latency_seconds").type == pa.float64()
    row = only_row(batch, "policy_decisions")
    assert {k: row[k] for k in ("policy_id", "outcome", "engine", "latency_seconds", "team",
                                "cluster", "enforcement", "event_time", "trace_id",
                                "span_id")} == {
        "policy_id": "k8s.require-non-root", "outcome": "deny", "engine": "opa",
        "latency_seconds": 0.004, "team": "payments", "cluster": "eu-1",
        "enforcement": "enforce", "event_time": T0_TIME, "trace_id": "4bf92f35" * 4,
        "span_id": "00f067aa0ba902b7"}
    assert row["observed_time"] == T0_TIME + dt.timedelta(milliseconds=5)
    assert "policy_events" not in batch.tables


def test_a_violation_from_a_plain_dict_goes_to_policy_events():
    batch = build(("policy.violation", VIOLATION, {"time_ms": T0_MS}),
                  base={"policy.engine": "checkov"})
    table = batch.tables["policy_events"]
    assert table.schema.equals(EVENTS.arrow_schema())
    row = only_row(batch, "policy_events")
    assert {k: row[k] for k in ("event_kind", "engine", "policy_id", "violation_id",
                                "violation_status", "severity", "file_path",
                                "dropped_events")} == {
        "event_kind": "policy.violation", "engine": "checkov", "policy_id": "CKV_AWS_20",
        "violation_id": "v-1", "violation_status": "opened", "severity": "high",
        "file_path": "main.tf", "dropped_events": None}


def test_absent_times_are_the_batch_receive_time():
    row = only_row(build(("policy.decision", DECISION, {})), "policy_decisions")
    assert row["event_time"] == row["observed_time"] == T0_TIME


def test_a_duration_fills_latency_only_when_no_attribute_does():
    no_attr = {k: v for k, v in DECISION.items() if k != "policy.evaluation.duration"}
    batch = build(("policy.decision", no_attr, {"duration_s": 0.25}),
                  ("policy.decision", DECISION, {"duration_s": 0.25}))
    assert batch.tables["policy_decisions"].column("latency_seconds").to_pylist() == [0.25,
                                                                                       0.004]


# -- rejects -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "attrs", "facts", "code"), [
    pytest.param("policy.decision", {**DECISION, "policy.outcome": "maybe"}, {},
                 "invalid_outcome", id="a bad enum value is rejected as invalid_outcome"),
    pytest.param("policy.decision", {"policy.outcome": "allow"}, {}, "missing_policy_id",
                 id="a decision without policy.id is rejected as missing_policy_id"),
    pytest.param("policy.violation", {"policy.id": "p", "policy.violation.id": "v"}, {},
                 "missing_violation_status", id="a violation without a status is rejected"),
    pytest.param("policy.decision", DECISION, {"time_ms": MIN_TIME_MS - 1}, "invalid_time",
                 id="an event time before 1970 is rejected as invalid_time"),
    pytest.param("policy.decision", DECISION, {"time_ms": MAX_TIME_MS + 1}, "invalid_time",
                 id="an event time after 2099 is rejected as invalid_time"),
    pytest.param("policy.decision", DECISION, {"time_ms": T0_MS, "observed_ms": 2**62},
                 "invalid_time", id="an observed time after 2099 is rejected as invalid_time"),
    pytest.param("policy.decision", DECISION, {"time_ms": "yesterday"}, "invalid_time",
                 id="a time that is not a number is rejected as invalid_time"),
    pytest.param("policy.decision", DECISION, {"trace_id": "not-hex"}, "invalid_trace_id",
                 id="a trace id that is not hex text is rejected"),
    pytest.param("policy.decisoin", DECISION, {}, "unknown_kind",
                 id="an unknown policy.* kind is rejected as unknown_kind"),
])
def test_a_record_breaking_the_contract_is_a_reject_with_its_code_and_no_row(kind, attrs,
                                                                             facts, code):
    batch = build((kind, attrs, facts))
    assert (batch.accepted, batch.rejected, batch.ignored) == (0, 1, 0)
    assert dict(batch.reject_codes) == {code: 1}
    assert batch.tables == {}


def test_a_bad_base_attribute_rejects_the_records_of_that_table():
    batch = build(("policy.decision", DECISION, {}), ("drift.detected", {}, {}),
                  base={"agent.dropped_events": -1})
    assert (batch.accepted, batch.rejected) == (1, 1)
    assert dict(batch.reject_codes) == {"invalid_dropped_events": 1}
    assert list(batch.tables) == ["policy_decisions"]


def test_a_record_without_a_kind_or_outside_the_contract_is_ignored():
    batch = build(("", DECISION, {}), ("app.login", {"user.id": "u"}, {}))
    assert (batch.accepted, batch.rejected, batch.ignored) == (0, 0, 2)


# -- event ids ---------------------------------------------------------------------------------

def test_an_explicit_event_id_is_kept_even_over_log_record_uid():
    batch = build(("policy.decision", {**DECISION, "log.record.uid": "uid-1"},
                   {"event_id": "opa-decision-42"}),
                  ("policy.decision", {**DECISION, "log.record.uid": "uid-1"}, {}))
    assert batch.tables["policy_decisions"].column("event_id").to_pylist() == [
        "opa-decision-42", "uid-1"]


def test_the_same_input_twice_gives_the_same_content_hash_id():
    first = only_row(build(("policy.decision", DECISION, {"time_ms": T0_MS})),
                     "policy_decisions")["event_id"]
    again = only_row(build(("policy.decision", dict(DECISION), {"time_ms": T0_MS}),
                           now_ms=T0_MS + 99), "policy_decisions")["event_id"]
    other = only_row(build(("policy.decision", {**DECISION, "policy.outcome": "allow"},
                            {"time_ms": T0_MS})), "policy_decisions")["event_id"]
    assert first == again != other
    assert re.fullmatch(r"[0-9a-f]{32}", first)


def test_identity_bytes_from_the_source_are_the_content_hash():
    out = RowBuilder().batch()
    out.add(SourceContext(identity_prefix=b"falco:"), "policy.decision", DECISION,
            identity=b"event-bytes")
    out.add(SourceContext(identity_prefix=b"falco:"), "policy.decision", DECISION,
            identity=lambda: b"event-bytes")
    expected = hashlib.blake2b(b"falco:event-bytes", digest_size=16).hexdigest()
    assert out.finish().tables["policy_decisions"].column("event_id").to_pylist() == [
        expected, expected]


# -- the attributes map ------------------------------------------------------------------------

def test_a_secret_looking_key_in_extras_is_redacted():
    row = only_row(build(("policy.decision", {**DECISION, "api_key": "hunter2",
                                              "http.route": "/admit", "retries": 3}, {})),
                   "policy_decisions")
    assert dict(row["attributes"]) == {"api_key": REDACTED, "http.route": "/admit",
                                       "retries": "3"}


def test_odd_native_values_do_not_raise():
    batch = build(("policy.decision", {**DECISION, "when": dt.date(2025, 1, 1),
                                       "mixed": {1: "a", "b": 2}, "policy.rule": {2: 1, "x": 0}},
                   {"time_ms": float(T0_MS)}))
    row = only_row(batch, "policy_decisions")
    assert dict(row["attributes"])["when"] == '"2025-01-01"'


# -- Pipeline.consume: the receivers' contract -------------------------------------------------

def pipeline(tmp_path, **collector) -> Pipeline:
    config = SimpleNamespace(storage=None, collector=CollectorConfig(
        spool_dir=tmp_path, normalize_workers=0, **collector))
    p = Pipeline(config)
    p.spool.start()  # no ClickHouse needed: durable means in the spool
    return p


def test_a_native_batch_is_durable_through_consume_and_counted_under_its_source(tmp_path):
    p = pipeline(tmp_path)
    try:
        batch = build(("policy.decision", DECISION, {}), ("policy.decision", {}, {}))
        submission = p.consume("opa", batch)
        assert submission.durable.result(10) is None
        assert list(tmp_path.glob("*.seg"))
        assert p.counts["opa_accepted"] == 1 and p.counts["opa_rejected"] == 1
    finally:
        p.spool.shutdown()


def test_consume_refuses_a_table_not_built_with_the_event_schema(tmp_path):
    p = pipeline(tmp_path)
    try:
        batch = build(("policy.decision", DECISION, {}))
        batch.tables["policy_decisions"] = pa.table({"event_id": ["x"]})
        with pytest.raises(ValueError, match="policy_decisions"):
            p.consume("opa", batch)
    finally:
        p.spool.shutdown()


def test_consume_raises_retryable_when_the_spool_is_over_its_limit(tmp_path):
    p = pipeline(tmp_path, spool_max_size=1, retry_after=3)
    try:
        p.consume("opa", build(("policy.decision", DECISION, {}))).durable.result(10)
        with pytest.raises(StorageUnavailable) as err:
            p.consume("opa", build(("policy.decision", DECISION, {})))
        assert err.value.retry_after == 3
    finally:
        p.spool.shutdown()


# -- the OTLP path keeps its event ids ---------------------------------------------------------

T0_NS = T0_MS * 10**6


def kvs(attrs: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v) if isinstance(v, str)
                     else AnyValue(double_value=v)) for k, v in attrs.items()]


def fixed_logs() -> ExportLogsServiceRequest:
    decision = {"policy.id": "k8s.require-non-root", "policy.outcome": "deny"}
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=kvs({"service.name": "checkout",
                                          "k8s.cluster.name": "eu-1"})),
        scope_logs=[ScopeLogs(
            scope=InstrumentationScope(name="test", version="1",
                                       attributes=kvs({"team.name": "pay"})),
            log_records=[
                LogRecord(event_name="policy.decision", attributes=kvs(decision),
                          time_unix_nano=T0_NS, observed_time_unix_nano=T0_NS + 5),
                LogRecord(event_name="policy.violation", attributes=kvs(
                    {"policy.id": "p", "policy.violation.id": "v-1",
                     "policy.violation.status": "opened"}), time_unix_nano=T0_NS + 10**9,
                    trace_id=bytes(range(16)), span_id=bytes(range(8)))])])])


def fixed_spans() -> ExportTraceServiceRequest:
    event = Span.Event(name="policy.violation", time_unix_nano=T0_NS + 10**9, attributes=kvs(
        {"policy.violation.id": "v-9", "policy.violation.status": "opened"}))
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=kvs({"team.name": "pay"})),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="test"), spans=[Span(
            trace_id=bytes(range(16)), span_id=bytes(range(8)), name="policy.decision",
            start_time_unix_nano=T0_NS, end_time_unix_nano=T0_NS + 250_000_000,
            attributes=kvs({"policy.id": "p-1", "policy.outcome": "deny"}),
            events=[event])])])])


def old_id(*parts: bytes) -> str:
    """The id formula before the row builder existed:
    blake2b(resource bytes + scope bytes [+ span id salt] + record bytes, digest_size=16)."""
    digest = hashlib.blake2b(parts[0] + parts[1], digest_size=16)
    for part in parts[2:]:
        digest.update(part)
    return digest.hexdigest()


def ids(batch) -> dict[str, list[str]]:
    return {name: t.column("event_id").to_pylist() for name, t in batch.tables.items()}


def test_otlp_log_ids_are_the_old_content_hash():
    request = fixed_logs()
    rl = request.resource_logs[0]
    sl = rl.scope_logs[0]
    resource = rl.resource.SerializeToString(deterministic=True)
    scope = sl.scope.SerializeToString(deterministic=True)
    expected = [old_id(resource, scope, rec.SerializeToString(deterministic=True))
                for rec in sl.log_records]
    assert ids(Normalizer().logs(request)) == {"policy_decisions": [expected[0]],
                                               "policy_events": [expected[1]]}
    # ... and the values the code before the row builder gave for this request.
    assert expected == ["73d692c5e3c797f1df419cc6687f3242", "4eefdf6409b639747a55bfc6201854f2"]


def test_otlp_span_and_span_event_ids_are_the_old_content_hash():
    request = fixed_spans()
    rs = request.resource_spans[0]
    resource = rs.resource.SerializeToString(deterministic=True)
    scope = rs.scope_spans[0].scope.SerializeToString(deterministic=True)
    span = rs.scope_spans[0].spans[0]
    expected = {
        "policy_decisions": [old_id(resource, scope, span.SerializeToString(deterministic=True))],
        "policy_events": [old_id(resource, scope, span.span_id,
                                 span.events[0].SerializeToString(deterministic=True))]}
    assert ids(Normalizer().spans(request)) == expected
    assert expected == {"policy_decisions": ["6f590c376b36b2f6b36e2a545ed722af"],
                        "policy_events": ["fe6f5149518f94888ed751f0a0637dcd"]}


# -- per-record expansion: limits, counted and told, never silent ------------------------------

def test_text_longer_than_max_value_length_is_cut_and_counted():
    huge = "x" * (1024**2)  # a 1 MiB policy.reason was stored whole
    batch = build(("policy.decision", {**DECISION, "policy.reason": huge,
                                       "policy.resource.name": "short"}, {}),
                  ("policy.decision", {**DECISION, "policy.reason": "fine"}, {}),
                  rows=RowBuilder(max_value_length=100))
    reasons = batch.tables["policy_decisions"].column("reason").to_pylist()
    assert reasons == ["x" * 100, "fine"]
    assert batch.truncated == {"reason": 1} and batch.rejected == 0
    assert "reason: 1" in batch.warnings() and "max_value_length" in batch.reject_message()


def test_attributes_left_out_and_extra_values_cut_are_counted():
    extras = {f"extra.{i}": "v" for i in range(10)}
    batch = build(("policy.decision", {**DECISION, **extras, "long": "y" * 5000}, {}),
                  rows=RowBuilder(max_extra_attributes=3))
    (row,) = batch.tables["policy_decisions"].to_pylist()
    assert len(row["attributes"]) == 3
    assert batch.truncated["attributes"] == 1
    batch = build(("policy.decision", {**DECISION, "long": "y" * 5000}, {}))
    assert dict(batch.tables["policy_decisions"].to_pylist()[0]["attributes"])["long"] == \
        "y" * 1024
    assert batch.truncated == {"attribute_value": 1}


def test_nothing_cut_means_no_warning():
    batch = build(("policy.decision", DECISION, {}))
    assert batch.truncated == {} and batch.warnings() == "" and batch.reject_message() == ""


@pytest.mark.parametrize("key", ["policy.evaluation.duration", "agent.heartbeat.interval"])
def test_a_negative_duration_is_rejected_not_filed_as_the_fastest(key):
    kind, attrs = ("policy.decision", DECISION) if key.startswith("policy") else (
        "agent.heartbeat", {"agent.id": "a-1"})
    batch = build((kind, {**attrs, key: -1}, {}))
    assert batch.rejected == 1 and batch.accepted == 0
    (code,) = batch.reject_codes
    assert code.startswith("invalid_") and ">= 0" in batch.reject_examples[0]
