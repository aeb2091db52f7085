"""The writer's dead-letter parking (collector/writer.py, collector/deadletters.py): storage
going away while a refused batch is bisected, or the dead-letter folder being unwritable,
leaves the batch in the spool exactly once -- never lost, never queued twice."""

from __future__ import annotations

import json
import time

import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from collector.deadletters import DeadLetterFolder, Refused, folder_of, message_of, reason_of
from collector.spool import Spool
from collector.writer import POISON_ATTEMPTS, ClickHouseWriter

pytestmark = pytest.mark.unit


class ScriptedClient:
    """Answers the writer's n-th staging attempt (TRUNCATE) with `script[n]` (an exception to
    raise, or None to go on); stores what it is given after the script runs out."""

    def __init__(self, script: list[Exception | None]):
        self.script = list(script)
        self.staged: list[str] = []
        self.stored: list[str] = []

    def command(self, sql, settings=None):
        if sql.startswith("TRUNCATE") and self.script:
            error = self.script.pop(0)
            if error is not None:
                raise error
        if sql.startswith("INSERT INTO"):
            self.stored += [i for i in self.staged if i not in self.stored]
        if sql.startswith("SELECT count()"):
            return len(self.stored)
        return None

    def insert_arrow(self, table, rows):
        self.staged = rows.column("event_id").to_pylist()


def run_writer(tmp_path, client, until, timeout=30.0):
    spool = Spool(tmp_path, max_bytes=10**9, retry_after=1)
    spool.start()
    times = pa.array([1, 2], pa.timestamp("ms", tz="UTC"))
    spool.append({"policy_decisions": pa.table({"event_id": ["a", "b"],
                                                "event_time": times})}).result(5)
    writer = ClickHouseWriter(client, "db", spool, instance="x", max_rows=100, max_delay=0.01)
    writer.start()
    deadline = time.monotonic() + timeout
    while not until(writer, spool) and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.shutdown(drain_timeout=0)
    spool.shutdown()
    return spool, writer


def test_storage_going_away_during_the_bisection_keeps_the_batch_once(tmp_path):
    refusal = DatabaseError("Code: 53. Type mismatch (TYPE_MISMATCH)")
    client = ScriptedClient([refusal] * POISON_ATTEMPTS + [OperationalError("connection lost")])
    spool, writer = run_writer(tmp_path, client, lambda w, s: s.backlog_bytes <= 0
                               and sorted(client.stored) == ["a", "b"])
    assert sorted(client.stored) == ["a", "b"] and writer.dead_letter_rows == 0
    assert spool.backlog_bytes == 0 and spool.pending_rows == 0  # released once, not twice
    assert not list(tmp_path.glob("*.seg"))


def test_an_unwritable_dead_letter_folder_keeps_the_rows_in_the_spool(tmp_path):
    (tmp_path / "dead-letter").write_text("a file where the folder should be")
    refusal = DatabaseError("Code: 53. Type mismatch (TYPE_MISMATCH)")
    client = ScriptedClient([refusal] * 100)
    spool, writer = run_writer(tmp_path, client,
                               lambda w, s: w.failed_inserts > POISON_ATTEMPTS, timeout=20)
    assert writer.failed_inserts > POISON_ATTEMPTS and writer.dead_letter_rows == 0
    assert spool.pending_rows == 2 and list(tmp_path.glob("*.seg"))  # still durable


def test_a_parked_file_has_its_sidecar_with_reasons_and_messages(tmp_path):
    folder = DeadLetterFolder(folder_of(tmp_path))
    refused = Refused()
    rows = pa.table({"event_id": ["a", "b", "c"]})
    refused.add_error("policy_decisions", rows.slice(0, 2), DatabaseError(
        "Code: 469. DB::Exception: Constraint `c` is violated at row 1. "
        "(VIOLATED_CONSTRAINT) (version 25.8.1.1)"))
    refused.add_error("policy_events", rows.slice(2), DatabaseError("no code here"))
    path = folder.park(refused)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["reasons"] == {
        "VIOLATED_CONSTRAINT": {"rows": 2, "message": "Constraint `c` is violated at row 1. "
                                                     "(VIOLATED_CONSTRAINT)"},
        "DatabaseError": {"rows": 1, "message": "no code here"}}
    (letter,) = folder.entries()
    assert letter.tables == {"policy_decisions": 2, "policy_events": 1}
    assert letter.reason == "DatabaseError (1), VIOLATED_CONSTRAINT (2)"
    assert not list(folder.path.glob("*.tmp"))


@pytest.mark.parametrize("error,reason,message", [
    pytest.param(DatabaseError("Code: 252. DB::Exception: Too many partitions for single "
                               "INSERT block (more than 100). (TOO_MANY_PARTS) (version 25.8)"),
                 "TOO_MANY_PARTS", "Too many partitions for single INSERT block (more than "
                 "100). (TOO_MANY_PARTS)", id="the server's error name and its sentence"),
    pytest.param(DatabaseError("HTTP error for http://u:secret@h:8123 (SOME_ERROR)"),
                 "SOME_ERROR", "HTTP error for http://u:***@h:8123 (SOME_ERROR)",
                 id="credentials in a URL of the message are hidden"),
])
def test_the_reason_and_message_recorded_for_a_refusal(error, reason, message):
    assert (reason_of(error), message_of(error)) == (reason, message)


def test_a_torn_file_lists_as_damaged_and_is_left_as_it_is(tmp_path):
    folder = DeadLetterFolder(folder_of(tmp_path))
    refused = Refused()
    refused.add("policy_decisions", pa.table({"event_id": ["a"]}), "X", "m")
    path = folder.park(refused)
    path.write_bytes(path.read_bytes() + b"PSF1garbage")
    (letter,) = folder.entries()
    assert letter.damaged and letter.rows == 1
