"""The collector's self-metrics without storage: the reader's deltas across runs, resets and
gaps (collector/self_metrics_read.py `deltas`), and the recorder's snapshot rows and its
failure handling (collector/self_metrics.py) against a stand-in client."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import polars as pl
import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from collector.self_metrics import InsertLatency, SelfMetricsRecorder
from collector.self_metrics_read import STORED, deltas

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rows(*samples) -> pl.DataFrame:
    """(at s, started_at s, seq, metric, kind, value) -> stored rows of instance 'i', with an
    uptime row for every snapshot, as the recorder writes them."""
    out = []
    for when, started, seq, metric, kind, value in samples:
        out.append((at(when), "i", "h", at(started), seq, metric, kind, "logs", "", value))
    for when, started, seq in sorted({(s[0], s[1], s[2]) for s in samples}):
        out.append((at(when), "i", "h", at(started), seq, "uptime_seconds", "gauge", "", "",
                    float(when - started)))
    return pl.DataFrame(out, schema={
        "at": pl.Datetime("ms", "UTC"), "instance": pl.Utf8, "hostname": pl.Utf8,
        "started_at": pl.Datetime("ms", "UTC"), "seq": pl.UInt32, "metric": pl.Utf8,
        "kind": pl.Utf8, "source": pl.Utf8, "label": pl.Utf8, "value": pl.Float64},
        orient="row").select(list(STORED))


def accepted(frame: pl.DataFrame) -> list[tuple]:
    return frame.filter(pl.col("metric") == "a").select("delta", "seconds").rows()


A, C = "a", "counter"


@pytest.mark.parametrize("stored,expected", [
    pytest.param(rows((10, 0, 1, A, C, 4.0), (20, 0, 2, A, C, 9.0)), [(4.0, 10.0), (5.0, 10.0)],
                 id="a run's first snapshot counts from zero since its start, then differences"),
    pytest.param(rows((10, 0, 1, A, C, 9.0), (40, 35, 1, A, C, 2.0), (50, 35, 2, A, C, 6.0)),
                 [(9.0, 10.0), (2.0, 5.0), (4.0, 10.0)],
                 id="a restart (a new started_at) counts from zero again, not as a drop"),
    pytest.param(rows((10, 0, 1, A, C, 9.0), (20, 0, 2, A, C, 3.0)), [(9.0, 10.0), (3.0, 10.0)],
                 id="a counter that falls within a run counts as a reset"),
    pytest.param(rows((10, 0, 1, "other", C, 1.0), (20, 0, 2, A, C, 3.0)), [(3.0, 10.0)],
                 id="a series new in a run counts from zero since the run's previous snapshot"),
    pytest.param(rows((500, 0, 7, A, C, 30.0), (510, 0, 8, A, C, 31.0)),
                 [(None, None), (1.0, 10.0)],
                 id="a snapshot whose run's earlier snapshots are unknown has no delta"),
    pytest.param(rows((10, 0, 1, A, C, 4.0), (20, 0, 2, A, C, 9.0), (20, 0, 2, A, C, 9.0)),
                 [(4.0, 10.0), (5.0, 10.0), (0.0, 0.0)],
                 id="a snapshot stored twice adds nothing"),
    pytest.param(rows((10, 0, 1, A, "gauge", 4.0), (20, 0, 2, A, "gauge", 9.0)),
                 [(None, None), (None, None)], id="gauges have no delta"),
])
def test_deltas(stored, expected):
    assert accepted(deltas(stored)) == expected


def test_rows_before_the_window_are_predecessors_only():
    stored = rows((10, 0, 1, A, C, 4.0), (20, 0, 2, A, C, 9.0), (30, 0, 3, A, C, 10.0))
    frame = deltas(stored, start=at(15))
    assert accepted(frame) == [(5.0, 10.0), (1.0, 10.0)]
    assert frame.filter(pl.col("metric") == A)["rate"].to_list() == [0.5, 0.1]


def test_the_longest_insert_is_taken_once():
    latency = InsertLatency()
    for seconds in (0.2, 0.5, 0.1):
        latency.observe(seconds)
    assert latency.totals() == (3, pytest.approx(0.8))
    assert (latency.take_max(), latency.take_max()) == (0.5, 0.0)


class FlakyClient:
    """Stands in for ClickHouse: refuses the first `refusals` inserts as unreachable, keeps
    the rows of the others. Not opened by core.storage.connect, so the recorder uses it."""

    database = "db"

    def __init__(self, refusals: int):
        self.refusals = refusals
        self.tables: list[pa.Table] = []

    def raw_insert(self, table, column_names, insert_block, settings=None, fmt=None):
        data = b"".join(insert_block)
        if self.refusals:
            self.refusals -= 1
            raise OperationalError("connection refused")
        self.tables.append(pa.ipc.open_stream(data).read_all())


def recorder(client: FlakyClient) -> SelfMetricsRecorder:
    writer = SimpleNamespace(instance="abcd", insert_latency=InsertLatency(), inserted_rows=3,
                             duplicate_rows=0, failed_inserts=0, dead_letter_rows=0)
    pipeline = SimpleNamespace(
        client=client, database="db", writer=writer,
        counts=Counter({"logs_accepted": 5, "logs_rejected": 2, "logs_ignored": 1}),
        rejects=Counter({("logs", "missing_policy_id"): 2}), truncated=Counter(),
        admission=SimpleNamespace(refused=Counter(), memory_limit=1, memory_bytes=1000),
        normalizers=SimpleNamespace(restarts=0),
        spool=SimpleNamespace(backlog_bytes=10, pending_rows=2))
    found = SelfMetricsRecorder(pipeline, interval=60)
    found.started_at = 1_700_000_000.0
    return found


def test_a_snapshot_that_fails_is_replaced_by_the_next_which_keeps_its_longest_insert():
    client = FlakyClient(refusals=1)
    found = recorder(client)
    found.pipeline.writer.insert_latency.observe(0.75)
    assert found.record() is False and (found.stored, found.failed) == (0, 1)
    assert found.record() is True and found.stored == 1
    (table,) = client.tables
    values = {(m, s, label): v for m, s, label, v in zip(
        *(table.column(c).to_pylist() for c in ("metric", "source", "label", "value")))}
    assert values[("insert_seconds_max", "", "")] == 0.75  # carried over the failed one
    assert values[("records_accepted", "logs", "")] == 5
    assert values[("records_rejected", "logs", "missing_policy_id")] == 2
    assert values[("spool_backlog_rows", "", "")] == 2
    assert set(table.column("seq").to_pylist()) == {1}  # the first snapshot *stored*
    assert set(table.column("instance").to_pylist()) == {"abcd"}
