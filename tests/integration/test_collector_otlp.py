"""The collector against real clients: the official OTel SDK exporters (gRPC and HTTP), the
official OTLP/JSON examples, and every error class of DESIGN §4 by HTTP and by gRPC."""

from __future__ import annotations

import gzip
import json
import time

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from collector import otlp_json
from collector.service import CollectorService
from tests.builders.otlp import LOGS_METHOD, decision, kv, logs_request, post, wait_rows
from tests.conftest import conformance_dir

pytestmark = pytest.mark.integration

# -- the official OpenTelemetry SDK exporters ---------------------------------------------------

@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_exporter_delivers_every_record_with_its_values(collector, protocol):
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        exporter = OTLPLogExporter(endpoint=f"http://127.0.0.1:{collector.grpc_port}",
                                   insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        exporter = OTLPLogExporter(endpoint=f"http://127.0.0.1:{collector.http_port}/v1/logs")
    provider = LoggerProvider(resource=Resource.create(
        {"service.name": "admission", "k8s.cluster.name": "prod-eu-1", "team.name": "platform"}),
        shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(
        exporter, max_queue_size=4096, max_export_batch_size=256, schedule_delay_millis=50))
    logger = provider.get_logger("policyscope.tests")
    n = 1000
    outcomes = ["allow", "deny", "warn", "error"]
    for i in range(n):
        logger.emit(event_name="policy.decision", timestamp=time.time_ns(), attributes={
            "policy.id": f"policy-{i % 5}", "policy.outcome": outcomes[i % 4],
            "policy.evaluation.duration": 0.001 * (i % 10 + 1), "log.record.uid": f"{protocol}-{i}",
            "team.name": "payments" if i % 2 else "identity"})
    assert provider.force_flush(30_000)
    provider.shutdown()

    sql = "SELECT count() FROM policy_decisions"
    assert wait_rows(collector, sql, n) == n
    rows = collector.pipeline.client.query(
        "SELECT outcome, count(), uniqExact(policy_id), any(cluster), any(service), "
        "round(sum(latency_seconds), 6) FROM policy_decisions GROUP BY outcome ORDER BY outcome"
    ).result_rows
    by_outcome = {r[0]: r[1:] for r in rows}
    assert {k: v[0] for k, v in by_outcome.items()} == {o: n // 4 for o in outcomes}
    assert all(v[1] == 5 for v in by_outcome.values())
    assert all(v[2] == "prod-eu-1" and v[3] == "admission" for v in by_outcome.values())
    expected_latency = round(sum(0.001 * (i % 10 + 1) for i in range(n)), 6)
    assert round(sum(v[4] for v in by_outcome.values()), 6) == expected_latency
    teams = dict(collector.pipeline.client.query(
        "SELECT team, count() FROM policy_decisions GROUP BY team").result_rows)
    assert teams == {"payments": n // 2, "identity": n // 2}  # record beats resource


# -- the official OTLP/JSON examples ------------------------------------------------------------

@pytest.mark.parametrize("name,path", [("logs.json", "/v1/logs"), ("events.json", "/v1/logs"),
                                       ("trace.json", "/v1/traces"),
                                       ("metrics.json", "/v1/metrics")])
def test_official_json_example_is_accepted_with_an_empty_response(collector, name, path):
    body = (conformance_dir() / name).read_bytes()
    status, headers, reply = post(collector.http_port, path, body, "application/json")
    assert (status, json.loads(reply)) == (200, {})
    assert headers["Content-Type"].startswith("application/json")


def test_official_json_examples_decode_to_the_documented_values():
    folder = conformance_dir()
    logs = otlp_json.parse((folder / "logs.json").read_bytes(),
                           logs_service_pb2.ExportLogsServiceRequest())
    record = logs.resource_logs[0].scope_logs[0].log_records[0]
    assert record.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert len(record.trace_id) == 16 and len(record.span_id) == 8
    assert record.span_id.hex() == "eee19b7ec3c1b174"
    assert record.time_unix_nano == 1544712660300000000
    resource = {kv.key: kv.value.string_value for kv in logs.resource_logs[0].resource.attributes}
    assert resource["service.name"] == "my.service"
    events = otlp_json.parse((folder / "events.json").read_bytes(),
                             logs_service_pb2.ExportLogsServiceRequest())
    assert events.resource_logs[0].scope_logs[0].log_records[0].event_name == "browser.page_view"
    traces = otlp_json.parse((folder / "trace.json").read_bytes(),
                             trace_service_pb2.ExportTraceServiceRequest())
    span = traces.resource_spans[0].scope_spans[0].spans[0]
    assert span.kind == 2 and len(span.trace_id) == 16 and len(span.span_id) == 8


# -- acceptance, partial success and idempotence ------------------------------------------------

def test_json_with_one_bad_record_gets_partial_success_and_stores_the_good_one(collector):
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"eventName": "policy.decision", "timeUnixNano": str(time.time_ns()),
         "attributes": [{"key": "policy.id", "value": {"stringValue": "p1"}},
                        {"key": "policy.outcome", "value": {"stringValue": "allow"}}]},
        {"eventName": "policy.decision", "timeUnixNano": time.time_ns(),
         "attributes": [{"key": "policy.id", "value": {"stringValue": "p1"}},
                        {"key": "policy.outcome", "value": {"stringValue": "alow"}}]},
    ]}]}]}).encode()
    status, _, reply = post(collector.http_port, "/v1/logs", body, "application/json")
    answer = json.loads(reply)
    assert status == 200
    assert answer["partialSuccess"]["rejectedLogRecords"] == "1"
    assert "'alow'" in answer["partialSuccess"]["errorMessage"]
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 1) == 1


