"""The collector's own counters reach ClickHouse (`collector_metrics`, collector/self_metrics.py)
and read back as deltas that are right across restarts (collector/self_metrics_read.py); the
recorder is off at interval 0 and a storage failure while it writes never touches ingest."""

from __future__ import annotations

import logging
import socket
import time
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from clickhouse_connect.driver.exceptions import OperationalError
from opentelemetry.proto.logs.v1 import logs_pb2
from polars.testing import assert_frame_equal

from collector import self_metrics
from collector.self_metrics_read import increases, snapshots
from schemas import migrations
from tests.builders.otlp import decision, logs_request, post, wait_rows

pytestmark = pytest.mark.integration

INTERVAL = 0.1  # seconds between snapshots in these tests
RECORD_COUNTS = ["records_accepted", "records_ignored", "records_rejected"]


@pytest.fixture
def start_collector(collectors):
    """Start a CollectorService with the config overrides given (default: snapshots every
    INTERVAL); every one started is shut down at the end."""

    def start(**overrides):
        overrides.setdefault("self_metrics_interval", INTERVAL)
        return collectors(**overrides)

    return start


def window() -> tuple[datetime, datetime]:
    now = datetime.now(timezone.utc)
    return now - timedelta(minutes=10), now + timedelta(minutes=1)


