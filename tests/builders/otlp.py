"""OTLP requests and HTTP calls the tests send to a collector: records with attributes,
requests around them, a POST that returns (status, headers, body), and a wait until rows
land."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def post(port: int, path: str, body: bytes, content_type: str = "application/x-protobuf",
         headers: dict | None = None, method: str = "POST"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                     method=method,
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_rows(service, sql: str, expected: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        got = int(service.pipeline.client.command(sql))
        if got >= expected or time.monotonic() > deadline:
            time.sleep(0.3)  # anything extra (a duplicate) would land in this pause too
            return int(service.pipeline.client.command(sql))
        time.sleep(0.05)


def kv(key: str, value) -> common_pb2.KeyValue:
    if isinstance(value, bool):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(bool_value=value))
    if isinstance(value, float):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(double_value=value))
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=str(value)))


def decision(uid: str | None, outcome: str = "deny", policy: str = "k8s.require-non-root",
             **extra) -> logs_pb2.LogRecord:
    attrs = {"policy.id": policy, "policy.outcome": outcome, "team.name": "payments", **extra}
    if uid is not None:
        attrs["log.record.uid"] = uid
    return logs_pb2.LogRecord(time_unix_nano=time.time_ns(), event_name="policy.decision",
                              attributes=[kv(k, v) for k, v in attrs.items()])


def logs_request(*records: logs_pb2.LogRecord) -> logs_service_pb2.ExportLogsServiceRequest:
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
        scope_logs=[logs_pb2.ScopeLogs(log_records=list(records))])])
