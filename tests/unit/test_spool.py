"""The spool: durable before acknowledged, replayed after a crash, torn tails cut."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from collector.errors import StorageUnavailable
from collector.spool import Spool, decode_segment, encode

pytestmark = pytest.mark.unit


def rows(n: int, start: int = 0) -> pa.Table:
    return pa.table({"event_id": [f"id{i}" for i in range(start, start + n)]})


def test_a_frame_round_trips_with_its_table_name():
    frames, valid = decode_segment(encode("policy_events", rows(3)))
    assert [(name, t.column("event_id").to_pylist()) for name, t in frames] == [
        ("policy_events", ["id0", "id1", "id2"])]


def test_appended_rows_are_on_disk_when_the_future_resolves_and_replay_after_restart(tmp_path):
    spool = Spool(tmp_path, max_bytes=10**9, retry_after=1)
    spool.start()
    futures = [spool.append({"policy_decisions": rows(10, 10 * i)}) for i in range(5)]
    for f in futures:
        f.result(5)
    on_disk = b"".join(p.read_bytes() for p in sorted(tmp_path.glob("*.seg")))
    assert sum(t.num_rows for _, t in decode_segment(on_disk)[0]) == 50
    assert spool.fsyncs <= 5  # group commit: never more fsyncs than requests
    spool.shutdown()  # crash-equivalent: nothing was marked done

    again = Spool(tmp_path, max_bytes=10**9, retry_after=1)
    again.start()
    assert again.replayed_rows == 50
    frames = again.take(1000, 0.01, threading.Event())
    assert sorted(i for f in frames for i in f.rows.column("event_id").to_pylist()) == sorted(
        f"id{i}" for i in range(50))
    again.done(frames)
    assert not list(tmp_path.glob("*.seg"))
    again.shutdown()


def test_a_torn_tail_is_cut_and_the_whole_frames_survive(tmp_path):
    (tmp_path / "000000000000.seg").write_bytes(
        encode("policy_decisions", rows(4)) + encode("policy_decisions", rows(4, 4))[:-7])
    spool = Spool(tmp_path, max_bytes=10**9, retry_after=1)
    spool.start()
    assert spool.replayed_rows == 4
    assert len((tmp_path / "000000000000.seg").read_bytes()) == len(
        encode("policy_decisions", rows(4)))
    spool.shutdown()


def test_append_refuses_with_retry_after_when_the_backlog_is_over_its_limit(tmp_path):
    spool = Spool(tmp_path, max_bytes=1, retry_after=3)
    spool.start()
    spool.append({"policy_decisions": rows(5)}).result(5)
    with pytest.raises(StorageUnavailable, match="over its limit") as err:
        spool.append({"policy_decisions": rows(5)})
    assert err.value.retry_after == 3
    spool.shutdown()