def wait_for(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


def increase(client, metric: str, source: str = "", label: str = "") -> float | None:
    frame = increases(client, *window(), metrics=[metric]).filter(
        (pl.col("source") == source) & (pl.col("label") == label))
    return frame["increase"][0] if frame.height else None


def stored_rows(client) -> int:
    return int(client.command("SELECT count() FROM collector_metrics"))


def send(service, records) -> None:
    status, _, _ = post(service.http_port, "/v1/logs", logs_request(*records).SerializeToString())
    assert status == 200


def mixed_request(prefix: str, accepted: int) -> list[logs_pb2.LogRecord]:
    """`accepted` good decisions, two without a policy id, one with a bad outcome, and one
    record of a kind PolicyScope does not know (ignored)."""
    return [*(decision(f"{prefix}-{i}") for i in range(accepted)),
            decision(f"{prefix}-np1", policy=""), decision(f"{prefix}-np2", policy=""),
            decision(f"{prefix}-bad", outcome="alow"),
            logs_pb2.LogRecord(time_unix_nano=time.time_ns(), event_name="browser.page_view")]


def test_accepted_rejected_by_reason_and_insert_latency_are_stored(start_collector):
    service = start_collector()
    client = service.pipeline.client
    send(service, mixed_request("a", 7))
    assert wait_rows(service, "SELECT count() FROM policy_decisions", 7) == 7
    wait_for(lambda: increase(client, "writer_inserted_rows") == 7,
             "a snapshot with the 7 inserted rows")

    counts = increases(client, *window(), metrics=RECORD_COUNTS)
    assert_frame_equal(counts, pl.DataFrame({
        "metric": ["records_accepted", "records_ignored", "records_rejected",
                   "records_rejected"],
        "source": ["logs"] * 4,
        "label": ["", "", "invalid_outcome", "missing_policy_id"],
        "increase": [7.0, 1.0, 1.0, 2.0]}))
    assert increase(client, "writer_duplicate_rows") == 0
    assert increase(client, "writer_failed_inserts") == 0
    assert increase(client, "insert_seconds_count") >= 1
    assert increase(client, "insert_seconds_sum") > 0

    rows = snapshots(client, *window())
    longest = rows.filter(pl.col("metric") == "insert_seconds_max")
    assert longest["kind"].unique().to_list() == ["gauge"] and longest["value"].max() > 0
    assert longest["delta"].null_count() == longest.height  # gauges have no delta
    assert rows["instance"].unique().to_list() == [service.pipeline.writer.instance]
    assert rows["hostname"].unique().to_list() == [socket.gethostname()]
    assert rows["started_at"].n_unique() == 1
    seqs = rows.filter(pl.col("metric") == "normalizer_restarts")["seq"].to_list()
    assert seqs == list(range(1, len(seqs) + 1))
    memory = rows.filter(pl.col("metric") == "memory_bytes")["value"]
    assert memory.min() > 0


def test_a_restart_is_a_new_run_and_the_reader_counts_both(start_collector):
    first = start_collector()
    client = first.pipeline.client
    send(first, [decision(f"first-{i}") for i in range(5)])
    assert wait_rows(first, "SELECT count() FROM policy_decisions", 5) == 5
    first.shutdown()  # its final snapshot holds the 5

    second = start_collector()  # the same spool: the same instance id, a new start time
    send(second, [decision(f"second-{i}") for i in range(3)])
    assert wait_rows(second, "SELECT count() FROM policy_decisions", 8) == 8
    wait_for(lambda: increase(client, "writer_inserted_rows") == 8,
             "the reader to see 5 + 3 inserted rows over both runs")

    rows = snapshots(client, *window(), metrics=["records_accepted"])
    runs = rows.group_by("started_at").agg(pl.col("value").max()).sort("started_at")
    assert runs["value"].to_list() == [5.0, 3.0]  # each run counts from zero
    assert rows["instance"].n_unique() == 1
    assert increase(client, "records_accepted", "logs") == 8
    per_instance = increases(client, *window(), metrics=["records_accepted"], by_instance=True)
    assert per_instance.select("instance", "increase").rows() == [
        (second.pipeline.writer.instance, 8.0)]


def test_an_interval_of_zero_records_nothing(start_collector):
    service = start_collector(self_metrics_interval=0)
    send(service, [decision(f"off-{i}") for i in range(3)])
    assert wait_rows(service, "SELECT count() FROM policy_decisions", 3) == 3
    service.shutdown()  # an enabled recorder would write its final snapshot here
    assert stored_rows(service.pipeline.client) == 0


def drop_the_table(client, monkeypatch):
    client.command("DROP TABLE collector_metrics")


def storage_unreachable(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("Error HTTPConnectionPool: connection refused")

    monkeypatch.setattr(self_metrics, "insert_arrow", refuse)


def restore(client, monkeypatch, failure) -> None:
    if failure is drop_the_table:
        (mig,) = [m for m in migrations.available() if m.name == "collector_metrics"]
        for statement in mig.statements(client.database):
            client.command(statement)
    else:
        monkeypatch.undo()


@pytest.mark.parametrize("failure", [
    pytest.param(drop_the_table, id="the table gone: ingest goes on, one warning, then resumes"),
    pytest.param(storage_unreachable,
                 id="storage unreachable for the recorder: ingest goes on, one warning, "
                    "then resumes"),
])
def test_a_storage_failure_while_recording_does_not_touch_ingest(start_collector, caplog,
                                                                  monkeypatch, failure):
    caplog.set_level(logging.INFO, logger="collector.self_metrics")
    service = start_collector()
    client, recorder = service.pipeline.client, service.pipeline.recorder
    wait_for(lambda: recorder.stored >= 1, "a first snapshot")

    failure(client, monkeypatch)
    wait_for(lambda: recorder.failed >= 3, "three failed snapshots")
    send(service, [decision(f"during-{i}") for i in range(4)])
    assert wait_rows(service, "SELECT count() FROM policy_decisions", 4) == 4
    status, _, body = post(service.http_port, "/health", b"", method="GET")
    assert status == 200, body
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                and "cannot record the collector's metrics" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]

    restore(client, monkeypatch, failure)
    stored = recorder.stored
    wait_for(lambda: recorder.stored > stored, "a snapshot stored after the failure")
    assert any("recorded again" in r.getMessage() for r in caplog.records)
    # cumulative counters: what was accepted during the outage is in the next snapshot
    accepted = snapshots(client, *window(), metrics=["records_accepted"])
    assert accepted["value"].to_list()[-1] == 4
    if failure is storage_unreachable:  # the snapshots before the outage are still there
        assert increase(client, "records_accepted", "logs") == 4
    else:  # they were dropped with the table: the reader cannot know the past, counts none
        assert accepted["delta"].to_list()[0] is None
