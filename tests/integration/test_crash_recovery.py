"""Kill -9 after acknowledgement, before the batch reached ClickHouse: nothing acknowledged is
lost, nothing is stored twice. The collector runs as a real `policyscope collector` process."""

from __future__ import annotations

import json
import signal
import time

import psutil
import pytest

from tests.builders.otlp import decision, logs_request, post
from tests.builders.processes import admin_headers, free_port, start_collector

pytestmark = pytest.mark.integration


def count(http_port: int, store) -> int:
    status, _, body = post(http_port, "/api/sql", json.dumps(
        {"query": "SELECT count(), uniqExact(event_id) FROM policy_decisions"}).encode(),
        "application/json", headers=admin_headers(store))
    assert status == 200, body
    row = json.loads(body)["rows"][0]
    values = list(row.values())
    assert values[0] == values[1], f"duplicates stored: {row}"
    return int(values[0])


def test_acknowledged_records_survive_sigkill_exactly_once(tmp_path):
    port = free_port()
    proc = start_collector(tmp_path, port, batch_delay="1h")  # the writer would wait an hour
    try:
        n_requests, per_request = 20, 50
        for r in range(n_requests):
            body = logs_request(*[decision(f"req{r}-{i}") for i in range(per_request)])
            assert post(port, "/v1/logs", body.SerializeToString())[0] == 200
        assert count(port, tmp_path / "ch") == 0, "rows reached ClickHouse before the kill; the test proves nothing"
        # a client retry of an acknowledged request, also spooled before the crash
        assert post(port, "/v1/logs", logs_request(*[decision(f"req0-{i}") for i in range(
            per_request)]).SerializeToString())[0] == 200
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert workers, "the collector runs its normalizers in worker processes"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"normalizer workers outlived the killed collector: {alive}"
    port = free_port()
    proc = start_collector(tmp_path, port, batch_delay="100ms")
    try:
        deadline = time.monotonic() + 30
        while count(port, tmp_path / "ch") < n_requests * per_request and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        assert count(port, tmp_path / "ch") == n_requests * per_request
        assert not list((tmp_path / "spool").glob("*.seg")), "spool not emptied after replay"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