def test_grpc_partial_success_counts_the_rejected_records(collector):
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        export = channel.unary_unary(
            LOGS_METHOD, request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=logs_service_pb2.ExportLogsServiceResponse.FromString)
        response = export(logs_request(decision("a"), decision("b", outcome="maybe"),
                                       decision("c", policy="")), timeout=10)
    assert response.partial_success.rejected_log_records == 2
    assert "policy.id" in response.partial_success.error_message
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 1) == 1


@pytest.mark.parametrize("uid", ["fixed-uid-1", None], ids=[
    "a retried request with log.record.uid is stored once",
    "a retried request without uid is stored once (content hash)"])
def test_a_client_retry_stores_each_event_once(collector, uid):
    body = logs_request(decision(uid), decision(None, outcome="allow", policy="other")
                        ).SerializeToString()
    for _ in range(2):
        assert post(collector.http_port, "/v1/logs", body)[0] == 200
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        channel.unary_unary(LOGS_METHOD)(body, timeout=10)  # and once more over gRPC
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 2) == 2
    assert collector.pipeline.writer.duplicate_rows >= 2


def test_gzip_protobuf_and_spans_carrying_decisions(collector):
    now = time.time_ns()
    span = trace_pb2.Span(trace_id=bytes(range(16)), span_id=bytes(range(8)), name="admit",
                          start_time_unix_nano=now, end_time_unix_nano=now + 2_500_000,
                          attributes=[kv("event.name", "policy.decision"),
                                      kv("policy.id", "p-span"), kv("policy.outcome", "deny")])
    request = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[span])])])
    status, _, reply = post(collector.http_port, "/v1/traces",
                            gzip.compress(request.SerializeToString()),
                            headers={"Content-Encoding": "gzip"})
    assert status == 200 and reply == b""
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 1) == 1
    row = collector.pipeline.client.query(
        "SELECT policy_id, outcome, trace_id, span_id, latency_seconds FROM policy_decisions"
    ).result_rows[0]
    assert row == ("p-span", "deny", bytes(range(16)).hex(), bytes(range(8)).hex(), 0.0025)


# -- error classes, HTTP ------------------------------------------------------------------------

