"""Issue 11 item 7: who may send. Bearer tokens (a list, or a file re-read when it changes)
on OTLP/HTTP and OTLP/gRPC, TLS and mTLS on both ports with certificates made in the test,
and no listening beyond loopback with nobody authenticated."""

from __future__ import annotations

import http.client
import logging
import ssl
import time

import grpc
import pytest

from collector.service import CollectorService
from tests.builders.certs import make_certs
from tests.builders.otlp import LOGS_METHOD, decision, logs_request, post, wait_rows

pytestmark = pytest.mark.integration

TOKEN = "s3cr3t-token-0123456789abcdef"
BODY = logs_request(decision("auth")).SerializeToString()


def grpc_export(port: int, metadata=(), credentials=None, body: bytes = BODY):
    target = f"127.0.0.1:{port}"
    channel = grpc.secure_channel(target, credentials) if credentials else \
        grpc.insecure_channel(target)
    with channel:
        export = channel.unary_unary(LOGS_METHOD, request_serializer=None,
                                     response_deserializer=None)
        return export(body, metadata=metadata, timeout=10)


def sdk_send(endpoint: str, protocol: str, n: int, **exporter_args) -> None:
    """n decisions through the official OTel SDK exporter, flushed."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(
        OTLPLogExporter(endpoint=endpoint, **exporter_args)))
    logger = provider.get_logger("auth-test")
    for i in range(n):
        logger.emit(event_name="policy.decision", timestamp=time.time_ns(), attributes={
            "policy.id": "p", "policy.outcome": "deny", "log.record.uid": f"{protocol}-{i}"})
    provider.shutdown()


def test_tokens_are_required_on_both_ports_and_never_logged(collectors, caplog):
    caplog.set_level(logging.DEBUG)
    service = collectors(auth_tokens=[TOKEN, "second-token"])
    port = service.http_port
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        status, answer_headers, body = post(port, "/v1/logs", BODY, headers=headers)
        assert status == 401, (headers, body)
        assert answer_headers["WWW-Authenticate"].startswith("Bearer")
    assert post(port, "/v1/logs", BODY, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert post(port, "/v1/logs", BODY,
                headers={"Authorization": "bearer second-token"})[0] == 200
    assert post(port, "/metrics", b"", method="GET")[0] == 401
    assert post(port, "/health", b"", method="GET")[0] == 200  # probes need no token

    for metadata in ((), (("authorization", "Bearer wrong"),)):
        with pytest.raises(grpc.RpcError) as refused:
            grpc_export(service.grpc_port, metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    grpc_export(service.grpc_port, (("authorization", f"Bearer {TOKEN}"),))
    sdk_send(f"http://127.0.0.1:{service.grpc_port}", "grpc", 5, insecure=True,
             headers={"authorization": f"Bearer {TOKEN}"})
    sdk_send(f"http://127.0.0.1:{port}/v1/logs", "http", 5,
             headers={"Authorization": f"Bearer {TOKEN}"})
    # BODY's one record, sent three times, is stored once; 5 + 5 from the SDK exporters
    assert wait_rows(service, "SELECT count() FROM policy_decisions", 11) == 11
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "pipeline started with config" in logged
    assert TOKEN not in logged and "second-token" not in logged


def test_the_token_file_is_reread_when_it_changes(collectors, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# rotated monthly\nold-token\n")
    tokens.chmod(0o600)
    service = collectors(auth_token_file=str(tokens))
    port = service.http_port

    def status(token: str) -> int:
        return post(port, "/v1/logs", BODY, headers={"Authorization": f"Bearer {token}"})[0]

    assert (status("old-token"), status("new-token")) == (200, 401)
    tokens.write_text("new-token  # added\n")
    deadline = time.monotonic() + 10
    while status("new-token") != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (status("old-token"), status("new-token")) == (401, 200)


def test_tls_and_mtls_on_both_ports(collectors, tmp_path, monkeypatch):
    # requests lets these override the exporter's own certificate_file (a known quirk)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    certs = make_certs(tmp_path / "certs")
    service = collectors(tls_cert_file=str(certs.server_cert), tls_key_file=str(certs.server_key),
                    tls_client_ca_file=str(certs.ca))
    trusting = ssl.create_default_context(cafile=str(certs.ca))

    def https(context) -> int:
        conn = http.client.HTTPSConnection("127.0.0.1", service.http_port, context=context,
                                           timeout=10)
        try:
            conn.request("POST", "/v1/logs", BODY,
                         {"Content-Type": "application/x-protobuf"})
            return conn.getresponse().status
        finally:
            conn.close()

    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        https(trusting)  # no client certificate: the handshake fails
    with_client = ssl.create_default_context(cafile=str(certs.ca))
    with_client.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    assert https(with_client) == 200
    with pytest.raises(OSError):  # plain HTTP to the TLS port gets no answer
        post(service.http_port, "/v1/logs", BODY)

    ca = certs.ca.read_bytes()
    with pytest.raises(grpc.RpcError) as refused:
        grpc_export(service.grpc_port, credentials=grpc.ssl_channel_credentials(ca))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # handshake refused
    grpc_export(service.grpc_port, credentials=grpc.ssl_channel_credentials(
        ca, certs.client_key.read_bytes(), certs.client_cert.read_bytes()))
    sdk_send(f"https://127.0.0.1:{service.http_port}/v1/logs", "http", 3,
             certificate_file=str(certs.ca), client_certificate_file=str(certs.client_cert),
             client_key_file=str(certs.client_key))
    # BODY's record over HTTPS and over gRPC is one event; 3 from the SDK exporter
    assert wait_rows(service, "SELECT count() FROM policy_decisions", 4) == 4


def test_tls_without_client_certificates(collectors, tmp_path):
    certs = make_certs(tmp_path / "certs")
    service = collectors(tls_cert_file=str(certs.server_cert), tls_key_file=str(certs.server_key))
    sdk_send(f"https://127.0.0.1:{service.grpc_port}", "grpc", 4,
             credentials=grpc.ssl_channel_credentials(certs.ca.read_bytes()))
    untrusting = ssl.create_default_context()  # the system CAs do not know ours
    conn = http.client.HTTPSConnection("127.0.0.1", service.http_port, context=untrusting,
                                       timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("POST", "/v1/logs", BODY, {"Content-Type": "application/x-protobuf"})
    conn.close()
    assert wait_rows(service, "SELECT count() FROM policy_decisions", 4) == 4


@pytest.mark.parametrize("where", ["http_host", "grpc_host"])
def test_no_listening_beyond_loopback_without_authentication(config_factory, where):
    with pytest.raises(PermissionError, match="without authentication") as refused:
        CollectorService(config_factory(**{where: "0.0.0.0"}))
    assert "allow_unauthenticated" in str(refused.value)
    for acknowledged in ({"allow_unauthenticated": True}, {"auth_tokens": [TOKEN]}):
        CollectorService(config_factory(**{where: "0.0.0.0"}, **acknowledged))  # no refusal


def test_tls_settings_are_checked_together(config_factory):
    from core.config import ConfigError

    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file go together"):
        CollectorService(config_factory(tls_cert_file="/x.pem"))
    with pytest.raises(ConfigError, match="needs tls_cert_file"):
        CollectorService(config_factory(tls_client_ca_file="/ca.pem"))


def test_a_missing_token_file_is_created_with_a_random_token(collectors, tmp_path, caplog):
    from collector.auth import read_token_file

    path = tmp_path / "secrets" / "receiver-tokens"
    service = collectors(auth_token_file=str(path))
    assert path.stat().st_mode & 0o777 == 0o600
    [token] = read_token_file(path)
    assert len(token) >= 32
    assert token not in caplog.text  # the log names the file, never the token
    port = service.http_port
    assert post(port, "/v1/logs", BODY)[0] == 401
    assert post(port, "/v1/logs", BODY, headers={"Authorization": f"Bearer {token}"})[0] == 200
