"""Issue 11 item 5: the collector stays up under faults and overload -- a dead normalizer
worker is replaced by itself, limits answer 429/413/408 instead of growing without bound,
and SIGTERM drains and exits 0."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import time

import psutil
import pytest

from tests.builders.otlp import decision, logs_request, post, wait_rows

pytestmark = pytest.mark.integration


def health(port: int) -> tuple[int, dict]:
    status, _, body = post(port, "/health", b"", method="GET")
    return status, json.loads(body)


def test_a_killed_worker_is_replaced_and_ingest_resumes(chdb_client, database, config_factory):
    from collector.service import CollectorService

    service = CollectorService(config_factory(normalize_workers=2), client=chdb_client,
                               database=database)
    service.start()
    try:
        port = service.http_port
        body = logs_request(*[decision(f"before-{i}") for i in range(10)]).SerializeToString()
        assert post(port, "/v1/logs", body)[0] == 200
        workers = service.pipeline.normalizers.worker_pids()
        assert len(workers) == 2, workers
        victim = psutil.Process(workers[0])
        assert victim.ppid() == os.getpid()
        victim.send_signal(signal.SIGKILL)  # as the kernel's OOM killer would
        victim.wait(10)

        # Until the pool is rebuilt, requests are refused as retryable -- never acknowledged
        # and dropped -- and /health says why.
        answers, degraded = set(), False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, headers, _ = post(port, "/v1/logs", logs_request(
                decision("during")).SerializeToString())
            answers.add(status)
            if status == 503:
                assert int(headers["Retry-After"]) >= 1
                code, report = health(port)
                degraded = degraded or (code == 503 and report["status"] == "degraded")
            if status == 200 and service.pipeline.normalizers.restarts:
                break
            time.sleep(0.05)
        assert answers <= {200, 503}, answers
        assert service.pipeline.normalizers.restarts == 1
        assert 503 in answers and degraded, "the broken pool was never reported"

        assert health(port) == (200, {"status": "ok", "checks": {
            "normalizers": "ok", "spool": "ok", "memory": "ok", "storage": "ok"}})
        body = logs_request(*[decision(f"after-{i}") for i in range(10)]).SerializeToString()
        assert post(port, "/v1/logs", body)[0] == 200
        stored = wait_rows(service, "SELECT count() FROM policy_decisions", 20)
        assert stored >= 20  # before + after (+ any "during" that was acknowledged)
        _, _, metrics = post(port, "/metrics", b"", method="GET")
        assert b"policyscope_normalizer_restarts_total 1.0" in metrics
    finally:
        service.shutdown()


def raw_http(port: int, head: bytes, wait: float = 15.0) -> bytes:
    """Send `head` on a fresh connection and return what the server says before closing (or
    before `wait` seconds)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
        conn.sendall(head)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except TimeoutError:
            received += b"<no close>"
        return received