def _status(reply: bytes, content_type: str) -> status_pb2.Status:
    if content_type.startswith("application/json"):
        data = json.loads(reply)
        return status_pb2.Status(code=data.get("code", 0), message=data.get("message", ""))
    return status_pb2.Status.FromString(reply)


@pytest.mark.parametrize("body,content_type,fragment", [
    pytest.param(b"\xff\xff\xff garbage", "application/x-protobuf", "not a valid", id=
                 "an undecodable protobuf body gets 400 with a google.rpc.Status"),
    pytest.param(b"{not json", "application/json", "not valid JSON", id=
                 "a body that is not JSON gets 400"),
    pytest.param(b'{"resourceLogs": {"oops": 1}}', "application/json", "$.resourceLogs", id=
                 "JSON of the wrong shape gets 400 naming the path"),
    pytest.param(b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "abc"}]}]}]}',
                 "application/json", "hex", id="a trace id that is not 16 hex bytes gets 400"),
])
def test_undecodable_bodies_get_400(collector, body, content_type, fragment):
    status, headers, reply = post(collector.http_port, "/v1/logs", body, content_type)
    assert status == 400
    error = _status(reply, headers["Content-Type"])
    assert error.code == 3 and fragment in error.message  # INVALID_ARGUMENT


def test_unknown_content_type_gets_415(collector):
    status, headers, reply = post(collector.http_port, "/v1/logs", b"x", "text/plain")
    assert status == 415 and "text/plain" in _status(reply, headers["Content-Type"]).message


def test_unknown_content_encoding_gets_415(collector):
    status, _, _ = post(collector.http_port, "/v1/logs", b"x", headers={"Content-Encoding": "br"})
    assert status == 415


def test_non_post_gets_405(collector):
    status, headers, _ = post(collector.http_port, "/v1/logs", None, method="GET")
    assert status == 405 and headers["Allow"] == "POST"


def test_over_the_size_limit_after_decompression_gets_413(chdb_client, database, config_factory):
    service = CollectorService(config_factory(max_request_size=4096), client=chdb_client,
                               database=database)
    service.start()
    try:
        big = logs_request(*[decision(f"id-{i}", reason="x" * 100) for i in range(100)])
        raw = big.SerializeToString()
        assert len(gzip.compress(raw)) < 4096 < len(raw)  # small on the wire, large inflated
        status, _, _ = post(service.http_port, "/v1/logs", gzip.compress(raw),
                            headers={"Content-Encoding": "gzip"})
        assert status == 413
        assert post(service.http_port, "/v1/logs", raw)[0] == 413
        with grpc.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
            with pytest.raises(grpc.RpcError) as err:
                channel.unary_unary(LOGS_METHOD)(raw, timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        service.shutdown()


def test_storage_backlog_gets_503_with_retry_after_and_unavailable_with_retry_info(
        chdb_client, database, config_factory):
    service = CollectorService(config_factory(spool_max_size=1, retry_after=7),
                               client=chdb_client, database=database)
    service.start()
    try:
        service.pipeline.writer.shutdown(drain_timeout=0)  # storage stops draining the spool
        body = logs_request(decision("first")).SerializeToString()
        assert post(service.http_port, "/v1/logs", body)[0] == 200  # durable in the spool
        status, headers, reply = post(service.http_port, "/v1/logs", body)
        assert status == 503 and headers["Retry-After"] == "7"
        assert _status(reply, headers["Content-Type"]).code == 14  # UNAVAILABLE
        with grpc.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
            with pytest.raises(grpc.RpcError) as err:
                channel.unary_unary(LOGS_METHOD)(body, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        details = dict(err.value.trailing_metadata())["grpc-status-details-bin"]
        retry = error_details_pb2.RetryInfo()
        status_pb2.Status.FromString(details).details[0].Unpack(retry)
        assert retry.retry_delay.seconds == 7
    finally:
        service.shutdown()


def test_grpc_undecodable_message_gets_invalid_argument(collector):
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary(LOGS_METHOD)(b"\xff\xff\xff garbage", timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportLogsServiceRequest" in err.value.details()
