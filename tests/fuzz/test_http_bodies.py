"""Fuzzing a running collector's /v1/logs (issue 11, "no 5xx for bad data"): protobuf and
OTLP/JSON bodies from the fuzz strategies (valid, adversarial, mutated, random), under either
content type or another, sometimes gzipped (or garbage called gzip), are answered 200, 400,
413 or 415 -- never a 5xx (503 is for a full spool, which a test this size cannot fill)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given

from collector.service import CollectorService
from policyscope.config import load_config
from schemas.migrations import migrate
from tests.builders.fuzz_verdicts import (
    ACCEPTED,
    REFUSED,
    fuzz_settings,
    http_requests,
    http_send,
    http_verdict,
)

# A failing example's report can be a large repr; hypothesis warns about its size while
# writing it, and that warning (an error here) would hide the failure it reports.
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")]

MAX_REQUEST = 1024**2  # so that the biggest fuzzed bodies meet the 413 path too


@pytest.fixture(scope="module")
def collector_port(chdb_client, chdb_path, tmp_path_factory):
    name = f"fuzz_http_{os.getpid()}"
    chdb_client.command(f"CREATE DATABASE IF NOT EXISTS {name}")
    migrate(chdb_client, name)
    config = load_config(env={}, overrides={
        "dsn": f"chdb://{chdb_path}", "http_port": 0, "grpc_port": 0,
        "spool_dir": str(tmp_path_factory.mktemp("fuzz-spool")), "batch_max_delay": 0.05,
        "normalize_workers": 0, "max_request_size": MAX_REQUEST})
    service = CollectorService(config, client=chdb_client, database=name)
    service.start()
    yield service.http_port
    service.shutdown()


@fuzz_settings(max_examples=80)
@given(request=http_requests())
def test_no_body_gets_a_5xx_from_v1_logs(collector_port, request):
    verdict = http_verdict(*http_send(collector_port, *request))
    assert verdict.kind in (ACCEPTED, REFUSED), verdict.detail


def test_the_verdict_calls_a_5xx_a_crash():
    assert http_verdict(500, b"Internal Server Error").kind == "crash"
    assert http_verdict(503, b"").kind == "crash"  # the spool cannot be full here