def test_content_length_over_the_limit_is_413_before_any_body(collectors):
    service = collectors(max_request_size=1024**2)
    answer = raw_http(service.http_port, b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/x-protobuf\r\n"
                      b"Content-Length: 100000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"Content-Length 100000000 is over the limit of 1048576 bytes" in answer
    assert not answer.endswith(b"<no close>"), "the connection was held open for the body"


def test_a_body_that_stalls_gets_408_and_a_client_that_sends_no_request_is_cut_off(collectors):
    service = collectors(body_timeout=1.0, header_timeout=1.0)
    answer = raw_http(service.http_port, b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\n"
                      b"0123456789")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"within 1 s (body_timeout)" in answer
    # headers that never end (slowloris): closed, never answered
    assert raw_http(service.http_port, b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\n") == b""
    # and an idle keep-alive connection does not hold its slot for ever
    assert raw_http(service.http_port, b"") == b""


def test_connections_over_max_connections_are_closed_at_once(collectors):
    service = collectors(max_connections=2, header_timeout=30.0)
    held = [socket.create_connection(("127.0.0.1", service.http_port)) for _ in range(2)]
    try:
        time.sleep(0.2)
        assert raw_http(service.http_port, b"", wait=5.0) == b""
        for conn in held:  # the two admitted connections still work
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert conn.recv(1024).startswith(b"HTTP/1.1 200")
    finally:
        for conn in held:
            conn.close()
    deadline = time.monotonic() + 10  # until the server has seen them go: a slot is free
    while len(service.http._runner.server.connections) >= 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    _, _, metrics = post(service.http_port, "/metrics", b"", method="GET")
    assert b"policyscope_http_refused_connections_total 1.0" in metrics


def test_requests_over_max_concurrent_requests_get_429(collectors):
    service = collectors(max_concurrent_requests=1, body_timeout=30.0)
    body = logs_request(decision("held")).SerializeToString()
    with socket.create_connection(("127.0.0.1", service.http_port)) as slow:
        # admitted, then reading a body that arrives slowly: it holds the only slot
        slow.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     b"application/x-protobuf\r\nContent-Length: %d\r\n\r\n" % len(body))
        time.sleep(0.3)
        status, headers, answer = post(service.http_port, "/v1/logs", body)
        assert status == 429, answer
        assert int(headers["Retry-After"]) >= 1
        assert b"max_concurrent_requests" in answer
        slow.sendall(body)
        assert slow.recv(1024).startswith(b"HTTP/1.1 200")
    assert post(service.http_port, "/v1/logs", body)[0] == 200  # the slot was given back
    _, _, metrics = post(service.http_port, "/metrics", b"", method="GET")
    assert b'policyscope_refused_requests_total{limit="requests"} 1.0' in metrics


def test_memory_pressure_refuses_as_retryable_on_both_ports(collectors):
    import grpc
    from google.rpc import error_details_pb2, status_pb2

    from tests.builders.otlp import LOGS_METHOD

    service = collectors(memory_limit=1024**2)  # far below what any Python process uses
    body = logs_request(decision("refused")).SerializeToString()
    status, headers, answer = post(service.http_port, "/v1/logs", body)
    assert status == 503 and int(headers["Retry-After"]) >= 1
    assert b"memory_limit" in answer
    assert health(service.http_port)[1]["checks"]["memory"] == "over the soft limit"
    with grpc.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        export = channel.unary_unary(LOGS_METHOD, request_serializer=None,
                                     response_deserializer=None)
        with pytest.raises(grpc.RpcError) as refused:
            export(body, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    details = dict(refused.value.trailing_metadata())["grpc-status-details-bin"]
    retry = error_details_pb2.RetryInfo()
    assert status_pb2.Status.FromString(details).details[0].Unpack(retry)
    assert retry.retry_delay.seconds >= 1
    assert int(service.pipeline.client.command("SELECT count() FROM policy_decisions")) == 0


def test_a_second_gzip_member_must_be_valid_too(collectors):
    service = collectors()
    body = logs_request(decision("gz")).SerializeToString()
    two_members = gzip.compress(body[:10]) + gzip.compress(body[10:])
    assert post(service.http_port, "/v1/logs", two_members,
                headers={"Content-Encoding": "gzip"})[0] == 200
    status, _, answer = post(service.http_port, "/v1/logs", gzip.compress(body) + b"garbage!",
                             headers={"Content-Encoding": "gzip"})
    assert status == 400 and b"after its first member" in answer, answer


def test_sigterm_drains_and_exits_0_while_a_slow_readonly_query_runs(tmp_path):
    import threading

    from tests.builders.processes import admin_headers, free_port, start_collector, stored_count

    port = free_port()
    proc = start_collector(tmp_path, port, batch_delay="1h", stderr=subprocess.PIPE)
    body = logs_request(*[decision(f"drained-{i}") for i in range(100)]).SerializeToString()
    assert post(port, "/v1/logs", body)[0] == 200  # durable, waiting an hour for its batch
    answer: list = []
    slow = json.dumps({"query": "SELECT count() FROM numbers(1900000000) WHERE "
                                "sipHash64(sipHash64(sipHash64(number))) = 0"}).encode()
    query = threading.Thread(target=lambda: answer.append(post(
        port, "/api/sql", slow, "application/json", headers=admin_headers(tmp_path / "ch"))))
    query.start()
    time.sleep(1.0)
    assert not answer, "the query finished before the signal; the test proves nothing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    query.join(10)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert answer and answer[0][0] == 503 and b"stopping" in answer[0][2]
    assert b"abandoning a read-only query" in err
    assert stored_count(tmp_path / "ch") == 100, "the drain did not put the spooled rows in storage"


def test_ctrl_c_reaching_the_whole_process_group_still_drains(tmp_path):
    from tests.builders.processes import free_port, start_collector, stored_count

    port = free_port()
    proc = start_collector(tmp_path, port, batch_delay="1h", stderr=subprocess.PIPE,
                           start_new_session=True)
    body = logs_request(*[decision(f"ctrl-c-{i}") for i in range(50)]).SerializeToString()
    assert post(port, "/v1/logs", body)[0] == 200
    workers = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"terminated abruptly" not in err and b"Traceback" not in err, err.decode()[-2000:]
    psutil.wait_procs(workers, timeout=10)
    assert stored_count(tmp_path / "ch") == 50


def test_a_cut_value_is_told_to_the_sender_and_counted(collectors):
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    service = collectors(max_value_length=256)
    body = logs_request(decision("long", **{"policy.reason": "r" * 100_000})).SerializeToString()
    status, _, answer = post(service.http_port, "/v1/logs", body)
    assert status == 200
    partial = logs_service_pb2.ExportLogsServiceResponse.FromString(answer).partial_success
    assert partial.rejected_log_records == 0 and "reason: 1" in partial.error_message
    assert wait_rows(service, "SELECT count() FROM policy_decisions WHERE "
                     "length(reason) = 256", 1) == 1
    _, _, metrics = post(service.http_port, "/metrics", b"", method="GET")
    assert b'policyscope_values_truncated_total{column="reason"} 1.0' in metrics


def test_rejects_are_counted_by_reason_in_metrics(collectors):
    service = collectors()
    body = logs_request(decision("ok"), decision("bad", outcome="maybe")).SerializeToString()
    assert post(service.http_port, "/v1/logs", body)[0] == 200
    _, _, metrics = post(service.http_port, "/metrics", b"", method="GET")
    assert b'policyscope_records_logs_rejected_total{reason="invalid_outcome"} 1.0' in metrics
